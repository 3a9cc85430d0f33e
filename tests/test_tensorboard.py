"""--tensorboard: every metrics.jsonl row is also written as TensorBoard scalars, read back here from the event
files with TensorBoard's own reader; a resumed run's event files drop the steps the killed run logged past its
checkpoint, as metrics.jsonl does; without the package, the flag is refused in one sentence."""
import json
import sys

import pytest

from infra import runfolder
import sml

ROWS = [{"step": s, "reward": 0.1 * s, "solved_by_turn_4": 0.25 * s, "zero_variance_groups": 1 / (s + 2),
         "entropy": 1.5 - 0.1 * s, "feedback_uptake": None, "problems": ["tiny-1+2"], "stage": "grpo",
         "skipped_steps": 0} for s in (1, 2, 3)]


def scalars(folder) -> dict:
    """{tag: [(step, value)]} as TensorBoard reads the folder's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture
def tensorboard(monkeypatch):
    pytest.importorskip("tensorboard")                       # .ci/run installs it: CI runs these tests
    monkeypatch.setattr(runfolder, "_tensorboard", None)   # this test's writers only; off again afterwards
    runfolder.use_tensorboard()


def test_every_number_of_every_row_is_a_scalar_at_its_step(tmp_path, tensorboard):
    for row in ROWS:
        runfolder.append_metrics(tmp_path, row)
    assert [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == ROWS
    got = scalars(tmp_path)
    assert set(got) == {"reward", "solved_by_turn_4", "zero_variance_groups", "entropy", "skipped_steps"}
    for tag, values in got.items():
        assert [s for s, _ in values] == [1, 2, 3]
        assert [v for _, v in values] == pytest.approx([row[tag] for row in ROWS], rel=1e-6)


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path, tensorboard):
    for row in ROWS:                                          # the killed run logged steps 1-3
        runfolder.append_metrics(tmp_path, row)
    runfolder.use_tensorboard()                               # a new process: new writers
    runfolder.truncate_metrics(tmp_path, 1)                   # resumed from the checkpoint of step 1
    for row in ROWS[1:]:
        runfolder.append_metrics(tmp_path, {**row, "reward": -row["reward"]})
    reward = scalars(tmp_path)["reward"]
    assert [s for s, _ in reward] == [1, 2, 3] and [v for _, v in reward] == pytest.approx([0.1, -0.2, -0.3])
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2


def test_without_the_package_the_flag_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "_tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)    # as if tensorboard were not installed
    with pytest.raises(runfolder.UserError, match=r"--tensorboard needs the tensorboard package: pip install "
                       r"tensorboard"):
        sml.main(["--tensorboard", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists() and runfolder._tensorboard is None    # refused before anything ran
