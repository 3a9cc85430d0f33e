"""Tests of verify.py's math grading: a table of tricky pairs, both ways, Math-Verify's own test pairs
(tests/fixtures/math_verify_cases.jsonl), the leak check, and the time bound."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import verify  # noqa: E402
from verify import extract_answer, math_equal, mentions_answer, normalize_answer  # noqa: E402

# (pred, gold) pairs that must be judged equal. Each is also checked with the roles swapped.
EQUAL = [
    (r"\dfrac{1}{2}", "0.5"),
    (r"\frac{2}{4}", r"\frac12"),
    (r"\tfrac{3}{4}", "0.75"),
    (r"90^\circ", "90"),
    (r"90^{\circ}", "90"),
    ("x = 3", "3"),
    (r"\sqrt{8}", r"2\sqrt{2}"),
    (r"\left(1, 2\right)", "(1,2)"),
    (r"\{1,2\}", r"\{2,1\}"),
    (r"[0, \infty)", r"[0,\infty)"),
    (r"\pi/2", r"\frac{\pi}{2}"),
    (r"10\%", "10"),
    # (r"\text{5 cm}", "5") was equal under the hand-written grader; Math-Verify reads "\text{5 cm}" as
    # one word, so only a unit outside the \text counts (next pair). A box rarely holds the unit alone.
    (r"5\text{ cm}^2", "5"),
    ("$17$", "17"),
    ("1{,}000", "1000"),
    ("1,000", "1000"),
    ("y=2x+1", "y=1+2x"),
    ("y=2x+1", "2x+1-y=0"),
    (r"\text{Yes}", "yes"),
    (r"\boxed{42}", "42"),
    ("42.", "42"),
    ("-3", r"-\frac{6}{2}"),
    (r"\frac{1}{2^{99}}", "1/2^{99}"),
    (r"2\pi", r"\pi \cdot 2"),
    (r"3\sqrt{2}", r"\sqrt{18}"),
    (r"\sqrt{2}+\sqrt{8}", r"3\sqrt{2}"),
    ("1.414214", r"\sqrt{2}"),
    (r"x^2+2x+1", "(x+1)^2"),
    (r"P(x)=x^2+1", r"P(x) = 1 + x^2"),
    (r"\left[ \frac{1}{2}, 1 \right)", "[0.5,1)"),
    ("x=1, y=2", "(1,2)"),
    (r"\{2,3,7\}", "2, 3, 7"),
    (r"(-\infty,0)\cup(1,\infty)", r"(1,\infty)\cup(-\infty,0)"),
    (r"x \in [0, 1]", "[0,1]"),
    (r"\$5", "5"),
    ("2^{10}", "1024"),
    (r"\sqrt[3]{8}", "2"),
    (r"e^{0}", "1"),
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"),
    (r"\theta = 30^\circ", "30"),
    (r"a_1+a_2", "a_2+a_1"),
    ("50 percent", "50"),
    (r"\text{No solution}", "no solution"),
    (r"\binom{5}{2}", "10"),
    ("0.333333", r"\frac{1}{3}"),
    (r"2\pi r^2", r"2 r^2 \pi"),
    (r"\log_2 8", "3"),
    ("5!", "120"),
    (r"\frac{(2n)!}{n!\,n!}", r"\binom{2n}{n}"),
    (r"\sqrt x", "x^{1/2}"),
    ("3+2i", "2i+3"),
    ("1e5", "100000"),                        # scientific notation, not 1 * e * 5
    ("1,000,000", "1000000"),
    ("1 000", "1000"),
    (r"11,\! 111", "11111"),
    ("-0.5", r"-\frac{1}{2}"),
    # What the hand-written grader got wrong (false negatives on Math-Verify's pairs):
    ("(p,q)=(3,2)", "(3,2)"),
    ("AB=4,CD=5", "4, 5"),
    (r"(3,4),(1,2)", r"(1,2),(3,4)"),        # a list of solutions: order does not matter
    (r"\{1 \text{ and } 2\}", r"\{1, 2\}"),
    (r"x \geq 5", "x >= 5"),
    (r"\cfrac{1}{3}", r"\frac{1}{3}"),
    (r"125\textnormal{ miles}", "125"),
    (r"\begin{bmatrix}0 & 1 \\ 1 & 0\end{bmatrix}", r"\begin{pmatrix}0 & 1 \\ 1 & 0\end{pmatrix}"),
    (r"\boxed{1}, \boxed{2}", "1, 2"),      # several boxes in one answer
]

# Math-Verify is not symmetric: these hold with the gold on the right only.
EQUAL_GOLD_RIGHT = [
    ("(0,1)", "0<f(x)<1"),                     # an interval gold may be written as an inequality
    ("1, 2", r"1 \text{ and } 2"),
    ("-2, 1", r"\boxed{1} \text{ and } \boxed{-2}"),
]

# Pairs that must NOT be judged equal (known false positives of popular graders first).
NOT_EQUAL = [
    ("1/2^{99}", "1/2^{98}"),
    ("50", "0.5"),
    ("(1,2)", "(1,2]"),
    ("100000", "100001"),
    ("2, 3, 7", "7, 3, 2"),
    ("0.333", r"\frac{1}{3}"),
    ("(1,2)", r"\{1,2\}"),
    ("[0,1]", "[0,1)"),
    ("(1,2,3)", "(1,2)"),
    (r"\sqrt{2}", "1.41"),
    (r"2\pi", r"\pi"),
    ("x+1", "x-1"),
    ("y=2x+1", "y=2x-1"),
    ("yes", "no"),
    ("17", "71"),
    ("1000000", "1000001"),
    (r"\frac{1}{3}", "0.3333"),
    ("-5", "5"),
    (r"2^{100}", r"2^{100}+1"),
    ("\\{1,2\\}", "\\{1,2,3\\}"),
    ("5", r"\text{five apples and a pear}"),
    ("", "0"),
    (r"\sqrt{3}", "3"),
    ("e", "2.71"),
    (r"\frac{1}{0}", "1"),
    (r"\infty", "1"),
    (r"\log_2 8", "4"),
    # An undefined value equals nothing (all three were equal under the hand-written grader).
    ("1/0", "2/0"),
    (r"\frac{1}{0}", r"\log(0)"),
    ("2/0", r"\log(0)"),
    ("12:00", "1:00"),                        # read as 12/0 and 1/0
    # An integer gold is matched exactly (was equal within a relative 1e-6), and so is a power.
    ("1000000.5", "1000000"),
    ("1024.0000001", "2^{10}"),
    ("100001", "1e5"),
    ("1, 2", "2, 1"),                         # a bare list of plain numbers keeps its order
    # Math-Verify reads only "1 - \frac{1}{" of these, so on its own it calls them equal.
    (r"1 - \frac{1}{\mathrm{e}}", r"1 + \frac{1}{\mathrm{e}}"),
]


@pytest.mark.parametrize("pred,gold", EQUAL)
def test_equal_pairs(pred, gold):
    assert math_equal(pred, gold), (pred, gold)
    assert math_equal(gold, pred), (gold, pred)


@pytest.mark.parametrize("pred,gold", EQUAL_GOLD_RIGHT)
def test_equal_pairs_with_the_gold_on_the_right(pred, gold):
    assert math_equal(pred, gold), (pred, gold)


@pytest.mark.parametrize("pred,gold", NOT_EQUAL)
def test_not_equal_pairs(pred, gold):
    assert not math_equal(pred, gold), (pred, gold)
    assert not math_equal(gold, pred), (gold, pred)


def test_table_is_large_enough():
    assert len(EQUAL) + len(NOT_EQUAL) >= 40


def test_none_prediction_is_wrong():
    assert not math_equal(None, "3")


@pytest.mark.parametrize("text,expected", [
    (r"so the answer is $\boxed{\frac{1}{\sqrt{2}}}$.", r"\frac{1}{\sqrt{2}}"),
    (r"first \boxed{3}, no wait: \boxed{4}", "4"),
    (r"\fbox{7}", "7"),
    (r"the answer is $\boxed 5$.", "5"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    ("no box here, the answer is 5", None),
    (r"\boxed{\frac{1}{2}", None),      # cut off mid-answer
    (r"\boxed{}", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text,gold,expected", [
    ("the last digit is 5", "85", False),
    ("it is 85.", "85", True),
    ("15 apples", "5", False),
    ("half is 0.5 and 5.2 is more", "5", False),
    ("try 5 apples", "5", True),
    (r"look at $\frac{1}{2}$ again", r"\dfrac{1}{2}", True),
    ("it is 1/2 of it", "0.5", False),
    ("it is 1/2 of it", r"\frac12", True),
    (r"so we get \boxed{0.5}", r"\frac{1}{2}", True),
    ("about 1,000 of them", "1000", True),
    ("think about (1,2]", "(1, 2]", True),
    ("check the case x=1", "(1, 2]", False),
    ("Is the answer yes?", r"\text{Yes}", True),
    ("A good idea is to factor", "A", False),
    ("the sum is x^2 + 1 here", "x^2+1", True),
])
def test_mentions_answer(text, gold, expected):
    assert mentions_answer(text, gold) is expected


def test_plain_numbers_never_start_the_worker():
    # Integers, decimals, fractions and bare lists of them are decided in this process (the tiny world
    # judges thousands per step). Powers (1/2^{99}) and brackets ((1,2)) now go to Math-Verify.
    verify._shutdown_worker()
    assert math_equal("3", "3") and not math_equal("3", "4")
    assert math_equal(r"\frac{6}{4}", "1.5") and math_equal("12", "12.0") and not math_equal("1/0", "2/0")
    assert math_equal(r"\boxed{-7}", "$-7$") and not math_equal("1, 2", "1, 2, 3")
    assert verify._worker is None


def test_pathological_powers_time_out_and_the_worker_restarts():
    t0 = time.monotonic()
    assert not math_equal("2^{2^{2^{2^{2^{100}}}}}", "3", timeout_s=1.0)
    assert time.monotonic() - t0 < 1.0 + 3
    assert verify._worker is None  # killed for running late
    t0 = time.monotonic()
    assert not math_equal("2^{2^{2^{2^{2^{100}}}}}", "2^{2^{2^{2^{2^{101}}}}}", timeout_s=2.0)
    assert time.monotonic() - t0 < 2.0 + 3
    assert math_equal(r"\sqrt{8}", r"2\sqrt{2}")  # a fresh worker answers
    assert verify._worker is not None


def test_the_time_bound_holds_in_a_thread():
    # Math-Verify's own SIGALRM timeouts raise outside the main thread; the worker's kill works anywhere.
    got = []
    thread = threading.Thread(target=lambda: got.append(math_equal("2^{2^{2^{2^{2^{100}}}}}", "3", timeout_s=1.0)))
    t0 = time.monotonic()
    thread.start()
    thread.join()
    assert got == [False] and time.monotonic() - t0 < 1.0 + 3


def test_threads_share_the_worker_safely():
    results = []

    def grade():
        results.append(math_equal(r"\sqrt{12}", r"2\sqrt{3}") and not math_equal(r"\sqrt{12}", r"3\sqrt{2}"))

    threads = [threading.Thread(target=grade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_cli():
    import subprocess
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "verify.py")
    out = subprocess.run([sys.executable, path, r"\frac{1}{2}", "0.5"], capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_math_verify_cases():
    """Math-Verify's own test pairs: >= 95% of the answer pairs right and no wrong answer accepted."""
    from bench import math_grader as bench
    rows = bench.load_pairs(os.path.join(os.path.dirname(__file__), "fixtures", "math_verify_cases.jsonl"))
    answers = [r for r in rows if not r.get("questionable") and not bench.is_prose(r["pred"])]
    assert len(answers) >= 200
    s = bench.score(answers, math_equal)
    assert s["false_positives"] == 0, s["mistakes"]
    assert s["right"] >= 0.95 * s["total"], s["mistakes"]


def test_normalize_answer_and_box_pattern():
    assert normalize_answer(r"$\left( \dfrac{1}{2}, 3 \right).$") == normalize_answer(r"\boxed{(\frac{1}{2},3)}")
    assert normalize_answer(r"\text{Yes}") == "Yes"
    assert normalize_answer("x+1") != normalize_answer("x-1")
    assert [m.group(0) for m in verify.BOX_RE.finditer(r"\boxed{1} \fbox{2} \boxedx")] == [r"\boxed", r"\fbox"]


@pytest.mark.parametrize("text, number", [("41 + 32 = 73.", "73"), ("The answer is 1,234 apples", "1234"),
                                          ("so -5", "-5"), ("2.5, then 3.", "3"), ("x2 and the 3rd", None),
                                          ("no number", None), ("", None), ("7,425,000", "7425000")])
def test_final_number_is_the_last_number_of_a_reply(text, number):
    assert verify.final_number(text) == number
