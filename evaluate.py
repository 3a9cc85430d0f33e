"""Evaluation (§5, §6): success by turn with 95% CIs, sharded tasks, turn types, loss on the answer.

The paper's main measure is how often the student has solved a problem *by* turn t of a dialogue
with a teacher, for t = 1..N, with N = 10 at test time although training used N = 4 (§5.4). This
file rolls out every test problem once per seed (`rollouts`) and turns the dialogues into one
eval.json entry, one function per figure:
  * Fig. 1-2, §6.1: `success_entry`, the curve and its Student-t 95% interval over seeds (`stats.mean_ci`;
    `combine` takes it over training seeds instead, the paper's 3 seeds).
  * Fig. 3, §6.1: the loss on the correct answer after each teacher turn (answerloss.py, `--answer-loss`).
  * Table 1, §6.3: the sharded task (Lost in Conversation, the lazy user reveals one shard per turn)
    beside the same problems fully specified in one turn ("<task>-sharded" and "<task>-full").
  * Fig. 5-6, §5.2, §6.4: `behaviour_entry`, turn types (answer attempt, clarification, ...; the rules and
    the judge are in turntypes.py), questions per conversation, success with and without a question,
    premature answer attempts (before the last shard), each with a 95% CI over seeds too (`seed_ci95`).
  * A teacher that can tell whether its feedback was taken up (the tiny world's) adds `feedback_uptake`.
sml.py's evaluations and this file's CLI take one path: `load_eval_tasks`, `eval_suites` (each task's teacher
and the problems that fit), `evaluate_model` (every task, the dialogues written).

    python evaluate.py --model tiny --data tiny --turns 10 --seeds 3 --out runs/eval-tiny
    python evaluate.py --model tiny --label base --model runs/<run>/seed-0/checkpoints/step-N --label sml
    python evaluate.py --model google/gemma-3-12b-it --data hub --sharded-data hub --answer-loss --problems 500

Output folder: eval.json ({model label: {eval task: entry}}), results.md, report.html, success_by_turn_<task>.png
and answer_loss.png (all written by report.py), dialogues/<label>-<task>-seed<k>.jsonl, and a few of them token
by token with their loss mask, dialogues/<label>-<task>-tokens.jsonl (report.html shows them). A model inside a run
folder is evaluated on that run's test split, and a test set that overlaps the run's training split is refused.

Deviations from the paper:
  * Turn types come from a rule-based classifier by default (boxed answers, code blocks, question
    marks, refusal phrases), not from Gemini-2.5-Pro. --judge ID uses a local chat model instead.
  * The lazy user reveals shards word for word instead of paraphrasing them with an LLM.
  * A dialogue cut by the token budget counts as unsolved here (training leaves it out instead), so
    every curve is over all problems; the truncation rate is reported next to it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

import dialogue
from infra import distributed
from infra import runfolder
import tasks
import tinyworld
from report import ANSWER_LOSS_CURVES, QUESTION_TYPES, TURN_TYPES, write_report
from infra.runfolder import UserError, number
from infra.stats import half_width, mean_ci
from turntypes import JudgeClassifier, classify_turn
from answerloss import answer_loss, fig3_contexts


# ---------------------------------------------------------------------------------------------
# The curve (§5.1); infra/stats.py gives its 95% confidence interval over seeds (§5.4).
# ---------------------------------------------------------------------------------------------

def success_curve(dialogues, n_turns: int) -> list[float]:
    """For t = 1..n_turns, the fraction of dialogues solved at or before turn t (non-decreasing).

    A truncated dialogue (cut by the context limit) counts as unsolved. rollout never marks a
    truncated dialogue as solved, so the explicit check only matters for hand-made records.
    """
    solved = [d.success_turn for d in dialogues if d.success_turn is not None and not d.truncated]
    n = max(1, len(dialogues))
    return [sum(s <= t for s in solved) / n for t in range(1, n_turns + 1)]


# The behaviour numbers that get a CI over seeds (seed_ci95), as the success curve does; "turn_types.k" is
# the share of turn type k.
SPREAD_KEYS = ("questions_per_conversation", "asked_rate", "success_when_asked", "success_when_not_asked",
               "premature_answer_rate", "premature_answers_per_conversation", "feedback_uptake")


def seed_ci95(entries: list[dict]) -> dict:
    """{key: 95% CI half-width over the entries (one per seed)} for SPREAD_KEYS and the turn-type shares, where
    every entry has a number (success_when_asked has none for a seed in which the student never asked)."""
    values = {key: [e.get(key) for e in entries] for key in SPREAD_KEYS}
    values |= {f"turn_types.{k}": [e.get("turn_types", {}).get(k) for e in entries] for k in TURN_TYPES}
    return {key: half_width(vs) for key, vs in values.items() if len(vs) > 1 and None not in vs}


def combine(entries: list[dict]) -> dict:
    """Combine entries for one eval task from several TRAINING seeds (one trained model each) into one
    entry: success_at_turn is their mean and ci95 is computed over them; per_seed holds one curve per
    trained model; Fig. 3's answer_loss_by_turn gets answer_loss_ci95 and answer_loss_per_seed the same way
    (and answer_loss_placed its answer_loss_placed_ci95, ...),
    the behaviour numbers seed_ci95; every other number is averaged over the seeds that have it."""
    if not entries:
        raise ValueError("combine needs at least one entry.")
    if len(entries) == 1:
        return dict(entries[0])
    first = entries[0]
    for e in entries[1:]:
        if e["n_problems"] != first["n_problems"] or len(e["success_at_turn"]) != len(first["success_at_turn"]):
            raise ValueError("combine: the entries have different numbers of problems or turns; "
                             "they are not the same eval task.")
    curves = [e["success_at_turn"] for e in entries]
    mean, ci = mean_ci(curves)
    out = {**first, "success_at_turn": mean, "ci95": ci, "per_seed": curves, "training_seeds": len(entries),
           "seed_ci95": seed_ci95(entries)}

    def average(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None
    for key, value in first.items():
        if key in ("success_at_turn", "ci95", "per_seed", "n_problems", "n_turns", "seeds"):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
            out[key] = average([e.get(key) for e in entries])
        elif key == "turn_types":
            out[key] = {k: sum(e[key].get(k, 0.0) for e in entries) / len(entries) for k in value}
        elif key in ANSWER_LOSS_CURVES:
            per_seed, ci_key = [e[key] for e in entries], ANSWER_LOSS_CURVES[key]
            out[key] = [average(col) for col in zip(*per_seed)]
            out[ci_key.replace("_ci95", "_per_seed")] = per_seed   # answer_loss_per_seed, ...
            out[ci_key] = [None if None in col else half_width(col) for col in zip(*per_seed)]
    return out


# ---------------------------------------------------------------------------------------------
# One model on one eval task: the rollouts, then one function per figure.
# ---------------------------------------------------------------------------------------------

def evaluate(model, tokenizer, problems, teacher, *, n_turns: int = 10, seeds=(0,),
             sampling: dialogue.Sampling = dialogue.Sampling(max_dialogue_tokens=4096), sharded: bool = False,
             classifier=None, answer_contexts=None, progress: bool = True, desc: str = "eval"):
    """The eval.json entry of one model on one eval task, and the dialogues of each seed.

    Every problem is rolled out once per seed (group size 1; the seed changes the sampling). Every student
    message gets a "turn_type" key, so the saved dialogues show how each turn was classified.
    `classifier(text, task)` defaults to the rule-based `turntypes.classify_turn`; `answer_contexts` (from
    `reference_contexts`) adds Fig. 3's loss on the correct answer. `sampling.max_batch_tokens` caps each
    generate call (dialogue.generate): a real model rolls out its 500 problems in chunks.
    """
    if not problems:
        raise ValueError("evaluate needs at least one problem.")
    if sharded and not all(p.shards for p in problems):
        raise ValueError("evaluate(sharded=True) needs problems with shards.")
    chat = dialogue.ChatFormat(tokenizer)   # checked once here, not once per seed
    by_seed = rollouts(model, tokenizer, problems, teacher, n_turns=n_turns, seeds=seeds, sampling=sampling,
                       chat=chat, progress=progress, desc=desc)
    every = [d for ds in by_seed for d in ds]
    t, top_p = sampling.temperature, sampling.top_p
    entry = {**success_entry(by_seed, n_turns, seeds),
             "decoding": "greedy" if t == 0 else f"sampled, temperature {t}, top_p {top_p}",
             **behaviour_entry(every, problems[0].task, classifier or classify_turn, sharded)}
    if hasattr(teacher, "uptake"):
        entry["feedback_uptake"], entry["feedback_uptake_n"] = teacher.uptake(every)
    if len(by_seed) > 1:   # the behaviour's spread over sampling seeds, as the curve's
        per_seed = [{**behaviour_stats(ds, sharded),
                     **({"feedback_uptake": teacher.uptake(ds)[0]} if hasattr(teacher, "uptake") else {})}
                    for ds in by_seed]
        entry["seed_ci95"] = seed_ci95(per_seed)
    if answer_contexts:
        entry |= answer_loss(model, tokenizer, answer_contexts, n_turns)
    return entry, by_seed


def rollouts(model, tokenizer, problems, teacher, *, n_turns, seeds, sampling: dialogue.Sampling, chat=None,
             progress=True, desc="eval") -> list[list]:
    """One rollout of every problem per seed: [[Dialogue] per seed]. Under torchrun each rank rolls out its
    share of the problems with its own seed, and every rank gets all the dialogues back, in problem order."""
    seeds = list(seeds)
    if sampling.temperature == 0 and len(seeds) > 1:
        print(f"note: greedy decoding gives every seed the same student turns; running all {len(seeds)} seeds "
              "anyway")
    by_seed = []
    for seed in tqdm(seeds, desc=desc, disable=not progress, dynamic_ncols=True):
        mine = dialogue.rollout(model, tokenizer, distributed.shard(problems), teacher, group_size=1,
                                max_turns=n_turns, sampling=sampling, seed=distributed.rank_seed(seed),
                                chat=chat, progress=progress)
        dialogues = distributed.gather(mine)
        for i, d in enumerate(dialogues):
            d.group = i                  # the problem's index in the whole list, not in this rank's share
        by_seed.append(dialogues)
    return by_seed


def success_entry(by_seed: list[list], n_turns: int, seeds) -> dict:
    """Fig. 1: success by turn, mean and 95% CI over seeds, and how dialogues ended."""
    every = [d for ds in by_seed for d in ds]
    curves = [success_curve(ds, n_turns) for ds in by_seed]
    mean, ci = mean_ci(curves)
    replies = sum(m["role"] == "teacher" for d in every for m in d.messages[1:])   # the opening is no reply
    turns = [m for d in every for m in d.student_turns()]
    return {"n_problems": len(by_seed[0]), "n_turns": n_turns, "seeds": list(seeds), "success_at_turn": mean,
            "ci95": ci, "per_seed": curves,
            "teacher_leak_rate": sum(d.leaks for d in every) / max(1, replies),
            "truncated_rate": sum(d.truncated for d in every) / len(every),
            "overlong_rate": sum(d.overlong for d in every) / len(every),
            # well-formed: the verifier could read an answer (a box, a program; a last number for arith)
            "answer_rate": sum(m.get("correct") is not None for m in turns) / max(1, len(turns))}


def behaviour_entry(dialogues, task: str, classifier, sharded: bool) -> dict:
    """Fig. 5-6: what kind of turns the student takes, and whether asking pays.

    Labels every student message (m["turn_type"]). A question is a clarification or an interrogation.
    On sharded tasks an answer attempt is premature when it comes before the last shard is revealed: the
    number of teacher messages before a student turn is the number of shards it has seen."""
    turns = [m for d in dialogues for m in d.student_turns()]
    labels = (classifier.batch([m["text"] for m in turns], task) if hasattr(classifier, "batch")
              else [classifier(m["text"], task) for m in turns])
    for m, label in zip(turns, labels):
        m["turn_type"] = label
    entry = {**behaviour_stats(dialogues, sharded), "turn_type_classifier": getattr(classifier, "name", "rules")}
    if hasattr(classifier, "fallbacks"):
        entry["judge_fallbacks"] = classifier.fallbacks
    return entry


def behaviour_stats(dialogues, sharded: bool) -> dict:
    """behaviour_entry's numbers, from dialogues whose student turns are already labelled."""
    labels = [m["turn_type"] for d in dialogues for m in d.student_turns()]
    asked = [any(m["turn_type"] in QUESTION_TYPES for m in d.student_turns()) for d in dialogues]
    solved = [d.success_turn is not None for d in dialogues]
    rate = lambda xs: sum(xs) / len(xs) if xs else None
    entry = {"questions_per_conversation": sum(label in QUESTION_TYPES for label in labels) / len(dialogues),
             "turn_types": {k: labels.count(k) / max(1, len(labels)) for k in TURN_TYPES},
             "asked_rate": rate(asked),
             "success_when_asked": rate([s for s, a in zip(solved, asked) if a]),
             "success_when_not_asked": rate([s for s, a in zip(solved, asked) if not a])}
    if sharded:
        attempts = premature = 0
        for d in dialogues:
            seen = 0
            for m in d.messages:
                seen += m["role"] == "teacher"
                if m["role"] == "student" and m["turn_type"] == "answer_attempt":
                    attempts += 1
                    premature += seen < len(d.problem.shards)
        entry["premature_answer_rate"] = premature / max(1, attempts)
        entry["premature_answers_per_conversation"] = premature / len(dialogues)
    return entry


# ---------------------------------------------------------------------------------------------
# The evaluation path, shared with sml.py: eval tasks, their teachers, one model on all of them.
# ---------------------------------------------------------------------------------------------

def load_eval_tasks(task: str, data: str, dataset: str | None = None, sharded_data: str | None = None,
                    n: int | None = None, seed: int = 0) -> dict[str, list]:
    """{eval task name: problems}, the held-out problems sml.py and this file's CLI both evaluate on.
    "<task>" is the main set (the tiny world's test split, Omni-MATH's test split, LiveCodeBench).
    "<task>-sharded" and "<task>-full" are Lost in Conversation's problems revealed shard by shard and the
    same problems fully specified in one turn (Table 1); the tiny world shards its own test problems."""
    if data == "tiny":   # its sharded pair is a class of problems the student computes when fully specified
        pair = tasks.tiny_problems(task, "test", n or 200, seed=1234, sharded=True)
        return {task: tasks.tiny_problems(task, "test", n or 200, seed=1234), f"{task}-sharded": pair,
                f"{task}-full": pair}
    name, path = tasks.data_source(data, dataset or {"math": "omni-math", "code": "livecodebench"}[task])
    out = {task: tasks.load_task(name, path, split="test", n=n, seed=seed)}
    if sharded_data:
        lic = tasks.load_task(f"lic-{task}", None if sharded_data == "hub" else sharded_data, n=n)
        out[f"{task}-sharded"] = out[f"{task}-full"] = lic
    return out


def task_teacher(name: str, main_teacher, tiny: bool):
    """The teacher of an eval task: the lazy user for "-sharded", a single turn for "-full", else the run's."""
    if name.endswith("-sharded") or name.endswith("-full"):
        return dialogue.ShardTeacher(instructions=not tiny, full=name.endswith("-full"))
    return main_teacher


class Suite(NamedTuple):
    """One eval task as it is rolled out: the problems that fit the context, their teacher, sharded or not."""
    problems: list
    teacher: object
    sharded: bool


def eval_suites(eval_tasks: dict, teachers: dict, chat, sampling: dialogue.Sampling, tiny: bool) -> dict:
    """{eval task: Suite}. A fully specified task gets teachers[its task] ("math" or "code"), a sharded one the
    lazy user and its "-full" pair one turn (task_teacher); problems whose opening leaves no room for a turn
    within the context are skipped (dialogue.fit_context)."""
    suites = {}
    for name, problems in eval_tasks.items():
        teacher = task_teacher(name, teachers[name.split("-")[0]], tiny)
        fitting = dialogue.fit_context(problems, teacher, chat, sampling.max_dialogue_tokens,
                                       sampling.max_turn_tokens, f"{name} problems")
        suites[name] = Suite(fitting, teacher, name.endswith("-sharded"))
    return suites


TOKEN_VIEWS = 3   # dialogues per model and eval task saved token by token, with their loss mask (report.html)


def evaluate_model(model, tokenizer, suites: dict, label: str, seeds, n_turns: int, sampling: dialogue.Sampling,
                   out: Path, *, classifier=None, contexts: dict | None = None, show: bool = False):
    """One model on every eval task (sml.py's evaluations and this file's CLI): ({eval task: eval.json entry},
    {eval task: the first seed's dialogues}). Seed k's go to out/dialogues/<label>-<task>-seed<k>.jsonl, and the
    first seed's first TOKEN_VIEWS, token by token, to <label>-<task>-tokens.jsonl.

    `contexts` {eval task: Fig. 3's contexts} adds the loss on the correct answer; a task whose contexts are
    None gets them here, from this model's first-seed dialogues (fig3_contexts), for every model after it.
    `show`: also write a readable sample, <label>-<task>-sample.txt, and print each task's curve."""
    contexts = {} if contexts is None else contexts
    results, first = {}, {}
    (out / "dialogues").mkdir(parents=True, exist_ok=True)
    for name, (problems, teacher, sharded) in suites.items():
        entry, by_seed = evaluate(model, tokenizer, problems, teacher, n_turns=n_turns, seeds=list(seeds),
                                  sampling=sampling, sharded=sharded, classifier=classifier,
                                  answer_contexts=contexts.get(name), desc=f"{label}/{name}")
        if name in contexts and contexts[name] is None:   # the first model: Fig. 3's contexts are known now
            contexts[name] = fig3_contexts(teacher, problems, tokenizer, n_turns, by_seed[0])
            entry |= answer_loss(model, tokenizer, contexts[name], n_turns)
        results[name], first[name] = entry, by_seed[0]
        for seed, ds in zip(seeds, by_seed):
            runfolder.write_jsonl(out / "dialogues" / f"{label}-{name}-seed{seed}.jsonl",
                                  [d.to_json() for d in ds])
        runfolder.write_jsonl(out / "dialogues" / f"{label}-{name}-tokens.jsonl",   # report.html's token view
                              [{**d.to_json(), "tokens": d.tokens(tokenizer)} for d in by_seed[0][:TOKEN_VIEWS]])
        if show:
            runfolder.atomic_write(out / "dialogues" / f"{label}-{name}-sample.txt",
                                   "\n\n".join(d.render() for d in by_seed[0][:8]) + "\n")
            print(f"{label}/{name}: solved by turn " + " ".join(f"{t}:{s:.2f}" for t, s in
                  enumerate(entry["success_at_turn"], start=1)) + f"; truncated {entry['truncated_rate']:.2f}"
                  f", over-long {entry['overlong_rate']:.2f}")
    return results, first


def load(name: str, device: str | None = None, seed: int = 0, dtype: str = "auto"):
    """(model, tokenizer): "tiny" is the tiny world's base model (warmed up once, then cached; always fp32, as
    its results were measured); else dialogue.load_model in `dtype` ("auto", "float32" or "bfloat16")."""
    if name == "tiny":
        model, tokenizer = tinyworld.load_tiny(seed=seed)
        return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")), tokenizer
    return dialogue.load_model(name, device, dialogue.DTYPES[dtype])


def teacher_tokens(max_turn_tokens: int) -> int:
    """A model teacher's reply cap: twice a student turn's, at most 512 (a 96-token arith turn: 192)."""
    return min(512, 2 * max_turn_tokens)


def run_folder_of(model: str) -> Path | None:
    """The sml.py run folder a checkpoint lies in (the first parent with a config.json), if any."""
    for folder in Path(model).resolve().parents:
        if (folder / "config.json").exists() and (folder / "split-train.json").exists():
            return folder
    return None


def check_splits(eval_tasks: dict, runs: list[Path]) -> None:
    """Refuse to test a run's model on problems from that run's training split."""
    for run in runs:
        train = set(json.loads((run / "split-train.json").read_text()))
        for name, problems in eval_tasks.items():
            seen = [p.id for p in problems if p.id in train]
            if seen:
                raise UserError(f"{len(seen)} of the {len(problems)} problems of eval task {name!r} were in the "
                                f"training split of the run {run}; pass that run's --seed (config.json) or "
                                "other --data.")


# ---------------------------------------------------------------------------------------------
# The standalone CLI.
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append",
                   help="'tiny', a hub id, a save_pretrained folder, 'smollm2' or a .gguf file; repeat for several")
    p.add_argument("--label", action="append",
                   help="a model's name in the tables; one per --model (default: folder name)")
    p.add_argument("--task", choices=["math", "code"], default="math")
    p.add_argument("--data", default="tiny", help="tiny, arith (sums for a small real model), a dataset file or "
                   "folder, 'hub', or 'humaneval' (code)")
    p.add_argument("--dataset",
                   help="which dataset --data holds (default: omni-math, or livecodebench for code)")
    p.add_argument("--sharded-data", help="Lost in Conversation JSON (path or 'hub'): adds '<task>-sharded' and "
                   "'<task>-full' (tiny: always)")
    p.add_argument("--seed", type=int,
                   help="the split's seed (default: the seed of the run the models come from, else 0)")
    p.add_argument("--turns", type=number(int, 1), default=10, help="N at test time (the paper: 10)")
    p.add_argument("--train-turns", type=number(int, 0), default=4,
                   help="the training horizon, marked on the plots (0: none)")
    p.add_argument("--seeds", type=number(int, 1), default=3,
                   help="rollouts of each problem, one per seed 0..k-1")
    p.add_argument("--temperature", type=number(float, 0), default=None, help="0: greedy (default: 1.0, 0.3 for arith)")
    p.add_argument("--top-p", type=number(float, high=1, above=0), default=1.0)
    p.add_argument("--teacher", default="auto", help="auto: scripted in the tiny world, else the first --model "
                   "(frozen) teaches every student; same: each student its own copy; scripted; verifier "
                   "(how far off a numeric answer is); verdict (only that it is wrong); "
                   "or a hub id / folder")
    p.add_argument("--problems", type=number(int, 1),
                   help="how many test problems (default: 200 tiny or arith, all else)")
    p.add_argument("--judge", help="a local chat model that classifies turn types (default: rules)")
    p.add_argument("--answer-loss", action="store_true", help="also compute Fig. 3's loss on the correct "
                   "answer, on contexts shared by every model: the tiny world's reference dialogues, else the "
                   "first model's")
    p.add_argument("--trained-on", choices=["math", "code"], help="the task the models were trained on: adds "
                   "the transfer table (Fig. 4), e.g. --task code --trained-on math")
    p.add_argument("--max-turn-tokens", type=number(int, 1),
                   help="default: 48 for tiny data, 96 for arith, 1024 otherwise")
    p.add_argument("--max-dialogue-tokens", type=number(int, 1),
                   help="default: 1024 for tiny data, 2048 for arith, 16384 otherwise (twice sml.py's training budget: "
                   "N = 10 turns)")
    p.add_argument("--rollout-batch", type=number(int, 1), help="dialogues per generate call at the full "
                   "context (default: every problem at once); a 12B model on one GPU needs a few (README)")
    p.add_argument("--device")
    p.add_argument("--dtype", choices=list(dialogue.DTYPES), default="auto",
                   help="of a real model's weights; auto: bf16 on CUDA, and on a CPU with native bf16 for a model "
                   "released in 16 bits or as GGUF; else fp32 (dialogue.default_dtype)")
    p.add_argument("--out", help="default: runs/eval-<task>-<time>")
    args = p.parse_args(argv)
    tiny, arith = args.data == "tiny", args.data == "arith"
    decoding = tasks.default_decoding(tiny, arith)
    args.model = args.model or ["tiny"]
    args.problems = args.problems or (200 if arith else None)
    args.temperature = decoding["temperature"] if args.temperature is None else args.temperature
    args.max_turn_tokens = args.max_turn_tokens or decoding["max_turn_tokens"]
    # as sml.py's evaluation: twice its training budget
    args.max_dialogue_tokens = args.max_dialogue_tokens or 2 * decoding["max_dialogue_tokens"]
    args.out = Path(args.out or f"runs/eval-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}")
    args.max_batch_tokens = args.rollout_batch * args.max_dialogue_tokens if args.rollout_batch else None
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    labels = args.label or [m if m == "tiny" else Path(m.rstrip("/")).name for m in args.model]
    if len(labels) != len(args.model) or len(set(labels)) != len(labels):
        raise UserError("Give one distinct --label per --model (default labels are folder names, "
                        "and two of them are the same here).")
    tiny = args.data == "tiny"
    if args.teacher == "scripted" and not tiny:
        raise UserError("The scripted teacher only knows the tiny world's problems; pass --teacher auto, "
                        "same, or a model id.")
    runs = [r for r in map(run_folder_of, args.model) if r is not None]
    seeds = {json.loads((r / "config.json").read_text()).get("seed", 0) for r in runs}
    if args.seed is None and len(seeds) > 1:
        raise UserError(f"The models come from runs with different split seeds ({sorted(seeds)}); evaluate each "
                        "run's models on their own, or pass --seed.")
    seed = args.seed if args.seed is not None else (seeds.pop() if seeds else 0)
    eval_tasks = load_eval_tasks(args.task, args.data, args.dataset, args.sharded_data, args.problems, seed)
    if not tiny:
        check_splits(eval_tasks, runs)
    runfolder.make_folder(args.out / "dialogues")
    judge = JudgeClassifier(*load(args.judge, args.device)) if args.judge else None
    teacher_model = None   # (model, tokenizer) of an LLM teacher shared by every student
    if args.teacher not in ("auto", "same", "scripted", "verifier", "verdict"):
        teacher_model = load(args.teacher, args.device, dtype=args.dtype)
        teacher_model[0].requires_grad_(False)
    sampling = dialogue.Sampling(args.temperature, args.top_p, args.max_turn_tokens, args.max_dialogue_tokens,
                                 args.max_batch_tokens)
    # Fig. 3's contexts, the same for every model: the first model's evaluation fills them in
    contexts = {args.task: None} if args.answer_loss and args.task == "math" else {}
    results = {}
    for k, (name, label) in enumerate(zip(args.model, labels)):
        student, tokenizer = load(name, args.device, dtype=args.dtype)
        if k == 0 and args.teacher == "auto" and not tiny:
            teacher_model = (student, tokenizer)   # the first model (the base) teaches everyone: kept loaded
        if named := dialogue.named_teacher(args.teacher):
            main_teacher = named
        elif args.teacher == "scripted" or (args.teacher == "auto" and tiny):
            main_teacher = tinyworld.scripted_teacher(args.task)
        else:
            model, tok = (student, tokenizer) if args.teacher == "same" else teacher_model
            main_teacher = dialogue.ModelTeacher(model, tok, max_batch_tokens=args.max_batch_tokens,
                                                 max_new_tokens=teacher_tokens(args.max_turn_tokens))
        chat = dialogue.ChatFormat(tokenizer)
        suites = eval_suites(eval_tasks, {args.task: main_teacher}, chat, sampling, tiny)
        results[label], _ = evaluate_model(student, tokenizer, suites, label, range(args.seeds), args.turns,
                                           sampling, args.out, classifier=judge, contexts=contexts, show=True)
        write_report(args.out, results, args.train_turns or None, args.trained_on)   # each model: nothing lost
        del student
    print(f"wrote {args.out}/eval.json and results.md")
    return results


if __name__ == "__main__":
    try:
        main()
    except (UserError, tasks.DataError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the reports written so far (after each model) are intact")
