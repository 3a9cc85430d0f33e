"""grpo.py: rewards and advantages by hand, masks that ignore teacher tokens, learning, NaN steps, resume."""
import json

import pytest
import torch

import dialogue
import grpo
from infra import runfolder
import tasks
import tinyworld
from conftest import random_llama
from dialogue import Dialogue


def test_trajectory_reward_is_discounted_by_turn():
    assert grpo.trajectory_reward(None) == 0.0
    assert grpo.trajectory_reward(1) == 1.0
    assert grpo.trajectory_reward(2) == pytest.approx(0.7)
    assert grpo.trajectory_reward(4, gamma=0.7) == pytest.approx(0.343)
    assert grpo.trajectory_reward(3, gamma=0.5) == pytest.approx(0.25)


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0,   0.7, 0.7, 0.7, 0.7,   0.49, 0.0, 1.0, 0.0])
    adv, zero = grpo.group_advantages(r, 4, eps=0.0)
    # group 1: mean 0.25, std (Bessel) 0.5 -> [1.5, -0.5, -0.5, -0.5]
    assert adv[:4].tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5])
    assert adv[4:8].tolist() == [0.0, 0.0, 0.0, 0.0]            # all equal: no signal, exactly 0
    g3 = torch.tensor([0.49, 0.0, 1.0, 0.0])
    assert adv[8:].tolist() == pytest.approx(((g3 - g3.mean()) / g3.std()).tolist())
    assert zero == pytest.approx(1 / 3)
    all_zero, frac = grpo.group_advantages(torch.zeros(8), 8)
    assert all_zero.abs().sum() == 0 and frac == 1.0


def _sequence(tok):
    chat = dialogue.ChatFormat(tok)
    segs = [("teacher", chat.opening("What is 12 + 30?")), ("student", chat.encode("\\boxed{41}") + [chat.end_of_turn]),
            ("teacher", chat.teacher_turn("Not quite. The last digit is 2.")),
            ("student", chat.encode("\\boxed{42}") + [chat.end_of_turn])]
    d = Dialogue(problem=None, segments=segs)
    return d, grpo.batch_tensors([(d.ids, d.student_mask)], tok.pad_token_id, "cpu")


def test_masked_logprobs_equal_full_softmax_in_chunks(tok, model):
    d, (ids, mask, att) = _sequence(tok)
    logp = grpo.masked_logprobs(model, ids, mask, att, chunk=3)          # several chunks
    full = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), -1)
    expect = torch.zeros_like(logp)
    expect[:, 1:] = full[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
    assert torch.allclose(logp, expect, atol=1e-5)
    assert (logp[mask == 0] == 0).all() and (logp[mask == 1] < 0).all()


def test_loss_gradient_is_zero_on_teacher_tokens(tok):
    model = random_llama(tok, seed=1)
    d, (ids, mask, att) = _sequence(tok)
    hidden = {}
    model.get_decoder().register_forward_hook(lambda m, i, o: hidden.setdefault("h", o.last_hidden_state) and None)

    def grab(m, i, o):
        o.last_hidden_state.retain_grad()
        hidden["h"] = o.last_hidden_state
    model.get_decoder()._forward_hooks.clear()
    model.get_decoder().register_forward_hook(grab)
    logp = grpo.masked_logprobs(model, ids, mask, att)
    loss = grpo.policy_loss(logp, mask, torch.tensor([1.3]))
    loss.backward()
    g = hidden["h"].grad[0].abs().sum(-1)                                # (T,) gradient reaching each position
    predicts_student = mask[0, 1:].bool()                                # position i predicts token i+1
    assert (g[:-1][~predicts_student] == 0).all()                       # teacher tokens: no gradient at all
    assert (g[:-1][predicts_student] > 0).all()                         # student tokens: all of them get one
    assert g[-1] == 0


def test_policy_loss_ratio_clipping_and_k3():
    logp = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    mask, A = torch.tensor([[1.0, 1.0]]), torch.tensor([1.0])
    old = torch.tensor([[-1.5, -0.5]])                                   # ratios e^0.5 (clipped) and e^-0.5
    loss = grpo.policy_loss(logp, mask, A, old_logp=old, clip_eps=0.2)
    r = torch.exp(torch.tensor([0.5, -0.5]))
    assert loss.item() == pytest.approx(-(min(r[0], 1.2) + r[1]).item() / 2, rel=1e-5)
    loss.backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] != 0                # the clipped token gets no gradient
    kl = grpo.policy_loss(torch.tensor([[-1.0]]), torch.tensor([[1.0]]), torch.tensor([0.0]),
                          ref_logp=torch.tensor([[-2.0]]), beta=1.0)
    assert kl.item() == pytest.approx(float(torch.exp(torch.tensor(-1.0)) - (-1.0) - 1))


def test_grpo_raises_probability_of_the_rewarded_answer(tok):
    """A one-token 'dialogue': answering '7' is rewarded, '3' is not; a few GRPO steps must prefer '7'."""
    model = random_llama(tok, seed=2)
    chat = dialogue.ChatFormat(tok)
    prompt = chat.opening("Pick.")
    seven, three = tok.convert_tokens_to_ids("7"), tok.convert_tokens_to_ids("3")

    def p(token):
        with torch.no_grad():
            return torch.softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1], -1)[token].item()
    before, before_three = p(seven), p(three)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    guard = runfolder.Guard()
    for _ in range(15):
        ds = [Dialogue(problem=None, segments=[("teacher", prompt), ("student", [a, chat.end_of_turn])])
              for a in [seven, three, three, three] * 2]
        rewards = torch.tensor([1.0 if d.segments[1][1][0] == seven else 0.0 for d in ds])
        adv, _ = grpo.group_advantages(rewards, 8)
        grpo.train_step(model, opt, guard, ds, adv, tok.pad_token_id, "cpu")
    assert p(seven) > 20 * before and p(three) < before_three


def test_overlong_dialogues_are_trained_on_and_truncated_ones_are_not(tok):
    model = random_llama(tok, seed=4)
    d, _ = _sequence(tok)
    n = sum(d.student_mask)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def tokens(**flags):
        ds = [Dialogue(problem=None, segments=d.segments), Dialogue(problem=None, segments=d.segments, **flags)]
        return grpo.train_step(model, opt, runfolder.Guard(), ds, torch.tensor([1.0, -1.0]), tok.pad_token_id,
                               "cpu")["student_tokens"]
    assert tokens() == 2 * n
    assert tokens(overlong=True) == 2 * n       # the student's failure: its -1 advantage is learned from
    assert tokens(truncated=True) == n          # cut by the context: its reward is unknown, left out


def test_nan_steps_are_skipped_then_stop_the_run(tok, monkeypatch):
    model = random_llama(tok, seed=3)
    d, _ = _sequence(tok)
    ds = [d, Dialogue(problem=None, segments=d.segments)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    guard = runfolder.Guard(max_in_a_row=3)
    before = [p.detach().clone() for p in model.parameters()]
    monkeypatch.setattr(grpo, "policy_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True) * 1)
    adv = torch.tensor([1.0, -1.0])
    for _ in range(2):
        stats = grpo.train_step(model, opt, guard, ds, adv, tok.pad_token_id, "cpu")
        assert stats["grad_norm"] != stats["grad_norm"]                 # NaN: the step was skipped
    assert guard.skipped == 2 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(runfolder.UserError, match="diverged"):
        grpo.train_step(model, opt, guard, ds, adv, tok.pad_token_id, "cpu")


def test_checkpoint_round_trip_loads_in_plain_transformers(tok, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = random_llama(tok, seed=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[5, 6, 7]])).loss.backward()
    opt.step()
    path = runfolder.save_checkpoint(tmp_path, 3, model, tok, opt, {"method": "grpo"})
    assert runfolder.latest_checkpoint(tmp_path) == path and not list((tmp_path / "checkpoints").glob(".tmp*"))
    plain = AutoModelForCausalLM.from_pretrained(path)
    assert AutoTokenizer.from_pretrained(path).encode("12") == tok.encode("12")
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.equal(a, b)
    fresh = random_llama(tok, seed=5)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    assert runfolder.load_checkpoint(path, fresh, opt2)["step"] == 3
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])


class Killed(Exception):
    """Stands in for kill -9 in the middle of a step (after the rollout, before its metrics)."""


def _run(tok, out, monkeypatch=None, crash_at=None, resume=False):
    model = random_llama(tok, seed=6)
    problems = tasks.tiny_math_problems("train", n=12, seed=0)
    if crash_at is not None:
        real = grpo.train_step

        def crashing(*a, **k):
            if len(open(out / "metrics.jsonl").read().splitlines()) >= crash_at if (out / "metrics.jsonl").exists() else False:
                raise Killed("killed mid-step")
            return real(*a, **k)
        monkeypatch.setattr(grpo, "train_step", crashing)
    grpo.train(model, tok, tinyworld.HintTeacher(), problems, out, batch_problems=2, group_size=2, max_turns=2,
               lr=1e-3, sampling=dialogue.Sampling(max_turn_tokens=6, max_dialogue_tokens=128), save_every=2,
               resume=resume, progress=False)
    return [json.loads(l) for l in open(out / "metrics.jsonl")]


def test_killed_run_resumes_without_repeating_or_skipping(tok, tmp_path, monkeypatch):
    clean = _run(tok, tmp_path / "clean")
    assert [r["step"] for r in clean] == list(range(1, 7))
    with pytest.raises(Killed):
        _run(tok, tmp_path / "killed", monkeypatch, crash_at=3)          # dies in step 4, after checkpoint 2
    monkeypatch.undo()
    assert len(open(tmp_path / "killed" / "metrics.jsonl").read().splitlines()) == 3
    resumed = _run(tok, tmp_path / "killed", resume=True)
    assert [r["step"] for r in resumed] == list(range(1, 7))            # step 3 re-run once, nothing skipped
    assert [r["problems"] for r in resumed] == [r["problems"] for r in clean]
    assert [r["reward"] for r in resumed] == [r["reward"] for r in clean]   # same data, same samples, same weights


KILL_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import dialogue, grpo, tasks, tinyworld
from conftest import random_llama
from pathlib import Path
torch.set_num_threads(1)
tok = tinyworld.build_tokenizer()
model = random_llama(tok, seed=6)
real = grpo.train_step
def slow(*a, **k):
    time.sleep(0.3)            # room for the kill to land mid-step
    return real(*a, **k)
grpo.train_step = slow
grpo.train(model, tok, tinyworld.HintTeacher(), tasks.tiny_math_problems("train", n=16, seed=0), Path({out!r}),
           batch_problems=2, group_size=2, max_turns=2, lr=1e-3,
           sampling=dialogue.Sampling(max_turn_tokens=6, max_dialogue_tokens=128), save_every=1, resume={resume},
           progress=False)
"""


def test_kill_minus_9_loses_at_most_the_steps_since_the_last_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    script = lambda resume: KILL_SCRIPT.format(root=str(root), tests=str(root / "tests"), out=str(out), resume=resume)
    proc = subprocess.Popen([sys.executable, "-c", script(False)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step-000002").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for ckpt in (out / "checkpoints").glob("step-*"):      # every checkpoint on disk is whole and loads
        from transformers import AutoModelForCausalLM
        AutoModelForCausalLM.from_pretrained(ckpt)
    r = subprocess.run([sys.executable, "-c", script(True)], env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    assert [row["step"] for row in rows] == list(range(1, 9))          # none repeated, none skipped
    order = runfolder.data_order(16, 0)
    problems = tasks.tiny_math_problems("train", n=16, seed=0)
    assert [row["problems"] for row in rows] == [[problems[i].id for i in order[2 * s:2 * s + 2]] for s in range(8)]


# --- the loss over a batch: which dialogues count, and what it is divided by (issue: flat groups) ---

def test_group_statistics_leave_out_truncated_members():
    """Seven solved plus one cut by the context is a flat group: the cut one has no reward, not 0."""
    rewards = torch.tensor([1.0] * 7 + [0.0] + [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    valid = torch.tensor([True] * 7 + [False] + [True, True, True, False, True, True, True, True])
    adv, flat = grpo.group_advantages(rewards, 8, valid=valid, eps=0.0)
    assert adv[:8].tolist() == [0.0] * 8 and flat == pytest.approx(0.5)
    g = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])               # the second group's 7 rewarded members
    expect = ((g - g.mean()) / g.std()).tolist()
    assert adv[8:11].tolist() + adv[12:].tolist() == pytest.approx(expect)
    assert adv[11] == 0.0                                                # no reward, no advantage
    one_left, frac = grpo.group_advantages(torch.tensor([1.0, 0.0]), 2, valid=torch.tensor([True, False]))
    assert one_left.tolist() == [0.0, 0.0] and frac == 1.0              # one member is no group


def _batch(tok, n_flat_groups):
    """Two groups of two one-turn dialogues: the first has a reward spread, the rest are flat."""
    chat = dialogue.ChatFormat(tok)
    prompt = chat.opening("Pick.")
    ids = [tok.convert_tokens_to_ids(c) for c in "73" * (1 + n_flat_groups)]
    ds = [Dialogue(problem=None, segments=[("teacher", prompt), ("student", [a, chat.end_of_turn])], group=k // 2)
          for k, a in enumerate(ids)]
    rewards = torch.tensor([1.0, 0.0] + [0.0, 0.0] * n_flat_groups)
    adv, _ = grpo.group_advantages(rewards, 2)
    return ds, adv


def test_token_mean_divides_by_every_scored_student_token(tok):
    """The denominator is the student tokens of every dialogue that has a reward (flat groups included), so
    the step does not grow by 1 / (1 - fraction of flat groups)."""
    model = random_llama(tok, seed=7)
    ds, adv = _batch(tok, n_flat_groups=3)
    seen = {}
    real = grpo.policy_loss

    def spy(*a, **k):
        seen.setdefault("n_tokens", []).append(k["n_tokens"])
        return real(*a, **k)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    import unittest.mock
    with unittest.mock.patch.object(grpo, "policy_loss", spy):
        stats = grpo.train_step(model, opt, runfolder.Guard(), ds, adv, tok.pad_token_id, "cpu")
    assert stats["student_tokens"] == 8 * 2 and set(seen["n_tokens"]) == {16}
    # the loss by hand: only the first group has advantages (+-0.707), each over its 2 student tokens
    logp = grpo.masked_logprobs(model, *grpo.batch_tensors([(d.ids, d.student_mask) for d in ds[:2]],
                                                            tok.pad_token_id, "cpu"))
    by_hand = -(adv[:2, None] * logp).sum() / 16
    assert stats["loss"] == pytest.approx(by_hand.item(), rel=1e-5)


def test_with_a_kl_term_flat_groups_still_take_a_step(tok):
    """Eq. 2 applies the KL to every sample: a batch of flat groups moves the policy towards the reference."""
    model, reference = random_llama(tok, seed=8), random_llama(tok, seed=9)
    ds, _ = _batch(tok, n_flat_groups=1)
    adv = torch.zeros(4)                                                 # every group flat
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    stats = grpo.train_step(model, opt, runfolder.Guard(), ds, adv, tok.pad_token_id, "cpu",
                            reference=grpo.reference_policy(reference), beta=0.5)
    assert stats["loss"] > 0 and stats["student_tokens"] == 8
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    unchanged = random_llama(tok, seed=8)                                # beta = 0: no signal, no step at all
    stats0 = grpo.train_step(unchanged, torch.optim.SGD(unchanged.parameters(), lr=0.1), runfolder.Guard(), ds, adv,
                             tok.pad_token_id, "cpu")
    assert stats0["loss"] == 0.0 and all(torch.equal(a, b) for a, b in
                                         zip(random_llama(tok, seed=8).parameters(), unchanged.parameters()))
