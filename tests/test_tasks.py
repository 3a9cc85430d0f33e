"""tasks.py: the tiny world's split and the dataset loaders, on small made-up fixtures (no network)."""
import base64
import json
import os
import pickle
import sys
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tasks  # noqa: E402
from tasks import DataError  # noqa: E402
from infra import datafiles  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
OMNI, LCB, OCI, LIC = (os.path.join(FIX, f) for f in (
    "omni_math.jsonl", "livecodebench.jsonl", "opencodeinstruct.jsonl", "lost_in_conversation.json"))


def packed(obj) -> str:
    """LiveCodeBench's private-test encoding: base64(zlib(pickle(obj)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


# --- the tiny world ---

def test_tiny_world_split_is_disjoint_and_deterministic():
    for sharded in (False, True):
        train, test = tasks.tiny_math_problems("train", sharded=sharded), tasks.tiny_math_problems("test", sharded=sharded)
        assert train and test
        assert not {p.id for p in train} & {p.id for p in test}
        assert [p.id for p in tasks.tiny_math_problems("train", sharded=sharded)] == [p.id for p in train]
    assert [p.id for p in tasks.tiny_math_problems("test", n=5, seed=1)] == \
           [p.id for p in tasks.tiny_math_problems("test", n=5, seed=1)]
    main, pair = tasks.tiny_math_problems("train"), tasks.tiny_math_problems("train", sharded=True)
    assert not {p.id for p in main} & {p.id for p in pair}


def test_tiny_training_problems_mix_in_a_quarter_of_one_step_problems():
    """Training sees problems the base solves at turn 1 (one step, no shards, none held out) beside the two-step
    ones, in ONE_STEP_SHARE, in a seeded order; the held-out split is untouched; asking for more problems than the
    one-step ones allow is one DataError sentence."""
    test_ids = {p.id for s in (False, True) for p in tasks.tiny_math_problems("test", sharded=s)}
    for task in ("math", "code"):
        problems = tasks.tiny_training_problems(task, 1280, seed=0)
        one = [p for p in problems if "op2" not in p.meta]
        assert len(problems) == len({p.id for p in problems}) == 1280 and len(one) == 320
        assert all(p.shards is None and p.task == task for p in problems)
        assert all(p.meta["first_step"] == p.meta.get("constant", int(p.answer or 0)) for p in one)
        assert not {p.id.split("-", 1)[1] for p in problems} & {i.split("-", 1)[1] for i in test_ids}
        assert 0.15 < sum(p in one for p in problems[:200]) / 200 < 0.35      # mixed, not one block after another
    assert [p.id for p in tasks.tiny_training_problems("math", 64, seed=3)] == \
           [p.id for p in tasks.tiny_training_problems("math", 64, seed=3)]
    assert [p.id for p in tasks.tiny_training_problems("math", 64, seed=3)] != \
           [p.id for p in tasks.tiny_training_problems("math", 64, seed=4)]
    everything = tasks.tiny_training_problems("math")
    assert sum("op2" not in p.meta for p in everything) == len(tasks.tiny_math_problems("train", sharded=True))
    assert [p.id for p in tasks.load_task("tiny", split="train", n=40, seed=1)] == \
           [p.id for p in tasks.tiny_training_problems("math", 40, seed=1)]
    with pytest.raises(DataError, match="one-step training problems"):
        tasks.tiny_training_problems("math", 10 ** 6)


def test_tiny_main_problems_take_two_steps_near_or_far():
    """a +- b +- c: the student's best effort (one step) is never the answer, and every number between the first
    step and the answer is two-digit. c is one digit (near: one reply pins the answer) or, for "far" problems,
    10 .. 36 (each "more than 9" reply moves the student 9 closer); near and far are about as many."""
    problems = tasks.tiny_math_problems("test")
    for p in problems:
        m = p.meta
        first = m["a"] + m["b"] if m["op"] == "+" else m["a"] - m["b"]
        y = first + m["c"] if m["op2"] == "+" else first - m["c"]
        assert p.statement == f"What is {m['a']} {m['op']} {m['b']} {m['op2']} {m['c']}?" and p.shards is None
        assert 10 <= m["a"] <= 99 and 1 <= m["b"] <= 9 and 1 <= m["c"] <= 9 * (tasks.FAR_STEPS + 1)
        assert p.answer == str(y) and m["first_step"] == first != y
        assert first in tasks.TINY_RANGE and y in tasks.TINY_RANGE
    far = sum(p.meta["c"] > 9 for p in problems) / len(problems)
    assert 0.3 < far < 0.5, far
    assert {(p.meta["c"] - 1) // 9 for p in problems} == set(range(tasks.FAR_STEPS + 1))   # 1 to 4 replies


def test_tiny_sharded_pair_reveals_a_one_digit_problem():
    p = next(p for p in tasks.tiny_math_problems("test", sharded=True) if p.meta["op"] == "-")
    a, b = p.meta["a"], p.meta["b"]
    assert b <= 9 and p.statement == f"What is {a} - {b}?" and p.answer == str(a - b) == str(p.meta["first_step"])
    # the last shard in the teacher's words: the first number is b too high (the answer is a - b)
    assert p.shards == ["Compute a difference.", f"The first number is {a}.", f"{a} is {b} too high."]


def test_tiny_code_task_mirrors_the_math_split_and_its_reference_passes_in_the_sandbox():
    import verify
    for sharded in (False, True):
        math_test, code_test = (tasks.tiny_math_problems("test", sharded=sharded),
                                tasks.tiny_code_problems("test", sharded=sharded))
        assert [p.id.split("-", 1)[1] for p in code_test] == [p.id.split("-", 1)[1] for p in math_test]
        assert not {p.id for p in tasks.tiny_code_problems("train", sharded=sharded)} & {p.id for p in code_test}
    p = tasks.tiny_code_problems("test", n=1, seed=3)[0]
    m = tasks.tiny_math_problems("test", n=1, seed=3)[0]
    assert p.task == "code" and p.answer is None and p.statement == "Write f(x) that returns x + " + m.statement[8:-1] + "."
    assert p.meta["constant"] == int(m.answer)
    assert [t["output"] for t in p.tests] == [str(x + p.meta["constant"]) for x in tasks.TINY_TEST_INPUTS]
    right = verify.check_code(verify.extract_program(p.solution), p.tests, func_name=p.func_name)
    wrong = verify.check_code(verify.extract_program(tasks.tiny_program(p.meta["constant"] + 1)), p.tests, "f")
    assert right.passed and right.n_passed == 3
    assert not wrong.passed and wrong.n_passed == 0 and f"expected '{p.meta['constant'] + 1}'" in wrong.feedback
    assert tasks.tiny_code_problems("test", n=1, seed=3, sharded=True)[0].shards[0].startswith("Write f(x)")
    assert len(tasks.load_task("tiny-code", None, "train", n=3)) == 3


# --- Omni-MATH ---

def test_omni_math_fields():
    problems = tasks.load_omni_math(OMNI, "train") + tasks.load_omni_math(OMNI, "test")
    by_row = {p.meta["row"]: p for p in problems}
    p = by_row[0]
    assert p.id == "omni-0" and p.task == "math" and p.answer == "17"
    assert p.statement.startswith("Find the least positive integer")
    assert p.solution.endswith("$\\boxed{17}$.") and p.source == "made_up_for_fixture"
    assert p.meta["domain"] == ["Mathematics -> Number Theory -> Congruences"] and p.meta["difficulty"] == 3.5
    assert by_row[4].answer == "$4\\pi$"          # stripped, $...$ kept for the grader
    assert by_row[2].answer == "\\frac{5}{6}"


def test_omni_math_split_is_deterministic_disjoint_and_scaled():
    train, test = tasks.load_omni_math(OMNI, "train", seed=3), tasks.load_omni_math(OMNI, "test", seed=3)
    assert (len(train), len(test)) == (10, 2)      # 12 rows < 2000 + 500: split 80/20
    ids = [p.id for p in train + test]
    assert len(set(ids)) == 12                     # disjoint and covering
    assert [p.id for p in tasks.load_omni_math(OMNI, "train", seed=3)] == [p.id for p in train]
    assert [p.id for p in tasks.load_omni_math(OMNI, "train", seed=4)] != [p.id for p in train]
    small = tasks.load_omni_math(OMNI, "train", n_train=4, n_test=3, seed=3)
    assert len(small) == 4 and len(tasks.load_omni_math(OMNI, "test", n_train=4, n_test=3, seed=3)) == 3


# --- LiveCodeBench ---

def test_livecodebench_fields_and_private_tests():
    problems = tasks.load_livecodebench(LCB)
    assert [p.id for p in problems] == ["lcb-fixture-1", "lcb-fixture-2", "lcb-abc000_a"]
    func, packed_row, stdin = problems
    assert func.task == "code" and func.func_name == "sumMultiples" and func.source == "leetcode"
    assert func.starter_code.startswith("class Solution:")
    assert "def sumMultiples" in func.statement and "```python" in func.statement
    assert func.statement.startswith("Given nums and k")
    assert func.tests == [{"input": "[1, 2, 3, 4]\n2", "output": "6", "testtype": "functional", "public": True},
                          {"input": "[5, 10]\n5", "output": "15", "testtype": "functional", "public": False}]
    assert func.meta == {"question_id": "fixture-1", "difficulty": "easy",
                         "contest_date": "2024-05-04T00:00:00", "title": "sum-of-multiples"}
    # base64(zlib(pickle(json))) private tests decoded
    assert [t["public"] for t in packed_row.tests] == [True, False, False]
    assert packed_row.tests[2]["output"] == "5"
    # a stdin problem: no starter code, no func_name, told to read stdin
    assert stdin.func_name is None and stdin.starter_code == "" and stdin.source == "atcoder"
    assert tasks.CODE_PROMPT_STDIN in stdin.statement
    assert [t["testtype"] for t in stdin.tests] == ["stdin", "stdin"]
    assert len(tasks.load_livecodebench(LCB, n=2)) == 2


def test_livecodebench_folder_of_release_files(tmp_path):
    lines = open(LCB).read().splitlines()
    (tmp_path / "test.jsonl").write_text(lines[0] + "\n")
    (tmp_path / "test2.jsonl").write_text("\n".join(lines[1:]) + "\n")
    assert len(tasks.load_livecodebench(str(tmp_path), release=2)) == 3
    assert len(tasks.load_livecodebench(str(tmp_path), release=1)) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds none of"):
        tasks.load_livecodebench(str(empty))


def test_decode_test_cases_plain_pickle():
    tests = [{"input": "1", "output": "2", "testtype": "stdin"}]
    assert datafiles.decode_test_cases(packed(json.dumps(tests)), "x") == tests
    assert datafiles.decode_test_cases(json.dumps(tests), "x") == tests
    assert datafiles.decode_test_cases(tests, "x") == tests
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        blob = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests), protocol=protocol))).decode()
        assert datafiles.decode_test_cases(blob, "x") == tests


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    row = json.loads(open(LCB).readline())
    row["private_test_cases"] = packed(_Hostile(marker))
    bad = tmp_path / "lcb.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError) as e:
        tasks.load_livecodebench(str(bad))
    msg = str(e.value)
    assert "lcb.jsonl, line 1" in msg and "private_test_cases" in msg and "refused" in msg and "system" in msg
    assert not marker.exists()
    # any class reference is refused, even a harmless builtin one; class-free non-strings are rejected after
    with pytest.raises(DataError, match="references builtins.complex; refused"):
        datafiles.decode_test_cases(packed(complex(1, 2)), "x")
    with pytest.raises(DataError, match="unpickles to a set, not the expected JSON string"):
        datafiles.decode_test_cases(packed({1, 2}), "x")
    with pytest.raises(DataError, match="neither a JSON list nor base64"):
        datafiles.decode_test_cases("not base64 !!", "x")


# --- OpenCodeInstruct ---

def test_opencodeinstruct_fields_and_sampling():
    problems = tasks.load_opencodeinstruct(OCI)
    assert [p.id for p in problems] == ["oci-fixture-0001", "oci-fixture-0002", "oci-fixture-0003"]
    p = problems[0]
    assert p.task == "code" and p.statement.startswith("Write a function clamp")
    assert p.solution.startswith("```python\ndef clamp")
    assert p.tests == [{"assert": "assert clamp(5, 0, 10) == 5", "public": True},
                       {"assert": "assert clamp(-1, 0, 10) == 0", "public": True},
                       {"assert": "assert clamp(11, 0, 10) == 10", "public": False}]
    assert p.meta["domain"] == "generic" and p.meta["average_test_score"] == "1"
    assert problems[1].tests == [{"assert": 'assert is_palindrome("abba")', "public": True},
                                 {"assert": 'assert not is_palindrome("ab")', "public": False}]
    sample = tasks.load_opencodeinstruct(OCI, n=2, seed=1)
    assert len(sample) == 2 and [p.id for p in sample] == [p.id for p in tasks.load_opencodeinstruct(OCI, n=2, seed=1)]


def test_opencodeinstruct_parquet_without_pyarrow(tmp_path):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow is installed")
    except ImportError:
        pass
    f = tmp_path / "train-00000.parquet"
    f.write_bytes(b"PAR1")
    with pytest.raises(DataError, match="pip install pyarrow"):
        tasks.load_opencodeinstruct(str(f))


def test_opencodeinstruct_hub_fetches_shards_until_n(monkeypatch):
    import huggingface_hub
    fetched = []
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo, repo_type=None: [
        "README.md", "data/train-00001-of-00002.parquet", "data/train-00000-of-00002.parquet"])

    def download(repo_id, filename, repo_type=None):
        assert (repo_id, repo_type) == ("nvidia/OpenCodeInstruct", "dataset")
        fetched.append(filename)
        return OCI  # a JSONL stand-in: the reader goes by the suffix of what was downloaded
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert len(tasks.load_opencodeinstruct("hub", n=2)) == 2
    assert fetched == ["data/train-00000-of-00002.parquet"]


# --- Lost in Conversation ---

def test_lost_in_conversation_math():
    problems = tasks.load_lost_in_conversation(LIC, "math")
    assert [p.id for p in problems] == ["lic-sharded-fixture-1", "lic-sharded-fixture-2"]
    mia, school = problems
    assert mia.task == "math" and mia.answer == "27" and mia.solution.endswith("#### 27")
    assert mia.statement.startswith("Mia has 40 stickers") and mia.shards[0] == "how many stickers does Mia have left?"
    assert school.shards == ["what does the school spend on boxes?", "it buys 5 boxes", "each box costs $250"]
    assert school.answer == "1250"


def test_lost_in_conversation_code():
    lcb, humaneval = tasks.load_lost_in_conversation(LIC, "code")
    assert lcb.func_name == "sumMultiples" and lcb.source == "lost_in_conversation/lcb_easy"
    assert [(t["output"], t["public"]) for t in lcb.tests] == [("6", True), ("15", False)]
    assert lcb.shards == ["write a function on an array", "return the sum of the elements divisible by k"]
    assert humaneval.func_name == "reverse" and humaneval.starter_code.startswith("def reverse")
    assert "def reverse" in humaneval.statement and len(humaneval.tests) == 1


def test_load_task_registry():
    assert len(tasks.load_task("omni-math", OMNI, "test")) == 2
    assert len(tasks.load_task("livecodebench", LCB, n=1)) == 1
    assert len(tasks.load_task("opencodeinstruct", OCI, n=2)) == 2
    assert len(tasks.load_task("lic-math", LIC)) == 2 and len(tasks.load_task("lic-code", LIC)) == 2
    assert len(tasks.load_task("tiny", None, "test", n=4)) == 4
    with pytest.raises(ValueError, match="Unknown dataset"):
        tasks.load_task("gsm8k", None)


# --- clear errors ---

def _one_sentence(e):
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith(".")
    return msg


def test_malformed_jsonl_names_file_and_line(tmp_path):
    lines = open(OMNI).read().splitlines()
    bad = tmp_path / "omni.jsonl"
    bad.write_text("\n".join(lines[:2] + ['{"problem": "x", "answer": '] + lines[3:]) + "\n")
    with pytest.raises(DataError) as e:
        tasks.load_omni_math(str(bad))
    assert f"{bad}, line 3 is not valid JSON" in _one_sentence(e)

    row = json.loads(lines[0])
    del row["answer"]
    bad.write_text(lines[0] + "\n\n" + json.dumps(row) + "\n")   # a blank line still counts
    with pytest.raises(DataError) as e:
        tasks.load_omni_math(str(bad))
    assert f"{bad}, line 3 has no field 'answer'" in _one_sentence(e)

    row = json.loads(lines[0])
    row["problem"] = 42
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError) as e:
        tasks.load_omni_math(str(bad))
    assert "field 'problem' should be a str, not a int" in _one_sentence(e)

    bad.write_text("[1, 2]\n")
    with pytest.raises(DataError, match="line 1 is a JSON list, not an object"):
        tasks.load_omni_math(str(bad))


def test_malformed_code_rows(tmp_path):
    row = json.loads(open(OCI).readline())
    row["unit_tests"] = "assert f(1) == 2"           # neither JSON nor a list literal
    bad = tmp_path / "oci.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError) as e:
        tasks.load_opencodeinstruct(str(bad))
    assert f"{bad}, line 1: field 'unit_tests'" in _one_sentence(e)

    row = json.loads(open(LCB).readline())
    row["metadata"] = "{func_name"
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="line 1: field 'metadata' is not valid JSON"):
        tasks.load_livecodebench(str(bad))


def test_malformed_lost_in_conversation(tmp_path):
    bad = tmp_path / "lic.json"
    bad.write_text('[\n  {"task": "math",\n   "shards": [}\n]')
    with pytest.raises(DataError) as e:
        tasks.load_lost_in_conversation(str(bad))
    assert f"{bad} is not valid JSON at line 3" in _one_sentence(e)

    entries = json.load(open(LIC))
    entries[1]["answer"] = "no final line"
    bad.write_text(json.dumps(entries))
    with pytest.raises(DataError) as e:
        tasks.load_lost_in_conversation(str(bad))
    assert f"{bad}, entry 1: the answer has no '#### <number>' line" in _one_sentence(e)

    bad.write_text(json.dumps({"task": "math"}))
    with pytest.raises(DataError, match="one JSON list"):
        tasks.load_lost_in_conversation(str(bad))


def test_missing_file_and_unreachable_hub(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(DataError) as e:
        tasks.load_omni_math(missing)
    assert missing in _one_sentence(e)

    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", offline)
    for load, name in ((tasks.load_omni_math, "Omni-MATH"), (tasks.load_livecodebench, "LiveCodeBench"),
                       (tasks.load_lost_in_conversation, "Lost in Conversation"),
                       (tasks.load_opencodeinstruct, "OpenCodeInstruct")):
        with pytest.raises(DataError) as e:
            load(None)
        msg = _one_sentence(e)
        assert name in msg and "--data" in msg


def test_hub_paths_use_the_right_files(monkeypatch):
    import huggingface_hub
    asked = []

    def download(repo_id, filename, repo_type=None):
        asked.append((repo_id, filename, repo_type))
        return {"KbsdJames/Omni-MATH": OMNI, "microsoft/lost_in_conversation": LIC}.get(repo_id, LCB)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert len(tasks.load_omni_math("hub", "test")) == 2
    assert len(tasks.load_livecodebench(None, release=3)) == 9
    assert len(tasks.load_lost_in_conversation("hub", "code")) == 2
    assert asked == [("KbsdJames/Omni-MATH", "test.jsonl", "dataset"),
                     ("livecodebench/code_generation_lite", "test.jsonl", "dataset"),
                     ("livecodebench/code_generation_lite", "test2.jsonl", "dataset"),
                     ("livecodebench/code_generation_lite", "test3.jsonl", "dataset"),
                     ("microsoft/lost_in_conversation", "lost_in_conversation.json", "dataset")]


def test_an_oversized_row_is_skipped_with_a_count_not_loaded(tmp_path, capsys):
    """A 50 MB problem statement once drove a run to 19 GB of RAM: rows past the size limits are skipped, and one
    line names the file, the line and the limit."""
    good = json.loads(open(os.path.join(FIX, "omni_math.jsonl")).readline())
    path = tmp_path / "omni.jsonl"
    huge = {**good, "problem": "x" * (50 << 20)}
    path.write_text("\n".join(json.dumps(r) for r in [good, huge, good, good]) + "\n")
    problems = tasks.load_omni_math(str(path), "train", n_train=4, n_test=0)
    assert len(problems) == 3 and max(len(p.statement) for p in problems) < 1000
    said = capsys.readouterr().out
    assert "skipped 1 problem(s)" in said and f"{path}, line 2" in said and "100,000" in said
    lcb = json.loads(open(os.path.join(FIX, "livecodebench.jsonl")).readline())
    lcb["public_test_cases"] = json.dumps([{"input": "1" * (11 << 20), "output": "1", "testtype": "stdin"}])
    (tmp_path / "lcb.jsonl").write_text(json.dumps(lcb) + "\n")
    assert tasks.load_livecodebench(str(tmp_path / "lcb.jsonl")) == []
    assert "a test of 11,534,336 characters" in capsys.readouterr().out


def test_problems_whose_opening_fills_the_context_are_skipped(capsys):
    import dialogue
    import tinyworld
    tok = tinyworld.build_tokenizer()
    chat = dialogue.ChatFormat(tok)
    short = tasks.Problem(id="s", task="math", statement="What is 1 + 1?", answer="2")
    long = tasks.Problem(id="l", task="math", statement="What is " + "1 + " * 100 + "1?", answer="101")
    kept = dialogue.fit_context([short, long], tinyworld.HintTeacher(), chat, max_dialogue_tokens=256, room=48)
    assert kept == [short] and "skipped 1 of 2 problems" in capsys.readouterr().out


def test_opencodeinstruct_splits_public_and_private_asserts_and_skips_unjudgeable_rows(tmp_path, capsys):
    rows = [{"id": "a", "input": "Write f.", "output": "```python\ndef f(x):\n    return x\n```",
             "unit_tests": json.dumps(["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"])},
            {"id": "b", "input": "Write f.", "output": "```python\ndef f(x):\n    return x\n```",
             "unit_tests": json.dumps(["assert f(1) == 1", "assert all(f(x) == x for x in range(3))"])}]
    path = tmp_path / "oci.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)))
    [p] = tasks.load_opencodeinstruct(str(path))
    assert p.id == "oci-a" and [t["public"] for t in p.tests] == [True, True, False]
    assert "skipped 1 OpenCodeInstruct problem(s)" in capsys.readouterr().out


def test_empty_datasets_and_misplaced_livecodebench_are_one_sentence(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "lic.json").write_text("[]")
    for name, path in [("omni-math", "empty.jsonl"), ("livecodebench", "empty.jsonl"), ("lic-math", "lic.json")]:
        with pytest.raises(tasks.DataError, match="holds no"):
            tasks.load_task(name, str(tmp_path / path))
    with pytest.raises(tasks.DataError, match="LiveCodeBench with --eval-data"):
        tasks.load_task("opencodeinstruct", os.path.join(FIX, "livecodebench.jsonl"))


def test_arith_problems_split_without_overlap_and_answer_with_the_last_number():
    train, test = tasks.arith_problems("train"), tasks.arith_problems("test")
    assert len(train) + len(test) == 90 * 90 and 0.15 < len(test) / 8100 < 0.25
    assert not {p.id for p in train} & {p.id for p in test}
    p = test[0]
    assert p.answer == str(p.meta["a"] + p.meta["b"]) and p.answer_format == "number"
    assert tasks.load_task("arith", split="test", n=5, seed=3) == tasks.arith_problems("test", 5, seed=3)
    assert tasks.data_source("arith", "omni-math") == ("arith", None)
    import dialogue
    assert dialogue.judge(p, f"{p.meta['a']} + {p.meta['b']} = {p.answer}.")["correct"] is True
    assert dialogue.judge(p, f"It is \\boxed{{{p.answer}}}, not 3.")["correct"] is True     # a box wins
    assert dialogue.judge(p, "No idea.")["correct"] is None
    boxed_only = tasks.Problem(id="q", task="math", statement="?", answer=p.answer)
    assert dialogue.judge(boxed_only, f"= {p.answer}")["correct"] is None      # "boxed" problems need the box
