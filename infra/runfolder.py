"""The run folder: what every stage writes, written so that a killed run loses nothing.

A run lives in one folder (`--out`). Every file is written atomically (a temporary file, then a
rename), so a run killed at any moment leaves each file whole or absent. Checkpoints are folders in
`save_pretrained` format (a LoRA run's: its adapters in PEFT's layout, lora.save_adapters) plus
`trainer_state.pt` (optimiser and RNG state), renamed into place once complete.
`python sml.py ... --resume --out DIR` continues from the last intact checkpoint.

    config.json          the run's arguments; a resume must train the same thing (check_resume)
    .lock                held while a run writes the folder: a second run on it is refused
    seed-K/metrics.jsonl one line per optimiser step (appended and fsynced; cut back on resume)
    seed-K/events.out.tfevents.*  the same numbers for TensorBoard, with --tensorboard (use_tensorboard)
    seed-K/checkpoints/step-N/   weights (or adapters) + tokenizer + trainer_state.pt; the last two are kept
    seed-K/finished      marks a stage whose last checkpoint is final
    seed-K/merged/       a LoRA run's trained model, adapters merged, in save_pretrained format (sml.py)

Under torchrun (distributed.py) rank 0 alone writes the folder: every writer here returns at once
on the other ranks, which only read (checkpoints on resume).

Also here, because every trainer shares them: the NaN guard, the seeded data order, the seeds every random
stream of a run derives from its seed (`derive_seed`), and `UserError`, the mistakes a user can fix, which
the command lines print as one sentence. Not in the paper: plumbing.

    python -m pytest tests/test_runfolder.py -q
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import shutil
from pathlib import Path

import torch

from infra import lora
from infra import distributed


class UserError(Exception):
    """A mistake the user can fix (a bad path, an unusable model, a clashing run): printed as one sentence."""


def number(kind=int, low=None, high=None, above=None):
    """An argparse type for a number in [low, high] (or > above), checked before any model is loaded:
    argparse then names the flag in a one-line error ("argument --turns: 0 is below 1")."""
    def parse(text: str):
        try:
            x = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if low is not None and x < low:
            raise argparse.ArgumentTypeError(f"{text} is below {low}")
        if high is not None and x > high:
            raise argparse.ArgumentTypeError(f"{text} is above {high}")
        if above is not None and x <= above:
            raise argparse.ArgumentTypeError(f"{text} must be above {above}")
        return x
    return parse


def make_folder(out: Path) -> Path:
    """Create the run folder, or say in one sentence why it can't be (a file in the way, no permission)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot use {out} as the output folder ({e.strerror or e}); pass another --out.") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"Cannot write to the output folder {out}; pass another --out.")
    return out


# ---------------------------------------------------------------------------------------------
# Files: atomic writes, metrics.
# ---------------------------------------------------------------------------------------------

def atomic_write(path, text: str):
    """Write a temporary file, then rename it: a killed run leaves the file whole or absent, never half."""
    if not distributed.is_main():
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2, default=str))


def write_jsonl(path, rows):
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))


def append_metrics(out: Path, row: dict):
    """One line per optimiser step, on disk before the step's checkpoint can refer to it; with use_tensorboard(),
    its numbers also go to TensorBoard's event files in the same folder."""
    if not distributed.is_main():
        return
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if _tensorboard is not None:
        _scalars(out, row)


# TensorBoard (sml.py --tensorboard): metrics.jsonl stays the record; the event files are a view of it, for
# `tensorboard --logdir runs/` to draw while a run trains. None until use_tensorboard(): then a function
# (folder, first step) -> that folder's SummaryWriter.
_tensorboard = None


def use_tensorboard() -> None:
    """From now on every metrics row is also written as TensorBoard scalars beside its metrics.jsonl. Needs the
    tensorboard package, which the project does not otherwise require. A folder's writer starts at the first
    step this process logs there (purge_step): on --resume, TensorBoard drops what the killed run logged from
    that step on, as truncate_metrics cuts metrics.jsonl."""
    global _tensorboard
    try:
        from torch.utils.tensorboard import SummaryWriter          # imports tensorboard
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install tensorboard (or drop "
                        "--tensorboard; metrics.jsonl is written either way).") from None
    writers = {}

    def writer(out: Path, first_step: int):
        if out not in writers:
            writers[out] = SummaryWriter(log_dir=str(out), purge_step=first_step)
        return writers[out]
    _tensorboard = writer


def _scalars(out: Path, row: dict) -> None:
    """A metrics row's numbers as scalars at its step, flushed: TensorBoard shows the run as it trains."""
    writer = _tensorboard(out, row["step"])
    for key, value in row.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            writer.add_scalar(key, value, row["step"])
    writer.flush()


def truncate_metrics(out: Path, step: int):
    """On resume, forget the metrics of steps after the checkpoint: they will be run again."""
    path = out / "metrics.jsonl"
    if path.exists():
        rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        write_jsonl(path, [r for r in rows if r.get("step", 0) <= step])


def data_order(n: int, seed: int) -> list[int]:
    """One epoch's problem order: a seeded permutation, so a resumed run knows where it was."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


# Every random stream of a run gets its seed from the run's seed: seed * stride + counter. The stride is larger
# than the counter ever gets, so seed s's counters never reach seed s + 1's: two training seeds (or two
# evaluation seeds) that shared a stream's seeds would draw the same samples and look like independent runs
# that agree, shrinking every CI over seeds. distributed.rank_seed adds rank * 1_000_000_007 on top, far above
# every seed derived here. The strides are the ones the runs were made with: changing one changes every sample.
# Streams of the same seed may share a number (at seed 0 each is its counter; "teacher" and "question" share
# 7919): they seed different generate calls, on other prompts, where equal seeds only reuse uniform draws.
SEED_STREAMS = {
    "turn": 1_000,              # dialogue.rollout: the student's turn t (counter: t = 1..N)
    "teacher": 7_919,           # dialogue.ModelTeacher: its k-th generate call (counter: k = 1, 2, ...)
    "question": 7_919,          # qprime.QuestionInjector: counter turn * 101 + attempt (attempts < 101)
    "grpo_step": 100_003,       # grpo.train: the rollout of step k (counter: k = 0, 1, ...)
    "collection": 1_000_003,    # sft.collect: the rollout of the chunk that starts at problem i (counter: i)
    "sft_epoch": 1,             # sft.train: epoch e's order; stride 1 is safe only because runs train 1 epoch
}


def derive_seed(seed: int, stream: str, counter: int = 0) -> int:
    """The seed of `stream`'s `counter`-th draw in a run seeded `seed` (SEED_STREAMS)."""
    return seed * SEED_STREAMS[stream] + counter


# ---------------------------------------------------------------------------------------------
# Checkpoints: save_pretrained + optimiser + RNG, renamed into place; resume from the last intact one.
# ---------------------------------------------------------------------------------------------

def save_checkpoint(out: Path, step: int, model, tokenizer, optimizer, extra: dict, keep: int = 2) -> Path:
    """checkpoints/step-N in save_pretrained format (+ trainer_state.pt), written to a temporary folder
    and renamed, so a run killed at any moment leaves only whole checkpoints. `keep` newest are kept, so
    that a checkpoint damaged after it was written still leaves an older one to resume from. Returns its
    path (None on ranks other than 0, which write nothing)."""
    if not distributed.is_main():
        return None
    root = out / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final, tmp = root / f"step-{step:06d}", root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if lora.adapters(model):         # a LoRA run: the adapters are the whole trained state (MBs, not GBs)
            lora.save_adapters(model, tmp)
        else:
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "extra": extra,
                    "rng": {"python": random.getstate(), "torch": torch.get_rng_state(),
                            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}},
                   tmp / "trainer_state.pt")
    except (OSError, RuntimeError) as e:   # torch.save reports a full disk as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        before = latest_checkpoint(out)
        full = isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left" in str(e)
        raise UserError(f"Could not write checkpoint step-{step} in {root} ("
                        + ("the disk is full" if full else str(e).splitlines()[0][:100]) + "); "
                        + (f"the previous one, {before.name}, is intact: " if before else "")
                        + "free some space and run again with --resume.") from None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(out: Path) -> list[Path]:
    """The checkpoints of a stage, oldest first."""
    return sorted((out / "checkpoints").glob("step-*")) if (out / "checkpoints").exists() else []


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1] if found else None


def read_checkpoint(path: Path) -> tuple[dict | tuple, dict]:
    """(weights, trainer state) of one checkpoint, read completely before anything is applied, so that a
    damaged file raises here and leaves the model and optimiser as they were. The weights are a LoRA run's
    (adapter config, adapter tensors), or a full model's state dict under the model's own names, read through
    from_pretrained: save_pretrained writes some classes under their hub names (Gemma-3-IT's
    language_model.model.* for model.language_model.*), and only it maps them back."""
    from transformers import AutoModelForCausalLM
    if not list(path.glob("*.safetensors")) or not (path / "trainer_state.pt").exists():
        raise OSError(f"{path.name} has no weights or no trainer_state.pt")
    if (path / "adapter_config.json").exists():
        weights = lora.read_adapters(path)
    else:
        weights = AutoModelForCausalLM.from_pretrained(path, dtype="auto").state_dict()
    return weights, torch.load(path / "trainer_state.pt", weights_only=False)


def load_checkpoint(path: Path, model, optimizer) -> dict:
    """Restore weights, optimiser and RNG state from one checkpoint; returns {"step", "extra"}."""
    weights, state = read_checkpoint(path)
    return _apply(weights, state, model, optimizer)


def resume(out: Path, model, optimizer) -> dict | None:
    """Load the newest intact checkpoint of a stage (None if it has none). A damaged one (a truncated
    trainer_state.pt, a cut safetensors file) is skipped with a message naming it and the one used."""
    for path in reversed(checkpoints(out)):
        try:
            weights, state = read_checkpoint(path)
        except Exception as e:   # torch and safetensors raise many kinds on a damaged file
            print(f"checkpoint {path} is damaged ({type(e).__name__}: {str(e).splitlines()[0][:100]}); "
                  "trying the one before it")
            continue
        if path != checkpoints(out)[-1]:
            print(f"resuming from {path}, the newest intact checkpoint")
        return _apply(weights, state, model, optimizer)
    if checkpoints(out):
        raise UserError(f"Every checkpoint in {out / 'checkpoints'} is damaged; remove that folder to train "
                        "this stage again from the start.")
    return None


def _apply(weights: dict | tuple, state: dict, model, optimizer) -> dict:
    if isinstance(weights, tuple) != bool(lora.adapters(model)):
        raise UserError(f"The checkpoint holds {'LoRA adapters' if isinstance(weights, tuple) else 'full weights'} "
                        f"but the model {'has no' if isinstance(weights, tuple) else 'has'} adapters; resume with "
                        "the run's own --lora-rank.")
    if isinstance(weights, tuple):
        lora.apply_adapters(model, *weights)
    else:
        model.load_state_dict(weights)      # strict: a weight that does not fit is an error, never skipped
    optimizer.load_state_dict(state["optimizer"])
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return {"step": state["step"], "extra": state["extra"]}


# ---------------------------------------------------------------------------------------------
# The NaN guard: a step with a NaN or inf loss or gradient is skipped; K in a row stop the run.
# ---------------------------------------------------------------------------------------------

class Guard:
    """Skips a step whose loss or gradients are NaN/inf; `max_in_a_row` in a row stop the run with one
    sentence."""

    def __init__(self, max_in_a_row: int = 5):
        self.max_in_a_row, self.in_a_row, self.skipped = max_in_a_row, 0, 0

    def step(self, model, optimizer, loss_value: float, max_grad_norm: float = 1.0) -> float:
        params = [p for p in model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm).item()
        if not (torch.isfinite(torch.tensor(loss_value)) and torch.isfinite(torch.tensor(norm))):
            optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.in_a_row += 1
            if self.in_a_row >= self.max_in_a_row:
                raise UserError(f"training diverged: {self.in_a_row} steps in a row had a NaN or inf loss or "
                                "gradient; the last checkpoint is intact: lower --lr and run again with --resume.")
            return float("nan")
        self.in_a_row = 0
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return norm


# ---------------------------------------------------------------------------------------------
# Guarding the folder: one run at a time, and a resume that trains what the run trained.
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def lock(out: Path):
    """Hold out/.lock for the whole run. A second run on the same folder is refused at once (two runs
    appending to one metrics.jsonl interleave their steps). The lock dies with its process, kill -9 too."""
    import fcntl
    make_folder(out)
    fd = os.open(out / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(f"Another run (pid {holder}) is writing {out}; wait for it to finish, or pass "
                        "another --out.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    try:
        yield
    finally:
        os.close(fd)


def check_resume(out: Path, config: dict, resuming: bool, training_keys) -> None:
    """Refuse to mix two runs in one folder: a resume of a run that trained something else (naming every
    difference), a resume of a folder that holds no run, and a fresh run over an existing one."""
    saved_path = out / "config.json"
    if not resuming:
        if saved_path.exists():
            raise UserError(f"{out} already holds a run; pass --resume to continue it, or another --out.")
        return
    if not saved_path.exists():
        raise UserError(f"--resume: {out} holds no run to continue (no config.json); drop --resume to start one.")
    saved = json.loads(saved_path.read_text())
    diff = [f"--{k.replace('_', '-')} {saved.get(k)!r} -> {config.get(k)!r}" for k in training_keys
            if saved.get(k) != config.get(k)]
    if diff:
        raise UserError(f"--resume: {out} was trained with other settings ({'; '.join(diff)}); run with the "
                        "run's own settings, or pass another --out.")
