"""Is this answer right? The verifier behind the reward R(x, y) of the paper (§4.3), math domain (§5.1).

A dialogue is scored by the turn at which the student first gives a correct final answer, so all rests on:

    extract_answer(text)          the student's final answer: the content of the last \\boxed{...} (or
                                  \\fbox{}); a dialogue needs the box to tell an answer from a question
    final_number(text)            the last number of a reply: the answer of a problem whose format is
                                  "number" (tasks.arith_problems: a small model seldom boxes)
    math_equal(pred, gold)        the same mathematical object? Each may be a bare answer or text holding
                                  \\boxed{...}; a gold in $...$ or \\boxed{} is fine
    mentions_answer(text, gold)   does a teacher's hint or a student's question give the gold away?
    normalize_answer(s), BOX_RE   a light normalisation and the box pattern (turntypes.py's rules)

How math_equal decides (the same text is the same answer; otherwise):
  1. Exact numbers, in this process (the tiny world's integer answers never leave it). Where both sides
     are plain numbers (12, -0.5, 1e5, 7,425,000, p/q, \\frac{p}{q}) or bare lists of them, exact
     arithmetic has the last word: integers and fractions match exactly (1000000.5 != 1000000), lists
     in order ("2, 3, 7" != "7, 3, 2"), and x/0 equals nothing else. Only a decimal against a fraction
     that is not an integer may be its rounding: equal to 6 places, as in Math-Verify (0.333333 = 1/3).
  2. Anything else: Math-Verify (huggingface/Math-Verify) parses the LaTeX into sympy and compares
     numbers, expressions, equations, inequalities, sets, intervals and matrices. A bare answer is put
     in $...$ first; text is read as it is (its boxes together are one answer: "\\boxed{1}, \\boxed{2}").
     Its "yes" is checked again: it may have read a part of an answer only (unbalanced braces); an
     undefined value (\\log(0), 12:00 read as 12/0) equals nothing else; a set \\{1,2\\} is no pair
     (1,2); two plain numbers (2^{10}, 1/2^{99}) must be equal exactly, unless one is a decimal and the
     other a fraction, or one is a percentage (Math-Verify's rule: 10\\% = 10).
  3. The time bound: sympy can run for ever (2^{2^{2^{100}}}), and Math-Verify's own timeouts use
     SIGALRM, which only works in the main thread. So Math-Verify runs in a worker process with its
     timeouts off, and the caller kills the worker when it is `timeout_s` late: the answer counts as
     wrong, and the next call starts a fresh worker.

    python verify.py "\\frac{1}{2}" "0.5"            # prints True
    python -m pytest tests/test_verify_math.py tests/test_sandbox.py -q
    python -m bench.math_grader                      # the score on Math-Verify's own test pairs

Deviations from the paper: it grades Omni-MATH with an LLM judge (GPT-4o or Omni-Judge); here grading
is rule-based, so a text answer counts only when Math-Verify matches it (a right paraphrase is wrong).
Which lists are ordered only the problem knows: a bare list of plain numbers is ordered here, and
Math-Verify reads other lists as sets.

Code (§5.1, the code domain, §4.1): the student's program runs on the problem's tests in execution/sandbox.py,
which says what it produced; the verdict is made here, out of the program's reach. The teacher's private
knowledge k_t is what the public tests say about the student's latest program (§4.1: it changes each student
turn).

    extract_program(reply)     the last ```python block of a reply (else the last untagged ``` block), or None
    check_code(program, tests, func_name=None, timeout_s=6.0) -> CodeResult
        .passed: all tests pass, private ones too (the reward); .n_passed, .n_tests, .score; .results: one
        dict per test (status pass/fail/error/timeout, input, expected, got, error, public); .feedback: k_t,
        the public tests only ("public": False: counts for .passed, never described; "reward": False:
        described only)
    feedback_text(results)     that text from per-test results (the tiny world writes it without running code)
    values_match, stdout_matches   LiveCodeBench's comparisons, on plain data

Tests come in the datasets' three forms (docs/datasets.md); none of their expected outputs ever
enters the sandbox:
    {"input", "output", "testtype": "stdin"}       LiveCodeBench: input on stdin; stdout compared line by line,
                                                   numbers token by token with tolerance 1e-6
    {"input", "output", "testtype": "functional"}  LiveCodeBench/LeetCode: one JSON argument per input line;
                                                   Solution().func_name(...) or func_name(...):
                                                   plain data only
    {"assert": "assert f(1) == 2"}                 OpenCodeInstruct: the program's parts (f(1)) run in the
                                                   sandbox, the comparison here on plain data
                                                   (execution/asserts.py says which shapes; one the program
                                                   could decide is an
error) """
from __future__ import annotations

import ast
import atexit
import contextlib
import dataclasses
import json
import math
import os
import re
import select
import subprocess
import sys
import threading
from fractions import Fraction

from execution import asserts
from execution import sandbox

# === Math: extract_answer, math_equal, mentions_answer (§4.3, §5.1) ===

BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def extract_answer(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{}, or `\\boxed 5`); None when there is none, when it
    is empty, or when its braces never close (a reply cut off by the token budget: no final answer)."""
    boxes = list(BOX_RE.finditer(text or ""))
    return _box_content(text, boxes[-1].end()) if boxes else None


_FINAL_NUMBER_RE = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?![\d,])|(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


def final_number(text: str) -> str | None:
    """The last number written in `text` ("41 + 32 = 73." -> "73"; thousands' commas dropped), None if it has
    none: lm-evaluation-harness's "flexible extract" for GSM8K. A number glued to letters (x2, 3rd) is no
    answer."""
    numbers = _FINAL_NUMBER_RE.findall(text or "")
    return numbers[-1].replace(",", "") if numbers else None


def math_equal(pred: str | None, gold: str | None, timeout_s: float = 5.0) -> bool:
    """True when `pred` and `gold` are the same answer; False for None, garbage, or a timeout.
    `timeout_s` bounds the Math-Verify call; exact numbers are decided without one (step 1 above)."""
    pred, gold = str(pred or "").strip(), str(gold or "").strip()
    if not pred or not gold:
        return False
    if pred == gold:
        return True  # the same text is the same answer, even one that has no value (12:00 read as 12/0)
    a, b = _exact_numbers(pred), _exact_numbers(gold)
    if any(value is None for value, _ in (a or []) + (b or [])):
        return False  # x/0: an undefined value equals nothing
    if a is not None and b is not None:
        return len(a) == len(b) and all(_same_number(x, y) for x, y in zip(a, b))
    return _ask_worker(pred, gold, timeout_s)


def mentions_answer(text: str, gold: str) -> bool:
    """Does a free-text message reveal the gold answer? Errs on the side of reporting a leak.

    True if a \\boxed{} in it equals the gold, or the gold appears as a standalone token: a number with
    boundaries (gold 5 is not in "15", "0.5" or "5.2"), a fraction as \\frac{p}{q} or p/q, another gold
    as its normalised LaTeX, spaces ignored. A one-letter gold ("A") is only revealed by a box."""
    if not text or not gold:
        return False
    for m in BOX_RE.finditer(text):
        if math_equal(_box_content(text, m.end()), gold):
            return True
    g, numbers, flat = normalize_answer(gold), _exact_numbers(gold), re.sub(r"\s+", "", _light_normalize(text))
    if numbers and len(numbers) == 1 and numbers[0][0] is not None:
        (value, decimal), = numbers
        p, q, sign = value.numerator, value.denominator, "-" if value < 0 else ""
        forms = ([g.lstrip("+")] if decimal else [str(p), f"{p:,}"] if q == 1
                 else [rf"{sign}\frac{{{abs(p)}}}{{{q}}}", f"{p}/{q}"])
        # Not after a digit or a decimal point, not before a digit, ".<digit>" or "/<digit>".
        return any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\d|\.\d|/\d)", flat) for f in forms)
    if len(g) < 2:
        return False
    # The normalised gold has no spaces; the text may have them anywhere ("x^2 + 1", "no solution").
    edge = r"(?<![A-Za-z0-9])" if g[0].isalnum() else ""
    tail = r"(?![A-Za-z0-9])" if g[-1].isalnum() else ""
    pattern = edge + r"\s*".join(map(re.escape, g)) + tail
    return re.search(pattern, _light_normalize(text), flags=re.IGNORECASE) is not None


def normalize_answer(s: str) -> str:
    """A light normalisation, to tell written answers apart: `$\\left( \\dfrac{1}{2} \\right).$` and
    `(\\frac{1}{2})` give the same string. Equality is math_equal's job, not this one's."""
    s = _light_normalize((extract_answer(s) or "") if BOX_RE.search(str(s)) else str(s))  # a boxed gold too
    s = re.sub(r"\\(?:text|textbf|textnormal|textrm|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+", "", s).rstrip(".")


# --- Step 1: exact numbers, in this process ---

_NUMBER_RE = re.compile(r"""([-+]?)(?:
      \\[dtc]?frac\s*(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))               # \frac{p}{q}, \frac12
    | (\d+)/(\d+)                                                 # p/q
    | ([1-9]\d{0,2}(?:[, ]\d{3})+|\d*)(\.\d*)?(?:[eE]([-+]?\d{1,4}))?      # 7,425,000  -.4  2.5  1e5
    )""", re.VERBOSE)


def _exact_numbers(s: str) -> list[tuple[Fraction | None, bool]] | None:
    """[(value, written as a decimal)] when `s` is a plain number or a bare list of them, else None.
    A value is None where it is undefined (x/0). Text with several boxes is Math-Verify's to read."""
    boxes = BOX_RE.findall(str(s))
    if len(boxes) > 1:
        return None
    s = (extract_answer(s) or "") if boxes else str(s)
    s = re.sub(r"\{,\}|\$|\\[()\[\]]|\\[!,;]\s*", lambda m: "," if m[0] == "{,}" else "", s)  # 14{,}916
    # A comma that starts a group of exactly three digits ("1,000") separates thousands, not items.
    items = re.split(r",(?!\d{3}(?!\d))", s.strip().rstrip(".").strip())
    numbers = []
    for item in items:
        m = _NUMBER_RE.fullmatch(item.strip())
        if m is None or not re.search(r"\d", item):
            return None
        sign, p, p1, q, q1, p2, q2, whole, decimals, exponent = m.groups()
        if p or p1 or p2:
            p, q = int(p or p1 or p2), int(q or q1 or q2)
            value, decimal = (Fraction(p, q) if q else None), False
        else:
            value = Fraction(re.sub("[, ]", "", whole) + (decimals or "")) * Fraction(10) ** int(exponent or 0)
            decimal = bool(decimals or exponent)
        numbers.append((-value if sign == "-" and value is not None else value, decimal))
    return numbers


def _same_number(x: tuple[Fraction, bool], y: tuple[Fraction, bool]) -> bool:
    (vx, decimal_x), (vy, decimal_y) = x, y
    fraction = vy if decimal_x else vx  # the side not written as a decimal, if one is
    if decimal_x != decimal_y and fraction.denominator != 1:  # a decimal may round a fraction
        return round(vx, 6) == round(vy, 6)
    return vx == vy


# --- Steps 2 and 3: Math-Verify in a worker process, killed when it is late ---

_DELIMITED_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\(?:boxed|fbox)(?![a-zA-Z])")


def _math_verify(pred: str, gold: str, exact: bool = True) -> bool:
    """Math-Verify's verdict, its "yes" checked again as step 2 says (unless not `exact`). Runs in the
    worker, with Math-Verify's SIGALRM timeouts off: the worker's kill is the bound."""
    import sympy
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    g, p = (parse(s if _DELIMITED_RE.search(s) else f"${s}$", config, parsing_timeout=None)
            for s in (gold, pred))
    ok = verify(g, p, timeout_seconds=None)  # not symmetric: the gold goes first
    if not ok or not exact:
        return ok
    texts = [str(v[-1]) for v in (g, p)]  # what it read: only "1 - \frac{1}{" of 1 - \frac{1}{\mathrm{e}}
    if any(t.count("{") != t.count("}") for t in texts):
        return False
    if not all(isinstance(v[0], sympy.Basic) for v in (g, p)):  # text, a matrix: its verdict stands
        return True
    percent = sympy.UnevaluatedExpr(sympy.Rational(1, 100))  # how Math-Verify reads "28\%"
    is_percent = g[0].has(percent) or p[0].has(percent)
    try:
        x, y = g[0].doit(), p[0].doit()
    except Exception:  # some of its own types can't be evaluated (a chain z = 1+1 = 2)
        return True
    if x.has(sympy.zoo, sympy.nan) or y.has(sympy.zoo, sympy.nan):
        return False
    sets = [r"\{" in t for t in texts]  # a set written \{1,2\} is neither a pair nor an interval (1,2)
    if sets[0] != sets[1] and any(isinstance(v, (sympy.Interval, sympy.Tuple)) for v in (x, y)):
        return False
    rounded = x.is_Float != y.is_Float and not (x.is_Integer or y.is_Integer)  # a decimal may round 1/3
    return x == y if x.is_Number and y.is_Number and not (is_percent or rounded) else True


# The worker is this file run with --worker, one JSON line per question: not a fork (forking a process
# with torch threads can deadlock), nor "spawn" (it re-imports the caller's script). Linux/macOS only.

_worker: subprocess.Popen | None = None
_worker_lock = threading.Lock()  # one question in flight at a time; safe from several threads
_WORKER_START_TIMEOUT_S = 60.0   # importing sympy and Math-Verify on a busy machine; not in timeout_s


def _ask_worker(pred: str, gold: str, timeout_s: float, exact: bool = True) -> bool:
    global _worker
    with _worker_lock:
        if _worker is None or _worker.poll() is not None:
            _worker = _start_worker()
        try:
            _worker.stdin.write(json.dumps([pred, gold, exact]) + "\n")
            _worker.stdin.flush()
            ready, _, _ = select.select([_worker.stdout], [], [], timeout_s)
            line = _worker.stdout.readline() if ready else ""
        except (OSError, ValueError):
            line = ""
        if line.strip() in ("0", "1"):
            return line.strip() == "1"
        _stop_worker_locked()  # late, or died (out of memory): the next call starts a fresh one
        return False


def _start_worker() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1)
    ready, _, _ = select.select([proc.stdout], [], [], _WORKER_START_TIMEOUT_S)
    if not ready or proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"The math grader's worker ({sys.executable} {__file__} --worker) did not start: "
                           "run `pip install 'math-verify[antlr4_13_2]'` in this environment.")
    return proc


def _stop_worker_locked() -> None:
    global _worker
    if _worker is not None:
        _worker.kill()
        _worker.wait()
        with contextlib.suppress(OSError):  # a broken pipe to a dead worker
            _worker.stdin.close()
        _worker.stdout.close()
        _worker = None


def _shutdown_worker() -> None:
    with _worker_lock:
        _stop_worker_locked()


atexit.register(_shutdown_worker)


def _worker_main() -> None:
    """The worker's loop: read [pred, gold, exact] lines, answer 1 or 0. Runs in the child only."""
    with contextlib.suppress(ImportError, ValueError, OSError):  # 10^{10^{10}}: a MemoryError, not swapping
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import math_verify  # noqa: F401  (imported before "ready" so the first question is not slowed)
    print("ready", flush=True)
    for line in iter(sys.stdin.readline, ""):
        try:
            ok = _math_verify(*json.loads(line))
        except Exception:  # MemoryError and RecursionError included: a wrong answer, not a crash
            ok = False
        sys.stdout.write("1\n" if ok else "0\n")
        sys.stdout.flush()


# --- Text helpers ---

def _box_content(text: str, i: int) -> str | None:
    """The argument of the \\boxed that ends at text[i]: "{...}" brace-matched, or `\\boxed 5`."""
    i = len(text) - len(text[i:].lstrip(" "))
    if i < len(text) and text[i] == "{":
        depth = 0
        for j in range(i, len(text)):
            if text[j] in "{}" and text[j - 1] != "\\":  # \{ and \} are a set's braces, not LaTeX's
                depth += 1 if text[j] == "{" else -1
                if depth == 0:
                    return text[i + 1:j].strip() or None
        return None  # never closed: cut off mid-answer
    m = re.match(r"[^\s$]+", text[i:])  # `\boxed 5`: the next run of non-space characters
    return m.group(0) if m else None


def _light_normalize(s: str) -> str:
    """What is safe on free text too: no $, \\dfrac is \\frac, no \\left, \\right or spacing commands."""
    s = s.replace(r"\$", "").replace("$", "").replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    s = re.sub(r"\\(?:left|right)(?:\.|(?![a-zA-Z]))|\\(?:[bB]igg?[lr]?|displaystyle|quad|qquad)(?![a-zA-Z])"
               r"|\\[!,;:]", "", s)
    return s.replace(r"\lbrace", r"\{").replace(r"\rbrace", r"\}").replace(r"\ ", " ").replace("~", " ")
# === Code: check_code, the judge (§5.1): programs run in execution/sandbox.py, their output is judged here ===

# === Code: check_code, the judge (§5.1). Programs run in execution/sandbox.py; what they produced is judged
# here

_FIELD_CHARS, _FEEDBACK_CHARS = 200, 2000
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)


@dataclasses.dataclass
class CodeResult:
    passed: bool           # every test passed, private ones too: the verifier's verdict R
    n_passed: int
    n_tests: int
    feedback: str          # the private knowledge k_t: what the public tests say, nothing of the others
    results: list          # per test: status, input, expected, got, error, time_s, public, compile_error

    @property
    def score(self) -> float:  # OpenCodeInstruct's fraction of asserts passed
        return self.n_passed / self.n_tests if self.n_tests else 0.0


def code_blocks(reply: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced code block of a reply."""
    return _FENCE_RE.findall(reply or "")


def extract_program(reply: str) -> str | None:
    """The last ```python block of a reply; failing that the last untagged ``` block; else None."""
    blocks = code_blocks(reply)
    tagged = [body for lang, body in blocks if lang.lower() in ("python", "py", "python3")]
    return (tagged or [body for lang, body in blocks if not lang] or [None])[-1]


def check_code(program: str, tests: list, func_name: str | None = None, timeout_s: float = 6.0) -> CodeResult:
    """Run `program` on every test in one sandbox (each test gets `timeout_s` seconds), then judge here
    what it produced: the expected outputs never enter the sandbox."""
    plans = [_plan(test, func_name) for test in tests]  # (what the sandbox runs, how to judge it) or why not
    todo = [i for i, plan in enumerate(plans) if isinstance(plan, tuple)]
    produced = dict(zip(todo, sandbox.run(program, [plans[i][0] for i in todo], timeout_s))) \
        if program is not None and todo else {}
    results = []
    for i, test in enumerate(tests):
        out = produced.get(i, {"status": "error", "error": plans[i] if program is not None else "no program"})
        out = _judge(test, plans[i][1], out) if out["status"] == "ran" else out
        results.append({"status": out["status"],
                        "input": _clip(test.get("assert", test.get("input", "")), 1000),
                        "expected": _clip(out.get("expected", test.get("output")), 1000), "got": out.get("got"),
                        "error": out["error"], "time_s": out.get("time_s"), "public": test.get("public", True),
                        "compile_error": out.get("compile_error", False)})
    counted = [r for r, test in zip(results, tests) if test.get("reward", True)]  # "reward": False: told only
    n_passed = sum(r["status"] == "pass" for r in counted)
    public = [r for r in results if r["public"]]   # the teacher hears of these; the others count for the verdict
    feedback = feedback_text(public)
    if public and n_passed < len(counted) and all(r["status"] == "pass" for r in public):
        feedback = f"All {len(public)} public tests passed, but the program fails hidden tests."
    return CodeResult(bool(counted) and n_passed == len(counted), n_passed, len(counted), feedback, results)


def _plan(test: dict, func_name):
    """What the sandbox runs for a test (no expected output in it), and how to judge what comes back."""
    try:
        if "assert" in test:
            steps, checks = asserts.split_assert(test["assert"], test.get("judge_code", ""))
            return {"steps": steps}, checks
        if test.get("testtype") != "functional":
            return {"stdin": test.get("input", ""), "name": "__main__"}, "stdin"
        if not func_name:
            return "a functional test needs func_name"
        args = [json.loads(x) for x in test["input"].split("\n") if x.strip()]
        return {"steps": [["call", func_name, args]]}, "functional"
    except (SyntaxError, ValueError) as e:  # ValueError: not JSON, or an assert that can't be split safely
        return f"this test can't be judged outside the program: {e}"


def _judge(test: dict, checks, out: dict) -> dict:
    """The verdict on what the program produced. `checks`: "stdin", "functional", or an assert's checks."""
    try:
        if checks == "stdin":
            ok, got = stdout_matches(out["stdout"], test["output"]), out["stdout"]
        elif checks == "functional":  # tuples are lists (LiveCodeBench)
            got = _lists(out["values"]["<0>"])
            ok, got = values_match(got, json.loads(test["output"])), repr(got)
        else:
            failed = next((check for check in checks if not asserts.evaluate(check, out["values"])), None)
            return {**out, "status": "fail" if failed else "pass", **_explain(failed, out["values"])}
        return {**out, "status": "pass" if ok else "fail", "got": _clip(got, 1000)}
    except Exception as e:  # the program's error in an expression, or Python's own (1 < "a")
        why = str(e) if isinstance(e, sandbox.ProgramError) else f"{type(e).__name__}: {e}"
        return {**out, "status": "error", "error": _clip(why)}


def _explain(check, values) -> dict:
    """For `assert a == b`: the values of both sides, so the feedback can say what came out."""
    if isinstance(check, ast.Compare) and len(check.ops) == 1 and isinstance(check.ops[0], ast.Eq):
        with contextlib.suppress(Exception):
            return {"got": _clip(repr(asserts.evaluate(check.left, values)), 1000),
                    "expected": _clip(repr(asserts.evaluate(check.comparators[0], values)), 1000)}
    return {}


def feedback_text(results: list) -> str:
    """What the tests say, briefly and within _FEEDBACK_CHARS: the teacher's private knowledge k_t.
    `results` as in CodeResult.results (status, input, expected, got, error)."""
    n, n_passed = len(results), sum(r["status"] == "pass" for r in results)
    if n and n_passed == n:
        return f"All {n} tests passed."
    compile_error = next((r["error"] for r in results if r.get("compile_error")), None)
    if compile_error:
        return f"The program does not compile: {compile_error}. 0/{n} tests passed."
    lines, left_out = [], 0
    for k, r in enumerate(results, 1):
        if r["status"] == "pass":
            continue
        parts = [f"Test {k} ({r['status']}): input {_clip(repr(r['input']))}"]
        if r["expected"] is not None:
            parts.append(f"expected {_clip(repr(r['expected']))}")
        if r["got"] is not None:
            parts.append(f"got {_clip(repr(r['got']))}")
        if r["error"]:
            parts.append(_clip(r["error"]))
        line = " | ".join(parts)
        if sum(len(x) + 1 for x in lines) + len(line) > _FEEDBACK_CHARS - 80:
            left_out += 1
        else:
            lines.append(line)
    if left_out:
        lines.append(f"... and {left_out} more failing tests.")
    lines.append(f"{n_passed}/{n} tests passed.")
    return "\n".join(lines)


def values_match(got, expected) -> bool:
    """LiveCodeBench's functional rule on plain values: exact types (no __eq__ of the program's), numbers
    within 1e-6 unless both are integers."""
    if type(got) in (bool, type(None), str) or type(expected) in (bool, type(None), str):
        return type(got) in (bool, type(None), str, int, float) and got == expected
    if type(got) in (int, float) and type(expected) in (int, float):
        if type(got) is int and type(expected) is int:
            return got == expected
        return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-6)
    if type(got) is list and type(expected) is list:
        return len(got) == len(expected) and all(values_match(a, b) for a, b in zip(got, expected))
    if type(got) is dict and type(expected) is dict:
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k]) for k in got)
    return False


def stdout_matches(got: str, expected: str) -> bool:
    """LiveCodeBench's rule: strip, split lines, strip each; same line count; each line equal as text, or
    token by token as numbers (integers exactly, others within 1e-6 absolute or relative)."""
    g = [line.strip() for line in got.strip().split("\n")]
    e = [line.strip() for line in expected.strip().split("\n")]
    return len(g) == len(e) and all(gl == el or (len(gl.split()) == len(el.split()) and all(
        a == b or _same_token(a, b) for a, b in zip(gl.split(), el.split()))) for gl, el in zip(g, e))


def _same_token(a: str, b: str) -> bool:
    if re.fullmatch(r"[+-]?\d+", a) and re.fullmatch(r"[+-]?\d+", b):  # no int(): huge numbers, no rounding
        key = lambda s: (s.startswith("-") and s.lstrip("+-0") != "", s.lstrip("+-").lstrip("0"))
        return key(a) == key(b)
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    except ValueError:
        return False


def _lists(x):
    return [_lists(v) for v in x] if isinstance(x, (list, tuple)) else \
        {k: _lists(v) for k, v in x.items()} if isinstance(x, dict) else x


def _clip(s, limit: int = _FIELD_CHARS):
    return s if s is None or len(s) <= limit else s[:limit] + f"... [{len(s) - limit} more chars]"


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker_main()
    elif len(sys.argv) == 3:
        print(math_equal(sys.argv[1], sys.argv[2]))
    else:
        sys.exit('usage: python verify.py PRED GOLD     e.g. python verify.py "\\frac{1}{2}" "0.5"')
