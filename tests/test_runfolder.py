"""runfolder.py: atomic files, checkpoints that survive damage, the folder lock, the resume check."""
import json
import subprocess
import sys

import pytest
import torch

from infra import runfolder
from conftest import ROOT, random_llama


def _checkpoints(tok, out, steps):
    model = random_llama(tok, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    saved = {}
    for step in steps:
        model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[5, 6, 7]])).loss.backward()
        opt.step()
        opt.zero_grad()
        runfolder.save_checkpoint(out, step, model, tok, opt, {"method": "test"})
        saved[step] = [p.detach().clone() for p in model.parameters()]
    return saved


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tok, tmp_path, capsys):
    saved = _checkpoints(tok, tmp_path, [1, 2])
    state = tmp_path / "checkpoints" / "step-000002" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])                         # truncated, as by a full disk
    fresh = random_llama(tok, seed=9)
    assert runfolder.resume(tmp_path, fresh, torch.optim.AdamW(fresh.parameters()))["step"] == 1
    assert all(torch.equal(a, b) for a, b in zip(saved[1], fresh.parameters()))
    said = capsys.readouterr().out
    assert "step-000002 is damaged" in said and "resuming from" in said and "step-000001" in said
    weights = tmp_path / "checkpoints" / "step-000001" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(runfolder.UserError, match="Every checkpoint"):
        runfolder.resume(tmp_path, fresh, torch.optim.AdamW(fresh.parameters()))
    assert runfolder.resume(tmp_path / "none", fresh, torch.optim.AdamW(fresh.parameters())) is None


def test_the_lock_refuses_a_second_run_and_dies_with_its_process(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, {str(ROOT)!r});"
                               f"from infra import runfolder; import pathlib\nwith runfolder.lock(pathlib.Path({str(tmp_path)!r})):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(runfolder.UserError, match=f"pid {holder.pid}"):
        with runfolder.lock(tmp_path):
            pass
    holder.kill()                                                       # kill -9: the lock goes with it
    holder.wait()
    with runfolder.lock(tmp_path):
        pass


def test_check_resume_names_every_difference(tmp_path):
    runfolder.write_json(tmp_path / "config.json", {"method": "mt-rl", "lr": 1e-4, "eval_turns": 10})
    runfolder.check_resume(tmp_path, {"method": "mt-rl", "lr": 1e-4, "eval_turns": 4}, True, ["method", "lr"])
    with pytest.raises(runfolder.UserError) as e:
        runfolder.check_resume(tmp_path, {"method": "st-rl", "lr": 2e-4}, True, ["method", "lr"])
    assert "--method 'mt-rl' -> 'st-rl'" in str(e.value) and "--lr 0.0001 -> 0.0002" in str(e.value)


def test_metrics_are_cut_back_to_the_checkpoint(tmp_path):
    for step in range(1, 6):
        runfolder.append_metrics(tmp_path, {"step": step})
    runfolder.truncate_metrics(tmp_path, 3)
    assert [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint_and_says_so(tok, tmp_path, monkeypatch):
    import errno
    _checkpoints(tok, tmp_path, [1])
    model = random_llama(tok, seed=1)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(runfolder.UserError, match="the disk is full.*step-000001, is intact.*--resume"):
        runfolder.save_checkpoint(tmp_path, 2, model, tok, torch.optim.AdamW(model.parameters()), {})
    assert [p.name for p in runfolder.checkpoints(tmp_path)] == ["step-000001"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))


# The formulas every run so far sampled with: derive_seed must keep giving these, or old runs no longer reproduce.
HISTORIC_SEEDS = {
    "turn": lambda seed, t: seed * 1000 + t,
    "teacher": lambda seed, calls: seed * 7919 + calls,
    "question": lambda seed, c: seed * 7_919 + c,
    "grpo_step": lambda seed, step: seed * 100_003 + step,
    "collection": lambda seed, i: seed * 1_000_003 + i,
    "sft_epoch": lambda seed, epoch: seed + epoch,
}
# What a run's counters reach: N <= 10 turns, thousands of teacher calls, Q-priming's turn * 101 + attempt,
# 2000 problems / 8 = 250 GRPO steps, chunks of 32 out of 20,000 problems, one SFT epoch.
REALISTIC_COUNTERS = {
    "turn": range(1, 11), "teacher": range(5000), "question": [t * 101 + a for t in range(1, 10) for a in range(2)],
    "grpo_step": range(1000), "collection": range(0, 20_000, 32), "sft_epoch": [0],
}


def test_derive_seed_gives_the_historic_seeds():
    assert set(runfolder.SEED_STREAMS) == set(HISTORIC_SEEDS)
    for stream, formula in HISTORIC_SEEDS.items():
        for seed in range(12):
            for counter in (0, 1, 2, 7, 101, 999):
                assert runfolder.derive_seed(seed, stream, counter) == formula(seed, counter), stream
    assert runfolder.derive_seed(3, "turn", 1) == 3001 and runfolder.derive_seed(2, "grpo_step") == 200_006


def test_derive_seed_streams_do_not_collide():
    from infra import distributed
    seeds = range(10)
    values = {s: {seed: {runfolder.derive_seed(seed, s, c) for c in cs} for seed in seeds}
              for s, cs in REALISTIC_COUNTERS.items()}
    for stream, by_seed in values.items():    # within a stream: seed s never reaches seed s + 1's numbers
        every = [v for seed in seeds for v in by_seed[seed]]
        assert len(every) == len(set(every)), stream
        assert max(every) < distributed.RANK_SEED_STRIDE   # rank offsets stay above every derived seed
    for a in values:                          # between streams, for one training seed (seed 0: all are counters)
        for b in values:
            if runfolder.SEED_STREAMS[a] != runfolder.SEED_STREAMS[b]:   # "teacher" and "question" share one
                for seed in seeds[1:]:
                    assert not values[a][seed] & values[b][seed], (a, b, seed)
