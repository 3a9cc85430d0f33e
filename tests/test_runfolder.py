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
