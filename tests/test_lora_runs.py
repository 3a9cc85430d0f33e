"""LoRA in the training loop, on tiny random Gemma-3, Qwen2.5 and Llama-3 models with their real templates:
GRPO and SFT steps move only the adapters and never the base, the KL reference and the teacher with
adapters off are the starting policy and the base, gradient checkpointing changes no gradient, a run resumes
from an adapter checkpoint (after a kill -9 too), rollouts in chunks are the one batch's dialogues, and a
run that the memory plan says cannot fit is refused in one sentence. (sml.py end to end with LoRA, its merged
model in plain transformers and evaluate.py: tests/test_real_models.py.)"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dialogue
import generation
import grpo
from infra import lora
from infra import memory
import realarch
from infra import runfolder
import sft
import sml
import tasks
from dialogue import ChatFormat, Dialogue
from infra.runfolder import UserError

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small have nothing to split between threads (see test_real_models.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def examples(tok):
    """Two one-turn (ids, mask) pairs: the opening, then a student answer ending with its end-of-turn token."""
    chat = ChatFormat(tok)
    prompt = chat.opening("What is 2 + 2?")
    answers = [chat.encode(a) + [chat.end_of_turn] for a in ("It is \\boxed{4}.", "Maybe 5.")]
    return [(prompt + a, [0] * len(prompt) + [1] * len(a)) for a in answers]


def logits(model, tok):
    ids = torch.tensor([examples(tok)[0][0]])
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("arch", ["gemma3", "qwen2.5", "llama3.2"])
def test_grpo_and_sft_steps_move_the_adapters_and_never_the_base(arch, tmp_path):
    model, tok = realarch.build(arch, seed=1)
    base = logits(model, tok)
    params = lora.add_lora(model, rank=4, seed=0)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if ".lora_" not in k}
    chat = ChatFormat(tok)
    ds = [Dialogue(problem=None, segments=[("teacher", ids[:mask.index(1)]), ("student", ids[mask.index(1):])])
          for ids, mask in examples(tok)]
    opt = torch.optim.AdamW(params, lr=1e-2)
    stats = grpo.train_step(model, opt, runfolder.Guard(), ds, torch.tensor([1.0, -1.0]), chat.pad_id, "cpu",
                            reference=grpo.reference_policy(model), beta=0.1)
    assert stats["grad_norm"] > 0
    assert {id(p) for p in opt.state} == {id(p) for p in params}                    # optimiser state: adapters only
    sft.train(model, tok, examples(tok), tmp_path / "sft", lr=1e-2, batch_size=2, micro_batch=1, save_every=1,
              progress=False)
    state = torch.load(tmp_path / "sft" / "checkpoints" / "step-000001" / "trainer_state.pt", weights_only=False)
    assert len(state["optimizer"]["state"]) == len(params)
    assert (tmp_path / "sft" / "checkpoints" / "step-000001" / "adapter_config.json").exists()

    now = model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in frozen.items())                    # the base never moved
    assert all(p.grad is None and not p.requires_grad for n, p in model.named_parameters() if ".lora_" not in n)
    assert all(m.lora_B.abs().sum() > 0 for m in lora.adapters(model).values())     # every adapter did
    assert not torch.equal(logits(model, tok), base)
    with lora.adapters_off(model):
        assert torch.equal(logits(model, tok), base)                                 # the teacher: the base


def test_kl_reference_is_the_stages_starting_policy(tmp_path):
    """Fresh adapters: the reference is the base, exactly. A stage that starts from trained adapters (SFT, then
    RL): the reference is those adapters, as full finetuning's frozen copy of the SFT'd model would be."""
    model, tok = realarch.build("qwen2.5", seed=2)
    base = logits(model, tok)
    params = lora.add_lora(model, rank=4)
    reference = grpo.reference_policy(model)
    sft.train(model, tok, examples(tok) * 2, tmp_path, lr=5e-2, batch_size=2, micro_batch=2, save_every=100,
              progress=False)
    after_sft = logits(model, tok)
    assert not torch.allclose(after_sft, base, atol=1e-4)
    with reference() as r:
        assert r is model and torch.equal(logits(r, tok), base)                      # no copy, and the base
    assert torch.equal(logits(model, tok), after_sft)                                # own adapters back after
    second = grpo.reference_policy(model)
    opt = torch.optim.AdamW(params, lr=5e-2)
    model(input_ids=torch.tensor([examples(tok)[1][0]]), labels=torch.tensor([examples(tok)[1][0]])).loss.backward()
    opt.step()
    with second() as r:
        assert torch.equal(logits(r, tok), after_sft)


def test_gradient_checkpointing_changes_no_gradient():
    model, tok = realarch.build("gemma3", seed=3)
    lora.add_lora(model, rank=4)
    with torch.no_grad():
        for m in lora.adapters(model).values():
            m.lora_B.normal_()                          # B = 0 would make every A gradient 0
    ids, mask, attention = grpo.batch_tensors(examples(tok), ChatFormat(tok).pad_id, "cpu")

    def grads():
        model.zero_grad(set_to_none=True)
        logp = grpo.masked_logprobs(model.train(), ids, mask, attention)
        (-(logp * mask).sum()).backward()
        return [p.grad.clone() for p in model.parameters() if p.requires_grad]
    plain = grads()
    model.activation_checkpointing_enable()
    assert model.get_decoder().layers[0].gradient_checkpointing
    for a, b in zip(plain, grads()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


class Teacher:
    """Says the same thing every turn: the test is about checkpoints, not teaching."""

    def opening(self, problem):
        return dialogue.student_instructions(problem) + problem.statement

    def reply(self, ds):
        return ["Not quite.\n\nCheck it again."] * len(ds)


class Killed(Exception):
    """Stands in for kill -9 in the middle of a step (after the rollout, before its metrics)."""


def _grpo_run(out, monkeypatch=None, crash_at=None, resume=False):
    """4 GRPO steps on the nudged tiny Gemma-3 with LoRA, a checkpoint every 2; crashes in step crash_at + 1."""
    model, tok = dialogue.load_model(str(realarch.model_folder("gemma3-text")), "cpu")
    lora.add_lora(model, rank=4, seed=0)
    problems = tasks.load_omni_math(str(FIXTURES / "answer_four.jsonl"), "train")
    if crash_at is not None:
        real = grpo.train_step

        def crashing(*a, **k):
            if (out / "metrics.jsonl").exists() and len((out / "metrics.jsonl").read_text().splitlines()) >= crash_at:
                raise Killed("killed mid-step")
            return real(*a, **k)
        monkeypatch.setattr(grpo, "train_step", crashing)
    grpo.train(model, tok, Teacher(), problems, out, batch_problems=2, group_size=2, max_turns=2, lr=1e-2,
               sampling=dialogue.Sampling(max_turn_tokens=8, max_dialogue_tokens=400), save_every=2, resume=resume,
               progress=False)
    return [json.loads(line) for line in open(out / "metrics.jsonl")], lora.adapter_values(model)


def test_a_crashed_lora_run_resumes_from_its_adapter_checkpoint_as_if_never_stopped(tmp_path, monkeypatch):
    clean, clean_adapters = _grpo_run(tmp_path / "clean")
    assert [r["step"] for r in clean] == [1, 2, 3, 4] and any(r["grad_norm"] > 0 for r in clean)
    with pytest.raises(Killed):
        _grpo_run(tmp_path / "killed", monkeypatch, crash_at=2)        # dies in step 3, after checkpoint 2
    monkeypatch.undo()
    [ckpt] = runfolder.checkpoints(tmp_path / "killed")
    assert sorted(p.name for p in ckpt.glob("adapter*")) == ["adapter_config.json", "adapter_model.safetensors"]
    resumed, resumed_adapters = _grpo_run(tmp_path / "killed", resume=True)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    assert [r["reward"] for r in resumed] == [r["reward"] for r in clean]     # same samples: same adapters
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in clean], rel=1e-5)
    for name, (A, B) in clean_adapters.items():                               # and the optimiser state too
        torch.testing.assert_close(resumed_adapters[name][0], A, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(resumed_adapters[name][1], B, atol=1e-6, rtol=1e-5)


def sml_args(out, *extra):
    """3 GRPO steps of 2 problems x 2 dialogues, LoRA rank 4, a checkpoint after every step; 1 held-out problem."""
    return ["--task", "math", "--model", str(realarch.model_folder("qwen2.5")), "--data",
            str(FIXTURES / "answer_four.jsonl"), "--problems", "6", "--batch-problems", "2", "--group-size", "2",
            "--turns", "2", "--eval-turns", "2", "--eval-problems", "1", "--eval-seeds", "1", "--max-turn-tokens", "8",
            "--max-dialogue-tokens", "400", "--lora-rank", "4", "--save-every", "1", "--device", "cpu",
            "--out", str(out), *extra]


KILL_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
import grpo, sml
real = grpo.train_step
def slow(*a, **k):
    time.sleep(0.5)            # room for the kill to land mid-step
    return real(*a, **k)
grpo.train_step = slow
sml.main({args!r})
"""


def test_sml_with_lora_resumes_after_kill_minus_9(tmp_path):
    out = tmp_path / "run"
    script = lambda *extra: KILL_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"),  # noqa: E731
                                               args=sml_args(out, *extra))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script()], env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "seed-0" / "checkpoints" / "step-000001").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for ckpt in runfolder.checkpoints(out / "seed-0"):                 # every checkpoint on disk is whole
        lora.read_adapters(ckpt)
    r = subprocess.run([sys.executable, "-c", script("--resume")], env=env, timeout=300, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in open(out / "seed-0" / "metrics.jsonl")]
    assert [row["step"] for row in rows] == [1, 2, 3]                  # none repeated, none skipped
    order = runfolder.data_order(6, 0)
    train = json.loads((out / "split-train.json").read_text())
    assert [row["problems"] for row in rows] == [[train[i] for i in order[2 * s:2 * s + 2]] for s in range(3)]
    assert (out / "seed-0" / "merged" / "config.json").exists() and (out / "eval.json").exists()
    with pytest.raises(UserError, match="--lora-rank 4 -> 8"):         # a resume under another rank is refused
        sml.main(sml_args(out, "--resume", "--lora-rank", "8"))


def test_rollout_in_chunks_gives_the_one_batch_dialogues():
    """Greedy: the same dialogues, turn for turn, with the student's and the teacher's generate calls cut into
    chunks of at most 160 positions. Sampled: the chunks draw from one generator in order, so the
    first chunk is what a call with those prompts alone samples."""
    model, tok = dialogue.load_model(str(realarch.model_folder("gemma3")), "cpu")
    problems = tasks.load_omni_math(str(FIXTURES / "answer_four.jsonl"), "train")[:3]
    sizes, real = [], generation._generate_batch

    def spy(model, prompts, *a):
        sizes.append(len(prompts))
        return real(model, prompts, *a)

    def roll(cap):
        teacher = dialogue.ModelTeacher(model, tok, max_new_tokens=6, temperature=0, max_batch_tokens=cap)
        return dialogue.rollout(model, tok, problems, teacher, group_size=2, max_turns=3,
                                sampling=dialogue.Sampling(temperature=0, max_turn_tokens=8,
                                                           max_dialogue_tokens=200, max_batch_tokens=cap))
    one = roll(None)
    generation._generate_batch = spy
    try:
        chunked = roll(160)
    finally:
        generation._generate_batch = real
    assert set(sizes) == {1, 2}                                  # 6 prompts of 57-81 tokens (+8) cut in 2s and 1s
    assert [d.segments for d in chunked] == [d.segments for d in one]
    assert [d.messages for d in chunked] == [d.messages for d in one] and any(d.turns > 1 for d in one)

    chat = ChatFormat(tok)
    prompts = [chat.opening(p.statement) for p in problems]
    kw = dict(temperature=1.0, stop_token_ids=chat.stop_ids, pad_token_id=chat.pad_id, seed=5)
    width = max(map(len, prompts)) + 8
    whole = dialogue.generate(model, prompts, 8, **kw)
    assert dialogue.generate(model, prompts, 8, max_batch_tokens=3 * width, **kw) == whole   # one chunk: one stream
    cut = dialogue.generate(model, prompts, 8, max_batch_tokens=2 * width, **kw)
    assert cut[:2] == dialogue.generate(model, prompts[:2], 8, **kw)
    assert cut == dialogue.generate(model, prompts, 8, max_batch_tokens=2 * width, **kw)     # repeatable


def test_a_run_that_cannot_fit_is_refused_in_one_sentence_after_its_plan(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory, "free_bytes", lambda device: 2 ** 21)  # 2 MiB beyond the loaded weights
    with pytest.raises(UserError) as e:                                  # the rollout of 8 needs about 6 MiB
        sml.main(sml_args(tmp_path / "run", "--rollout-batch", "8", "--micro-batch", "1"))
    message = str(e.value)
    assert message.startswith("This run needs about") and "MiB are free" in message
    assert "--rollout-batch" in message and message.endswith(".") and "\n" not in message
    printed = capsys.readouterr().out
    assert "memory plan: qwen2" in printed and "does NOT fit" in printed
    assert not (tmp_path / "run" / "seed-0").exists()                 # refused before the first step


def test_the_rollout_batch_is_the_most_the_plan_fits(tmp_path, monkeypatch, capsys):
    """Not given, it is chosen from the plan: the most dialogues per generate call, up to B x g, whose plan
    fits in 90% of the free memory (the free memory counting the weights already loaded)."""
    student = realarch.build("qwen2.5")[0]
    lora.add_lora(student, rank=4)
    loaded = sum(p.numel() * p.element_size() for p in student.parameters())
    args = sml.parse_args(sml_args(tmp_path / "run", "--group-size", "4", "--micro-batch", "1"))   # B x g = 8
    settings = dict(lora_rank=4, dtype=torch.float32, micro_batch=args.micro_batch, max_dialogue_tokens=400,
                    grad_checkpointing=True, kept_dialogues=8)      # every dialogue's cache, kept across turns
    plan = lambda n: memory.memory_plan(student.config, rollout_batch=n, **settings)["total"]   # noqa: E731
    assert plan(6) < plan(7)                                                         # the rollout dominates
    monkeypatch.setattr(memory, "free_bytes", lambda device: int((plan(6) + plan(7)) / 2 / 0.9) - loaded)
    assert sml.plan_memory(args, student, Teacher()) == 6 * 400                     # 6 fit, 7 do not
    assert "rollout batch 6: the most dialogues per generate call that fit" in capsys.readouterr().out


def test_the_plan_counts_the_caches_a_rollout_keeps_the_teachers_too_when_it_is_the_student(tmp_path, monkeypatch):
    """Each of a step's B x g dialogues keeps its keys and values between turns; a model teacher on the
    student's own weights keeps its view of each too, with the same KV per token; a scripted one keeps none."""
    student, tok = realarch.build("qwen2.5")
    args = sml.parse_args(sml_args(tmp_path / "run", "--group-size", "4", "--rollout-batch", "2"))   # B x g = 8
    seen = []
    real = memory.memory_plan
    monkeypatch.setattr(memory, "memory_plan", lambda *a, **kw: seen.append(kw["kept_dialogues"]) or real(*a, **kw))
    sml.plan_memory(args, student, Teacher())
    sml.plan_memory(args, student, dialogue.ModelTeacher(student, tok))
    sml.plan_memory(args, student, dialogue.ModelTeacher(student, tok, reuse_cache=False))
    assert seen == [8, 16, 8]


def test_caches_that_would_not_fit_are_not_kept_instead_of_refusing_the_run(tmp_path, monkeypatch, capsys):
    """Kept caches are a speed-up: when the plan with them exceeds the free memory but the plan without them
    fits, the run re-reads each turn (student and model teacher) instead of ending."""
    student, tok = realarch.build("qwen2.5")
    lora.add_lora(student, rank=4)
    args = sml.parse_args(sml_args(tmp_path / "run", "--group-size", "16", "--micro-batch", "1",
                                   "--rollout-batch", "2"))                                       # B x g = 32
    teacher = dialogue.ModelTeacher(student, tok)
    settings = dict(rollout_batch=2, lora_rank=4, dtype=torch.float32, micro_batch=1,
                    max_dialogue_tokens=args.max_dialogue_tokens, grad_checkpointing=True)
    without, kept = (memory.memory_plan(student.config, kept_dialogues=k, **settings)["total"] for k in (0, 64))
    assert without < kept                                  # 32 dialogues' caches, and the teacher's view of each
    loaded = sum(p.numel() * p.element_size() for p in student.parameters())
    monkeypatch.setattr(memory, "free_bytes", lambda device: (without + kept) // 2 - loaded)
    args.max_batch_tokens = sml.plan_memory(args, student, teacher)                  # as sml.run does
    assert args.max_batch_tokens == 2 * args.max_dialogue_tokens
    assert args.reuse_cache is False and teacher.reuse_cache is False
    assert sml.train_sampling(args).reuse_cache is False and sml.eval_sampling(args).reuse_cache is False
    assert "keys and values are not kept across turns: 64 dialogues" in capsys.readouterr().out


def test_lora_and_checkpointing_are_on_for_real_models_and_off_for_the_tiny_one():
    tiny, real = sml.parse_args([]), sml.parse_args(["--model", "google/gemma-3-12b-it"])
    assert (tiny.lora_rank, tiny.grad_checkpointing, tiny.rollout_batch) == (0, False, None)
    assert (real.lora_rank, real.lora_alpha, real.grad_checkpointing) == (16, 32.0, True)
    assert real.lora_targets == list(lora.DEFAULT_TARGETS)
    custom = sml.parse_args(["--model", "x", "--lora-rank", "8", "--lora-targets", "q_proj,v_proj",
                             "--no-grad-checkpointing"])
    assert (custom.lora_alpha, custom.lora_targets, custom.grad_checkpointing) == (16.0, ["q_proj", "v_proj"], False)
    assert {"lora_rank", "lora_alpha", "lora_targets"} <= set(sml.TRAINING_KEYS)
