"""Social Meta-Learning, end to end: the entry point and the recipe (§4, §5.4).

    python sml.py --task math --stage rollout      # see the dialogue loop: print and save a few dialogues
    python sml.py --task math                      # the whole method on the tiny world (CPU, minutes)
    python sml.py --task math --model google/gemma-3-12b-it --data hub   # the paper's setting, one GPU

A run writes to its folder (--out, default runs/<task>-<method>-<time>): config.json, dialogues/*.jsonl
(readable text and token ids), and what the later stages add (metrics.jsonl, checkpoints, eval.json,
results.md, plots). This is the only file that knows the whole recipe; each stage lives in its own file.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

import dialogue
import tasks


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["math", "code"], default="math")
    p.add_argument("--stage", choices=["rollout", "all"], default="all",
                   help="rollout: only print and save dialogues of the starting model")
    p.add_argument("--model", default="tiny", help="'tiny' (built locally), a hub id, or a local folder")
    p.add_argument("--teacher", default="auto",
                   help="auto: scripted for the tiny model, else a frozen copy of the student; or a hub id/folder")
    p.add_argument("--data", default="tiny", help=f"tiny, or a dataset path / 'hub' ({', '.join(tasks.DATASETS[1:])})")
    p.add_argument("--dataset", default=None, help="which dataset --data holds (default: omni-math for math)")
    p.add_argument("--turns", type=int, default=4, help="N, the most student turns in training dialogues")
    p.add_argument("--group-size", type=int, default=8, help="g, dialogues per problem")
    p.add_argument("--problems", type=int, default=None, help="how many problems (default: all of the split)")
    p.add_argument("--show", type=int, default=4, help="dialogues to print")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-turn-tokens", type=int, default=None, help="default: 32 for tiny, 1024 otherwise")
    p.add_argument("--max-dialogue-tokens", type=int, default=None, help="default: 512 for tiny, 8192 otherwise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    tiny = args.model == "tiny"
    args.max_turn_tokens = args.max_turn_tokens or (32 if tiny else 1024)
    args.max_dialogue_tokens = args.max_dialogue_tokens or (512 if tiny else 8192)
    args.out = Path(args.out or f"runs/{args.task}-{args.stage}-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def main(argv=None):
    args = parse_args(argv)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "config.json", {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    student, tokenizer = dialogue.load_model(args.model, args.device, seed=args.seed)
    teacher = make_teacher(args, student, tokenizer)
    problems = load_problems(args, "train")
    stage_rollout(args, student, tokenizer, teacher, problems)


def stage_rollout(args, student, tokenizer, teacher, problems):
    """Roll out the starting model, print a few dialogues, save them all."""
    t0 = time.time()
    dialogues = dialogue.rollout(student, tokenizer, problems, teacher, group_size=args.group_size,
                                 max_turns=args.turns, max_turn_tokens=args.max_turn_tokens,
                                 max_dialogue_tokens=args.max_dialogue_tokens, temperature=args.temperature,
                                 top_p=args.top_p, seed=args.seed, progress=True)
    for d in dialogues[:: max(1, len(dialogues) // max(1, args.show))][: args.show]:
        print(d.render(), end="\n\n")
    (args.out / "dialogues").mkdir(exist_ok=True)
    dialogue.write_jsonl(args.out / "dialogues" / "rollout.jsonl", [d.to_json(with_ids=True) for d in dialogues])
    n = len(dialogues)
    by_turn = [sum(d.success_turn is not None and d.success_turn <= t for d in dialogues) / n
               for t in range(1, args.turns + 1)]
    print(f"{n} dialogues ({len(problems)} problems x {args.group_size}) in {time.time() - t0:.1f}s; "
          "solved by turn: " + "  ".join(f"{t + 1}:{s:.2f}" for t, s in enumerate(by_turn))
          + f"; teacher leaks: {sum(d.leaks for d in dialogues)}; written to {args.out}/dialogues/rollout.jsonl")
    return dialogues


def make_teacher(args, student, tokenizer):
    """The teacher: scripted in the tiny world, else a frozen LLM (the student's starting weights by default)."""
    if args.teacher == "scripted" or (args.teacher == "auto" and args.model == "tiny"):
        return dialogue.HintTeacher()
    if args.teacher in ("auto", "same"):
        # A frozen copy: the student will be trained, the teacher must not move with it.
        import copy
        teacher_model = copy.deepcopy(student).eval().requires_grad_(False)
        return dialogue.ModelTeacher(teacher_model, tokenizer, seed=args.seed)
    teacher_model, teacher_tok = dialogue.load_model(args.teacher, args.device)
    return dialogue.ModelTeacher(teacher_model.requires_grad_(False), teacher_tok, seed=args.seed)


def load_problems(args, split: str) -> list[tasks.Problem]:
    if args.data == "tiny":
        n = args.problems if args.problems is not None else (16 if args.stage == "rollout" else None)
        return tasks.tiny_math_problems(split, n, seed=args.seed)
    name = args.dataset or {"math": "omni-math", "code": "opencodeinstruct"}[args.task]
    path = None if args.data == "hub" else args.data
    problems = tasks.load_task(name, path, split=split, n=args.problems, seed=args.seed)
    write_json(args.out / f"split-{split}.json", [p.id for p in problems])
    return problems


def write_json(path: Path, obj):
    """Atomic: a temporary file, then a rename, so a killed run never leaves half a file."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


if __name__ == "__main__":
    try:
        main()
    except (dialogue.UserError, tasks.DataError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: what was written so far is intact (see the run folder)")
