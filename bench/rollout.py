"""Benchmark: a rollout that keeps each dialogue's keys and values across turns against one that re-reads it.

    python -m bench.rollout                        # the tiny world (its cached base), N = 4 and 10 turns
    python -m bench.rollout --model PATH           # a save_pretrained chat model, itself the teacher (math)
    python -m bench.rollout --turns 10 --problems 64 --temperature 0
    python -m bench.rollout --model smollm2 --data arith --teacher verifier --dtype bfloat16 --turns 10 \
        --problems 32 --group-size 1 --temperature 0.3 --max-turn-tokens 96 --max-dialogue-tokens 2048

For each N it runs dialogue.rollout twice on the same problems and seed, with reuse_cache off and on, and
prints the tokens prefilled per student token (real tokens, and the padded positions a batch computes),
the wall time, and whether the two runs gave the same dialogues token for token. A real model's own
teacher (dialogue.ModelTeacher) reuses its view too; its prefills are counted apart.
Not in the paper: it checks the cost of §4.2's rollouts (every turn prefilled the whole dialogue again).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import dialogue
import generation
import tasks

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "omni_math.jsonl"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny", help="'tiny' (the tiny world) or a save_pretrained chat model")
    p.add_argument("--turns", type=int, nargs="+", default=[4, 10], help="N, student turns per dialogue")
    p.add_argument("--problems", type=int, default=32)
    p.add_argument("--group-size", type=int, default=2)
    p.add_argument("--max-turn-tokens", type=int, help="default: 48 for tiny, 256 otherwise")
    p.add_argument("--max-dialogue-tokens", type=int, help="default: 1024 for tiny, 4096 otherwise")
    p.add_argument("--teacher-tokens", type=int, default=128, help="a model teacher's reply budget")
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(FIXTURE), help="Omni-MATH jsonl for a real model's problems, or 'arith'")
    p.add_argument("--teacher", choices=["model", "verifier", "verdict"], default="model",
                   help="a real model's teacher: itself holding the answer, or dialogue.named_teacher's")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    p.add_argument("--device")
    args = p.parse_args(argv)
    tiny = args.model == "tiny"
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if tiny:
        import tinyworld
        model, tok = tinyworld.load_tiny()
        model = model.to(device)
        problems = tasks.tiny_problems("math", "test", n=args.problems)
        make_teacher = lambda reuse: tinyworld.HintTeacher()                                    # noqa: E731
    else:
        model, tok = dialogue.load_model(args.model, device, dtype=dialogue.DTYPES[args.dtype])
        if args.data == "arith":
            problems = tasks.arith_problems("test", n=args.problems, seed=args.seed)
        else:
            problems = (tasks.load_omni_math(args.data, "test") + tasks.load_omni_math(args.data, "train"))
            problems = (problems * (args.problems // max(len(problems), 1) + 1))[:args.problems]

        def make_teacher(reuse):
            if args.teacher != "model":
                return dialogue.named_teacher(args.teacher)
            return dialogue.ModelTeacher(model, tok, max_new_tokens=args.teacher_tokens, seed=args.seed,
                                         reuse_cache=reuse)
    turn_tokens = args.max_turn_tokens or (48 if tiny else 256)
    dialogue_tokens = args.max_dialogue_tokens or (1024 if tiny else 4096)
    counts = count_prefills()
    print(f"{args.model} ({next(model.parameters()).dtype}) on {device}: {len(problems)} problems x "
          f"{args.group_size}, turns of {turn_tokens} tokens, dialogues of {dialogue_tokens}, temperature "
          f"{args.temperature}; cache reuse possible: {generation.reuses_cache(model)}")
    print(f"{'N':>3} {'reuse':>5} {'prefilled/student token':>24} {'padded':>7} {'teacher':>8} {'seconds':>8} "
          f"{'turns':>6}  same dialogues")
    for n in args.turns:
        runs = []
        for reuse in (False, True):
            teacher = make_teacher(reuse)
            if hasattr(teacher, "reply"):
                teacher.reply = counts.as_teacher(teacher.reply)
            counts.reset()
            _sync(device)
            start = time.perf_counter()
            sampling = dialogue.Sampling(temperature=args.temperature, max_turn_tokens=turn_tokens,
                                         max_dialogue_tokens=dialogue_tokens, reuse_cache=reuse)
            ds = dialogue.rollout(model, tok, problems, teacher, group_size=args.group_size, max_turns=n,
                                  sampling=sampling, seed=args.seed)
            _sync(device)
            seconds = time.perf_counter() - start
            student_tokens = sum(sum(d.student_mask) for d in ds)
            turns = sum(d.turns for d in ds) / len(ds)
            differ = sum(a.segments != b.segments for a, b in zip(ds, runs[0])) if runs else 0
            same = "" if not runs else "yes" if not differ else f"no ({differ} of {len(ds)} differ)"
            runs.append(ds)
            per = {k: v / student_tokens for k, v in [("real", counts.student["real"]),
                                                      ("padded", counts.student["padded"]),
                                                      ("teacher", counts.teacher["real"])]}
            print(f"{n:>3} {'on' if reuse else 'off':>5} {per['real']:>24.2f} {per['padded']:>7.2f} "
                  f"{per['teacher']:>8.2f} {seconds:>8.2f} {turns:>6.2f}  {same}")


class count_prefills:
    """Tokens fed by prefills, the student's and a model teacher's apart: real ones, and padded positions."""

    def __init__(self):
        self.forward, self.in_teacher = generation._forward, False
        generation._forward = self.counting
        self.reset()

    def reset(self):
        self.student, self.teacher = {"real": 0, "padded": 0}, {"real": 0, "padded": 0}

    def counting(self, model, cache, input_ids, attention, position, **kw):
        if "logits_to_keep" in kw:                        # prefill; a decode step passes no such argument
            side = self.teacher if self.in_teacher else self.student
            side["real"] += int(attention[:, -input_ids.shape[1]:].sum())
            side["padded"] += input_ids.numel()
        return self.forward(model, cache, input_ids, attention, position, **kw)

    def as_teacher(self, reply):
        def counted(dialogues):
            self.in_teacher = True
            try:
                return reply(dialogues)
            finally:
                self.in_teacher = False
        return counted


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
