"""distributed.py: 2 ranks (torchrun, gloo on CPU) against one process: the same steps, evaluation, run folder.

The step-level cases live in distributed_cases.py and run twice: here in one process, and once under
`torchrun --standalone --nproc-per-node 2`. The recipe-level tests run sml.py under torchrun, kill it
with SIGKILL, resume it, and compare its run folder with one process's.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import unittest.mock
from pathlib import Path

import pytest
import torch

from infra import distributed
import distributed_cases
import evaluate
import report
from infra import runfolder
import sml

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--problems", "16", "--batch-problems", "4", "--group-size", "2", "--turns", "2", "--eval-turns", "3",
        "--eval-problems", "5", "--max-dialogue-tokens", "160", "--eval-seeds", "1", "--save-every", "1"]


def torchrun(*args, timeout=300, **kw):
    """2 ranks on this machine, on a free port (--standalone), one thread each."""
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             *map(str, args)], cwd=ROOT, env=ENV, **kw)


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The tiny model, barely warmed up (the pipeline, not the skill), cached for every process here."""
    ENV.update(SML_CACHE=str(tmp_path_factory.getbasetemp() / "cache"), SML_TINY_STEPS="3")
    with unittest.mock.patch.dict(os.environ, {"SML_CACHE": ENV["SML_CACHE"], "SML_TINY_STEPS": "3"}):
        yield


# ---------------------------------------------------------------------------------------------
# Steps: one process and 2 ranks on the same hand-made data.
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def one_thread():
    """One thread, as each rank has: on a busy 2-core machine two threads wait on each other (6x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    with one_thread():
        return distributed_cases.run_all(tmp_path_factory.mktemp("one"))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    proc = torchrun(ROOT / "tests" / "distributed_cases.py", out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-3000:]
    return [torch.load(out / f"rank-{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("case", ["grpo", "grpo_kl_ppo", "grpo_one_learner", "sft"])
def test_a_step_on_two_ranks_is_one_process_step(case, one_process, two_ranks):
    """The same loss and the same updated weights (to fp32 tolerance) on both ranks as in one process."""
    one = one_process[case]
    for rank in two_ranks:
        for name, w in one["weights"].items():
            torch.testing.assert_close(rank[case]["weights"][name], w, msg=f"{case}: {name} differs")
    for name, w in two_ranks[0][case]["weights"].items():                # the replicas never drift apart
        assert torch.equal(two_ranks[1][case]["weights"][name], w), name
    if case == "sft":
        row = lambda rows: json.loads(rows[0])
        assert len(two_ranks[0][case]["rows"]) == 1                    # one metrics row: written by rank 0 alone
        for key in ("loss", "grad_norm", "student_tokens", "examples"):
            assert row(two_ranks[0][case]["rows"])[key] == pytest.approx(row(one["rows"])[key], rel=1e-5)
        return
    for rank in two_ranks:
        for key in ("loss", "grad_norm", "entropy", "student_tokens", "distinct_replies"):
            assert rank[case]["stats"][key] == pytest.approx(one["stats"][key], rel=1e-5), key
    assert one["stats"]["loss"] != 0.0 and one["stats"]["grad_norm"] > 0        # a step that moved something


def test_a_nan_on_one_rank_skips_the_step_on_every_rank(two_ranks):
    assert [r["nan_on_rank_1"] for r in two_ranks] == [{"skipped": 1, "unchanged": True}] * 2


def test_evaluation_scores_every_problem_exactly_once_in_order(one_process, two_ranks):
    one = one_process["eval"]
    for rank in two_ranks:
        ev = rank["eval"]
        for ds in ev["dialogues"]:                                      # per seed
            assert [pid for pid, _, _ in ds] == ev["problems"]           # each problem once, in order
            assert [group for _, group, _ in ds] == list(range(len(ev["problems"])))
        assert ev["entry"]["n_problems"] == 7 and len(ev["entry"]["per_seed"]) == 2
        # Fig. 3's loss on fixed contexts: split over ranks, summed back: one process's numbers
        for key in ("answer_loss_by_turn", "answer_loss_placed", "answer_loss_not_placed", "answer_placed_share"):
            assert ev["entry"][key] == pytest.approx(one["entry"][key], abs=1e-5), key   # None where no context
    assert two_ranks[0]["eval"]["entry"] == two_ranks[1]["eval"]["entry"]   # every rank computes the same entry


def test_only_rank_0_writes_the_run_folder(two_ranks):
    for rank in two_ranks:
        assert rank["writes"]["metrics"] == ['{"step": 1, "rank": 0}']
        assert json.loads(rank["writes"]["config"]) == {"rank": 0}


def test_gather_puts_shards_back_in_order():
    """gather's reordering, by hand, for 3 ranks (no process group needed: all_gather is stubbed)."""
    items = list(range(8))                                               # 8 problems, units of 2 dialogues
    shards = [items[r::3] for r in range(3)]
    parts = [[(i, j) for i in shard for j in range(2)] for shard in shards]
    with unittest.mock.patch.object(distributed, "world", return_value=3), \
            unittest.mock.patch.object(distributed, "all_gather", return_value=parts):
        assert distributed.gather(parts[0], unit=2) == [(i, j) for i in items for j in range(2)]


# ---------------------------------------------------------------------------------------------
# The recipe: sml.py under torchrun, killed with SIGKILL and resumed, against one process.
# ---------------------------------------------------------------------------------------------

SLOW_SML = """
import os, sys, time
sys.path.insert(0, {root!r})
import grpo, sml
open({pids!r} + os.environ["RANK"], "w").write(str(os.getpid()))
real = grpo.train_step
def slow(*a, **k):
    time.sleep(0.5)            # room for the kill to land in the middle of the run
    return real(*a, **k)
grpo.train_step = slow
sml.main(sys.argv[1:])
"""

# The resumed run: rank 0 writes its reports slowly, and each rank notes when it starts to leave (cleanup) and how
# many gloo threads outlive its process group.
LAST_WRITE_SML = """
import os, sys, time
sys.path.insert(0, {root!r})
import report, sml
from infra import distributed
write, cleanup = report.write_report, distributed.cleanup
def slow_write(*a, **k):
    time.sleep(1.0)
    write(*a, **k)
    open({stamps!r} + "written", "w").write(repr(time.time()))
def noted_cleanup():
    open({stamps!r} + "leaves-" + os.environ["RANK"], "w").write(repr(time.time()))
    cleanup()
    for _ in range(20):   # the threads of the process group, if any outlive it
        threads = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
        gloo = [t for t in threads if "gloo" in t]
        if not gloo:
            break
        time.sleep(0.1)
    open({stamps!r} + "gloo-threads-" + os.environ["RANK"], "w").write(repr(len(gloo)))
report.write_report, distributed.cleanup = slow_write, noted_cleanup
sml.main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def runs(cache, tmp_path_factory):
    """One process (with process groups forbidden), then 2 ranks killed after their second checkpoint and
    resumed, on the same arguments."""
    tmp = tmp_path_factory.mktemp("runs")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    forbidden = unittest.mock.Mock(side_effect=AssertionError("python sml.py initialised a process group"))
    with one_thread(), unittest.mock.patch.dict(os.environ, env, clear=True), \
            unittest.mock.patch("torch.distributed.init_process_group", forbidden):
        sml.main(["--out", str(tmp / "one"), *TINY])
    one = {"out": tmp / "one", "group_initialised": forbidden.called or torch.distributed.is_initialized()}

    out, script = tmp / "two", tmp / "slow_sml.py"
    script.write_text(SLOW_SML.format(root=str(ROOT), pids=str(tmp / "pid-")))
    proc = torchrun(script, "--out", out, *TINY, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "seed-0" / "checkpoints" / "step-000002").exists() and time.time() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    for r in range(2):                                                   # kill -9 every rank, then torchrun
        os.kill(int((tmp / f"pid-{r}").read_text()), signal.SIGKILL)
    proc.kill()
    proc.wait()
    killed_rows = (out / "seed-0" / "metrics.jsonl").read_text().splitlines()
    last = tmp / "last_write_sml.py"
    last.write_text(LAST_WRITE_SML.format(root=str(ROOT), stamps=str(tmp / "stamp-")))
    resumed = torchrun(last, "--out", out, "--resume", *TINY, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    log, _ = resumed.communicate(timeout=300)
    stamps = {p.name.removeprefix("stamp-"): float(p.read_text()) for p in tmp.glob("stamp-*")}   # times, counts
    return {"one": one, "two": {"out": out, "killed_rows": killed_rows, "returncode": resumed.returncode, "log": log,
                                "stamps": stamps}}


def test_one_process_never_initialises_a_process_group(runs):
    assert distributed.setup() is None and distributed.world() == 1
    assert not runs["one"]["group_initialised"] and (runs["one"]["out"] / "eval.json").exists()


def test_a_killed_two_rank_run_resumes(runs):
    two = runs["two"]
    assert two["returncode"] == 0, two["log"][-3000:]
    assert 2 <= len(two["killed_rows"]) < 4                              # killed mid-run, after checkpoint 2
    rows = [json.loads(line) for line in (two["out"] / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    one = [json.loads(line) for line in (runs["one"]["out"] / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]                     # none repeated, none skipped
    assert [r["problems"] for r in rows] == [r["problems"] for r in one]  # one process's batches
    assert two["log"].count("done in") == 1                              # rank 0 alone speaks


def test_no_rank_leaves_before_rank_0_has_written_the_reports(runs):
    """A rank that left early could fail at exit and have torchrun stop rank 0 in the middle of its writes."""
    stamps = runs["two"]["stamps"]
    assert {"written", "leaves-0", "leaves-1"} <= set(stamps)
    assert stamps["leaves-1"] >= stamps["written"] and stamps["leaves-0"] >= stamps["written"]


def test_the_process_group_leaves_no_thread_behind(runs):
    """A gloo worker thread that outlived destroy_process_group could free a collective's tensors while Python
    exits, and abort the rank ("terminate called without an active exception"). No rank keeps one: each counts
    its threads named gloo after cleanup (transformers built a tokenizer and a model while the group was up)."""
    stamps = runs["two"]["stamps"]
    assert stamps["gloo-threads-0"] == 0 and stamps["gloo-threads-1"] == 0


def test_a_two_rank_run_folder_is_written_once_like_one_process(runs):
    files = lambda out: sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    one, two = runs["one"]["out"], runs["two"]["out"]
    assert files(two) == files(one)                                      # the same files, no stray .tmp
    results = json.loads((two / "eval.json").read_text())
    report.validate_eval_json(results)
    assert {t: e["n_problems"] for t, e in results["mt-rl"].items()} == \
        {t: e["n_problems"] for t, e in json.loads((one / "eval.json").read_text())["mt-rl"].items()}
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    problem_ids = lambda f: [json.loads(line)["problem_id"] for line in f.read_text().splitlines()]
    for seed_file in (two / "dialogues").glob("*.jsonl"):                # each eval problem once per file
        ids = problem_ids(seed_file)
        if seed_file.name.endswith("-tokens.jsonl"):                     # report.html's token views: the first few
            assert ids == problem_ids(one / "dialogues" / seed_file.name) and len(ids) == evaluate.TOKEN_VIEWS
        else:
            assert len(ids) == len(set(ids)) == 5
    assert runfolder.latest_checkpoint(two / "seed-0").name == "step-000004"
