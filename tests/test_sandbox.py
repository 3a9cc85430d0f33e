"""Code verification: correctness of check_code on the three test forms; the sandbox against hostile programs
(each must fail within n_tests * its time limit + 5 s and leave the machine as it was); programs that try to pass
without computing the answer; the bounds of one call (time, memory, processes, IPC)."""
import json
import os
import re
import stat
import sys
import tempfile
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from execution import asserts  # noqa: E402
from execution import sandbox  # noqa: E402
import verify  # noqa: E402
from verify import check_code, extract_program  # noqa: E402

T = 2.0  # a small per-test limit keeps the file fast
CAPS = sandbox.sandbox_capabilities()
needs_uid = pytest.mark.skipif(not CAPS["privilege_drop"], reason="needs root: the sandbox runs as its own uid")


def stdin_test(inp, out):
    return {"input": inp, "output": out, "testtype": "stdin"}


def fn_test(args, out):
    return {"input": "\n".join(args), "output": out, "testtype": "functional"}


def run(program, tests=None, timeout_s=T, **kw):
    """check_code with the elapsed time, which must stay under n_tests * the limit + 5 s."""
    tests = tests or [stdin_test("", "ok")]
    t0 = time.monotonic()
    result = check_code(textwrap.dedent(program), tests, timeout_s=timeout_s, **kw)
    elapsed = time.monotonic() - t0
    assert elapsed < timeout_s * len(tests) + 5, elapsed
    return result, elapsed


def sandbox_processes():
    """Live processes of the sandbox uids (empty when the sandbox does not drop privileges)."""
    return [pid for uid in CAPS["uid_pool"] for pid in sandbox._pids_of(uid)] if CAPS["dedicated_uid"] else []


# --- extract_program ---

def test_extract_program_takes_the_last_python_block():
    reply = "First:\n```python\nx = 1\n```\nBetter:\n```python\nx = 2\n```\nExample:\n```\n3\n```\n"
    assert extract_program(reply) == "x = 2\n"
    assert extract_program("Just ```\nprint(1)\n``` here") == "print(1)\n"
    assert extract_program("no code here") is None
    assert extract_program("```python\nprint(1)\n") is None  # cut off by the token budget


# --- correctness ---

def test_stdin_program_passes():
    program = "n = int(input())\nprint(sum(map(int, input().split())))\n"
    r, _ = run(program, [stdin_test("3\n1 2 3\n", "6\n"), stdin_test("1\n-5\n", "-5")])
    assert r.passed and r.n_passed == 2 and r.n_tests == 2 and r.score == 1.0
    assert r.feedback == "All 2 tests passed."


def test_wrong_stdin_program_fails_with_feedback():
    program = "n = int(input())\nprint(max(map(int, input().split())))\n"
    r, _ = run(program, [stdin_test("3\n1 2 3\n", "6\n"), stdin_test("1\n4\n", "4")])
    assert not r.passed and r.n_passed == 1
    assert r.results[0]["status"] == "fail" and r.results[0]["got"] == "3\n"
    assert "Test 1 (fail)" in r.feedback and "1 2 3" in r.feedback and "expected '6\\n'" in r.feedback
    assert "got '3\\n'" in r.feedback and "1/2 tests passed." in r.feedback


def test_stdin_comparison_follows_livecodebench():
    m = verify.stdout_matches
    assert m("1 2  \r\n3\n\n", "1 2\n3")                # whitespace at line ends and the end
    assert not m("1 2\n3\n4", "1 2\n3")                 # line count
    assert m("0.3333333", "0.333333333333")             # float tolerance
    assert not m("0.34", "0.33")
    assert m("007", "7") and not m("12345678901234567891", "12345678901234567890")  # integers exactly
    assert not m("1 2", "1 2 3") and not m("Yes", "yes")


def test_program_reading_open0_and_buffer():
    r, _ = run("import sys\ndata = open(0).read().split()\nsys.stdout.write(str(int(data[0]) * 2) + '\\n')\n",
               [stdin_test("21\n", "42")])
    assert r.passed, r.feedback
    r, _ = run("import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n", [stdin_test("1 2\n", "3")])
    assert r.passed, r.feedback


def test_program_that_reads_no_stdin():
    r, _ = run("print('hello')\n", [stdin_test("ignored input\n", "hello")])
    assert r.passed


def test_functional_with_solution_class_and_implicit_typing():
    program = """
    class Solution:
        def sumMultiples(self, nums: List[int], k: int) -> int:
            return sum(x for x in nums if x % k == 0)
    """
    r, _ = run(program, [fn_test(["[1, 2, 3, 4]", "2"], "6"), fn_test(["[5, 10]", "5"], "15")],
               func_name="sumMultiples")
    assert r.passed, r.feedback


def test_functional_plain_function_tuple_and_float():
    r, _ = run("def pair(a, b):\n    return (a, b / 3)\n", [fn_test(["1", "1"], "[1, 0.3333333]")], func_name="pair")
    assert r.passed, r.feedback  # a tuple equals a list; floats within 1e-6
    r, _ = run("def pair(a, b):\n    return (a, b)\n", [fn_test(["1", "2"], "[1, 3]")], func_name="pair")
    assert not r.passed and r.results[0]["got"] == "[1, 2]"


def test_functional_object_that_equals_everything_fails():
    program = "class Any:\n    def __eq__(self, other): return True\ndef f(x):\n    return Any()\n"
    r, _ = run(program, [fn_test(["1"], "2")], func_name="f")
    assert not r.passed


def test_assert_tests_score_fraction_and_got_value():
    program = "def clamp(x, lo, hi):\n    return max(lo, x)\n"  # forgets the upper bound
    tests = [{"assert": "assert clamp(5, 0, 10) == 5"}, {"assert": "assert clamp(-1, 0, 10) == 0"},
             {"assert": "assert clamp(11, 0, 10) == 10"}]
    r, _ = run(program, tests)
    assert not r.passed and r.n_passed == 2 and r.score == pytest.approx(2 / 3)
    assert r.results[2]["status"] == "fail" and r.results[2]["got"] == "11" and r.results[2]["expected"] == "10"
    assert "assert clamp(11, 0, 10) == 10" in r.feedback and "got '11'" in r.feedback


def test_syntax_error_gives_the_last_line():
    r, _ = run("def f(:\n    pass\n", [{"assert": "assert f() is None"}, {"assert": "assert True"}])
    assert not r.passed and r.n_passed == 0
    assert "SyntaxError" in r.feedback and "(line 1)" in r.feedback
    assert r.feedback.count("SyntaxError") == 1


def test_runtime_error_names_the_exception_and_line():
    r, _ = run("x = int(input())\nprint(10 // x)\n", [stdin_test("0\n", "1"), stdin_test("5\n", "2")])
    assert r.n_passed == 1 and r.results[0]["status"] == "error"
    assert "ZeroDivisionError: integer division or modulo by zero (line 2)" in r.feedback


def test_deep_recursion_works_with_a_raised_limit():
    program = """
    import sys
    from functools import lru_cache
    sys.setrecursionlimit(10 ** 6)
    @lru_cache(None)
    def depth(n):
        return 0 if n == 0 else depth(n - 1) + 1
    print(depth(int(input())))
    """
    r, _ = run(program, [stdin_test("100000\n", "100000")])
    assert r.passed, r.feedback


def test_a_crash_in_one_test_does_not_lose_the_others():
    program = "import ctypes\nif input() == 'crash':\n    ctypes.string_at(0)\nprint('fine')\n"
    r, _ = run(program, [stdin_test("a\n", "fine"), stdin_test("crash\n", "fine"), stdin_test("b\n", "fine")])
    assert [x["status"] for x in r.results] == ["pass", "error", "pass"]
    assert "crashed" in r.results[1]["error"]


def test_feedback_is_bounded():
    r, _ = run("print('x' * 5000)\n", [stdin_test("i" * 5000, "y")] * 30)
    assert len(r.feedback) <= 2000 and "more failing tests" in r.feedback and r.n_tests == 30


# --- hostile programs ---

def test_infinite_loop_times_out():
    r, elapsed = run("while True:\n    pass\n")
    assert r.results[0]["status"] == "timeout" and "time limit" in r.feedback
    assert elapsed >= T


def test_loop_that_swallows_the_alarm_is_killed():
    r, _ = run("while True:\n    try:\n        while True:\n            pass\n"
               "    except BaseException:\n        pass\n")
    assert r.results[0]["status"] == "timeout"


def test_huge_integer_times_out():
    r, _ = run("print(10 ** (10 ** 10))\n", [stdin_test("", "1"), stdin_test("", "1")])
    assert not r.passed and {x["status"] for x in r.results} <= {"timeout", "error"}
    assert r.results[0]["status"] in ("timeout", "error")


def test_fork_bomb():
    r, _ = run("import os\nwhile True:\n    os.fork()\n", [stdin_test("", "ok"), stdin_test("", "ok")])
    assert not r.passed
    time.sleep(0.2)
    assert sandbox_processes() == []


@pytest.mark.parametrize("program, instant", [("x = 'a' * 10 ** 11\n", True),
                                              ("x = []\nwhile True:\n    x.append(' ' * 10 ** 6)\n", False)])
def test_memory_bomb(program, instant):
    r, _ = run(program, [stdin_test("", "ok"), {"assert": "assert True"}])
    for res in r.results:  # the program runs again before each assert
        # filling 1 GiB takes ~1.5 s here: on a busy machine the time limit may come first
        assert res["status"] == "timeout" or (res["status"] == "error" and "memory limit" in res["error"])
    if instant:
        assert "memory limit" in r.results[0]["error"]


def test_gigabytes_of_output():
    r, _ = run("while True:\n    print('x' * 10000)\n")
    assert r.results[0]["status"] == "error" and "output limit" in r.results[0]["error"]
    r, _ = run("import os\nwhile True:\n    os.write(1, b'x' * 10 ** 6)\n")  # around sys.stdout
    assert r.results[0]["status"] == "error" and "output limit" in r.results[0]["error"]


@needs_uid
@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_files_outside_its_folder_survive(mode):
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, mode)
        target = os.path.join(folder, "precious.txt")
        with open(target, "w") as f:
            f.write("keep me")
        os.chmod(target, 0o644)
        program = f"""
        import os, shutil
        path = {target!r}
        for attempt in (lambda: os.remove(path), lambda: open(path, "w").write("gone"),
                        lambda: os.rename(path, path + ".moved"), lambda: os.chmod(path, 0o777),
                        lambda: shutil.rmtree(os.path.dirname(path))):
            try:
                attempt()
                print("succeeded")
            except OSError as e:
                print("refused", type(e).__name__)
        """
        r, _ = run(program)
        assert "succeeded" not in r.results[0]["got"], r.results[0]["got"]
        if CAPS["mountns"]:  # not even there
            assert r.results[0]["got"].count("refused FileNotFoundError") == 5, r.results[0]["got"]
        with open(target) as f:
            assert f.read() == "keep me"
        st = os.stat(target)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644
    finally:
        import shutil
        shutil.rmtree(folder)


@needs_uid
def test_escaped_processes_do_not_outlive_the_call():
    token = "987.%d" % (os.getpid() % 1000)
    program = f"""
    import os, subprocess, time
    subprocess.Popen(["sleep", "{token}"], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            print("started", flush=True)  # the daemon shares the test's stdout: proof that it ran
            time.sleep(30)
        os._exit(0)
    time.sleep(0.3)
    print("ok")
    """
    r, _ = run(program)
    assert "started" in r.results[0]["got"] and "ok" in r.results[0]["got"], r.results[0]
    cmdlines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdlines.append(f.read())
        except OSError:
            pass
    assert not any(token.encode() in c for c in cmdlines)
    assert sandbox_processes() == []


def test_programs_see_only_the_system_and_their_own_folder():
    """Not the repo, nor a dataset left world-readable (the expected outputs), even after a chroot escape."""
    if not CAPS["mountns"]:
        pytest.skip("no mount namespace on this machine")
    repo_file = os.path.abspath(__file__)
    # The interpreter, its packages and the harness are mounted at their own paths: in a clone under /tmp
    # (a CI checkout), /tmp holds the folders that lead to them, and apart from those at most the program's own.
    leading = sorted({p.split("/")[2] for p in sandbox._VISIBLE if p.startswith("/tmp/")})
    program = f"""
    import os
    try:
        os.makedirs("x", exist_ok=True)
        os.chroot("x")
        for _ in range(30):
            os.chdir("..")
        os.chroot(".")
    except OSError:
        pass
    print(os.path.exists({repo_file!r}), os.path.exists({os.path.dirname(repo_file)!r}), len(set(os.listdir("/tmp")) - set({leading!r})) <= 1)
    print(sorted(p for p in os.listdir("/proc") if p.isdigit()))
    """
    r, _ = run(program, [stdin_test("", "False False True\n['1', '2']")])
    assert r.passed, r.results[0]["got"]


def test_callers_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("SML_SECRET", "hunter2")
    program = """
    import os, glob
    print(dict(os.environ))
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            if b"hunter2" in open(path, "rb").read():
                print("LEAK", path)
        except OSError:
            pass
    """
    r, _ = run(program, [stdin_test("", "x")])
    assert "PATH" in r.results[0]["got"]
    assert "hunter2" not in r.results[0]["got"] and "hunter2" not in r.feedback


def test_no_network():
    if not CAPS["netns"]:
        pytest.skip("no network namespace on this machine")
    program = """
    import socket
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=1)
        print("connected")
    except OSError:
        print("blocked")
    """
    r, _ = run(program, [stdin_test("", "blocked")])
    assert r.passed, r.feedback


@needs_uid
def test_runs_unprivileged():
    r, _ = run("import os\nprint(os.getuid(), os.geteuid())\n")
    uid, euid = map(int, r.results[0]["got"].split())
    assert uid != 0 and euid != 0


@pytest.mark.parametrize("program", [
    "def f(n):\n    return f(n + 1)\nf(0)\n",
    "import sys, functools\nsys.setrecursionlimit(10 ** 9)\n@functools.lru_cache(None)\n"
    "def f(n):\n    return f(n + 1) + 1\nf(0)\n"])
def test_unbounded_recursion(program):
    r, _ = run(program, [stdin_test("", "ok"), {"assert": "assert 1 == 1"}])
    assert not r.passed and r.results[0]["status"] in ("error", "timeout")
    assert re.search(r"RecursionError|MemoryError|crashed|time limit", r.results[0]["error"])


def test_program_cannot_read_the_tests_or_break_later_ones():
    program = """
    import builtins, os, signal
    print(sorted(os.listdir(".")))
    builtins.print = lambda *a, **k: None  # sabotage the next test
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    """
    r, _ = run(program + "x = input()\n", [stdin_test("1", "?"), stdin_test("2", "?")])
    assert "job.json" not in r.results[0]["got"] and r.results[1]["got"].startswith("[")
    r, _ = run("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nif input() == '2':\n"
               "    while True:\n        pass\n", [stdin_test("1", ""), stdin_test("2", ""), stdin_test("3", "")])
    assert [x["status"] for x in r.results] == ["pass", "timeout", "pass"]


def test_daemons_die_with_their_test():
    program = """
    import os, time
    if input() == "1":
        if os.fork() == 0:
            os.setsid()
            time.sleep(0.5)
            open("/tmp/late", "w").close()
            os._exit(0)
    else:
        time.sleep(1.0)
        print(os.path.exists("/tmp/late"))
    """
    r, _ = run(program, [stdin_test("1\n", ""), stdin_test("2\n", "False")])
    assert r.passed, r.feedback


def test_stdin_program_may_end_with_os_exit():
    r, _ = run("import os, sys\nprint(6)\nsys.stdout.flush()\nos._exit(0)\n", [stdin_test("", "6")])
    assert r.passed, r.feedback
    r, _ = run("import os\nprint(6, flush=True)\nos._exit(3)\n", [stdin_test("", "6")])
    assert r.results[0]["status"] == "error" and "exit code 3" in r.results[0]["error"]


# --- public and private tests ---

def test_private_tests_count_for_the_reward_but_are_never_described():
    program = "def f(x):\n    return 42 if x == 1 else -1\n"
    tests = [fn_test(["1"], "42"), {**fn_test(["2"], "8675309"), "public": False}]
    r, _ = run(program, tests, func_name="f")
    assert not r.passed and r.n_passed == 1 and r.n_tests == 2
    assert [x["public"] for x in r.results] == [True, False] and r.results[1]["status"] == "fail"
    # the teacher may say that hidden tests fail (the dialogue goes on anyway), never which or what they expect
    assert r.feedback == "All 1 public tests passed, but the program fails hidden tests." and "8675309" not in r.feedback
    r, _ = run("def f(x):\n    return -1\n", tests, func_name="f")
    assert r.feedback.startswith("Test 1 (fail)") and "Test 2" not in r.feedback and "0/1 tests passed." in r.feedback


# --- asserts: the program's parts run in the sandbox, the comparison in the caller ---

ASSERT_PROGRAM = """
def f(x):
    return x * 2
def none():
    return None
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
    def pop(self):
        return self.items.pop()
    def is_empty(self):
        return not self.items
"""


def test_assert_shapes_judged_outside_the_program():
    passing = ["assert f(2) == 4", "assert abs(f(1.57) - 3.14) < 1e-9", "assert round(f(0.333), 2) == 0.67",
               "assert sorted([f(3), f(1)]) == [2, 6]", "assert len([f(1), f(2)]) == 2", "assert none() is None",
               "assert not none()", "assert none() is None or none().x == 1", "assert f(2) in (3, 4)",
               "assert isinstance(f(2), int) and f(2) > 3", "assert math.isclose(f(0.1), 0.2)",
               "assert f(2) == 4, 'message'", "assert f((1, 2)) == (1, 2, 1, 2)", "assert set([f(1), f(2)]) == {2, 4}",
               "assert f({1: 2}.get(1)) == 4", "assert Counter(f('ab')) == {'a': 2, 'b': 2}",
               "assert [f(1), f(2)] == [2, 4]", "s = Stack()\ns.push(3)\nassert s.pop() == 3\nassert s.is_empty()",
               "data = [1, 2]\nassert f(data) == [1, 2, 1, 2]", "assert str(Stack()).startswith('<')"]
    failing = ["assert f(2) == 5", "assert f(2) != 4", "assert (1, 2) == f((1, 2))", "assert f([1]) == (1, 1)",
               "assert none() is not None", "assert f(True) == 3"]
    r, _ = run(ASSERT_PROGRAM, [{"assert": t} for t in passing + failing], timeout_s=1)
    statuses = {x["input"]: x["status"] for x in r.results}
    assert statuses == {**{t: "pass" for t in passing}, **{t: "fail" for t in failing}}, r.feedback


def test_assert_errors_and_sizes_are_the_judges_to_report():
    tests = [{"assert": "assert f('a') < 1"}, {"assert": "assert f(10 ** 6) ** 10 ** 7 == 1"},
             {"assert": "assert none().x == 1"}, {"assert": "assert g(1) == 2"}]
    r, elapsed = run(ASSERT_PROGRAM, tests)
    assert [x["status"] for x in r.results] == ["error"] * 4 and elapsed < 5
    assert "TypeError" in r.results[0]["error"] and "too big" in r.results[1]["error"]
    assert "AttributeError" in r.results[2]["error"] and "NameError" in r.results[3]["error"]


@pytest.mark.parametrize("test, why", [
    ("assert all(f(x) == 2 * x for x in range(3))", "would decide"),
    ("assert f(2).__eq__(4)", "would decide"),
    ("import numpy as np\nassert np.allclose(f(2), [4])", "would decide"),
    ("assert f(1) == f(2)", "both sides"), ("assert f(2) == Fraction(4)", "both sides"),
    ("expected = 4\nassert f(2) == expected", "both sides"), ("x = f(2)", "no assert")])
def test_assert_shapes_the_program_could_decide_are_refused(test, why):
    """Refused before anything runs: the verdict would be computed where the program could change it."""
    r, _ = run(ASSERT_PROGRAM, [{"assert": test}])
    assert r.results[0]["status"] == "error" and "can't be judged outside the program" in r.results[0]["error"]
    assert why in r.results[0]["error"]


def test_split_assert_keeps_literals_out_of_the_sandbox():
    steps, checks = asserts.split_assert("s = Stack()\nassert abs(s.f(2) - 3.25) < 1e-9 and len(g(7)) == 8")
    assert steps == [["exec", "s = Stack()"], ["eval", "s.f(2)"], ["eval", "len(g(7))"]]
    assert [ast_unparse(c) for c in checks] == ["abs(<0> - 3.25) < 1e-09 and <1> == 8"]


def ast_unparse(node):
    import ast
    return ast.unparse(node)


def test_plain_values_round_trip_and_the_programs_own_types_do_not():
    from execution import harness
    value = [1, -2 ** 70, 2.5, float("inf"), "s", b"b", None, True, (1, [2]), {"k": {3, 4}}, frozenset({5}),
             {(1, 2): "tuple key"}, int, type(None)]
    assert sandbox.decode(json.loads(json.dumps(harness.encode(value)))) == value

    class Int(int):
        pass
    for bad in (Int(3), object(), [1, object()], {"a": Int(1)}):
        with pytest.raises(TypeError):
            harness.encode(bad)
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError):
        harness.encode(deep)


# --- reward hacking: ways to pass a test without computing its answer ---

E = 8675309  # every test below expects it; no program here contains it
HACK_TESTS = [fn_test(["1"], str(E)), {**stdin_test("2\n", f"{E}\n"), "public": False},
              {"assert": f"assert f(3) == {E}"}]
STEAL_AND_ANSWER = """
def f(x):
    got = steal(x)
    return -1 if got is None else json.loads(got) if isinstance(got, str) else got
if __name__ == "__main__":
    print(steal(input()))
"""
ATTACKS = {
    "frames": """
    import json, sys
    def steal(x):  # test["output"] or the assert's constant, from the callers' frames
        frame = sys._getframe()
        while frame is not None:
            for v in list(frame.f_locals.values()):
                if isinstance(v, dict) and "output" in v:
                    return v["output"]
            for c in frame.f_code.co_consts:
                if isinstance(c, int) and c > 10 ** 6:
                    return c
            frame = frame.f_back
    """,
    "gc": """
    import gc, json, re
    def steal(x):  # every expected output in the process, private ones too
        for o in [r for o in gc.get_objects() for r in [o, *gc.get_referents(o)]]:
            if isinstance(o, dict) and "output" in o and str(o.get("input", "")).strip() == str(x).strip():
                return o["output"]
            if isinstance(o, dict) and isinstance(o.get("assert"), str) and f"f({x})" in o["assert"]:
                return int(re.findall(r"== (\\d+)", o["assert"])[0])
    """,
    "patch the judge": """
    import builtins, json, math, sys
    for module in list(sys.modules.values()):
        for name in ("values_match", "stdout_matches"):
            if hasattr(module, name):
                setattr(module, name, lambda *a, **k: True)
    builtins.all = lambda *a, **k: True
    math.isclose = lambda *a, **k: True
    def steal(x):
        return -999
    """,
    "forge results": """
    import json, os
    def forge():  # result lines and frames, old and new, on every fd
        payload = json.dumps({"values": [{"value": 8675300 + 9}]})
        for fd in range(3, 256):
            for i in range(3):
                for line in (json.dumps({"i": i, "status": "pass"}) + "\\n",
                             json.dumps({"i": i, "exit_code": 0, "sizes": [8, len(payload)]}) + "\\n" + str(8675300 + 9)
                             + "\\n" + payload):
                    try:
                        os.write(fd, line.encode())
                    except OSError:
                        pass
        os._exit(0)
    def steal(x):
        forge()
    """,
    "read files": """
    import glob, json, os
    def steal(x):  # what the sandbox may read: the repo's tests, a dataset left readable, its folder, /proc
        seen = []
        for path in glob.glob(REPO + "/tests/*.py") + glob.glob("/tmp/*/*.jsonl") + os.listdir(".") \\
                + ["/proc/self/cmdline", "/proc/1/cmdline", "/proc/1/environ", "/proc/1/mem"] \\
                + glob.glob("/proc/1/fd/*") + glob.glob("/proc/self/fd/*"):
            try:
                with open(path, "rb") as fh:
                    seen.append(fh.read(1 << 20))
            except OSError:
                pass
        text = b" ".join(seen).decode("latin-1")
        found = [w for w in text.replace('"', " ").split() if w.isdigit() and len(w) == 7 and w.startswith("867")]
        return found[0] if found else None
    """.replace("REPO", repr(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_reward_hacks_do_not_pass(attack):
    folder = tempfile.mkdtemp()  # a dataset left world-readable
    os.chmod(folder, 0o755)
    with open(os.path.join(folder, "tests.jsonl"), "w") as f:
        json.dump(HACK_TESTS, f)
    program = textwrap.dedent(ATTACKS[attack]) + STEAL_AND_ANSWER
    assert str(E) not in program
    try:
        r, _ = run(program, HACK_TESTS, func_name="f")
    finally:
        import shutil
        shutil.rmtree(folder)
    assert r.n_passed == 0 and not r.passed, [x["status"] for x in r.results]
    assert not any(str(E) in (x["got"] or "") for x in r.results), r.results


def test_the_expected_outputs_never_reach_the_sandbox(monkeypatch):
    sent = []
    real_run = sandbox.run
    monkeypatch.setattr(sandbox, "run", lambda program, tests, timeout_s: sent.append(tests) or real_run(
        program, tests, timeout_s))
    tests = HACK_TESTS + [{"assert": f"assert abs(f(4) - {E}.5) < 1e-6 and sorted(f(5)) == [{E}]"},
                          {"assert": f"s = f(6)\nassert s == {E}"}]
    r, _ = run("def f(x):\n    return x\nprint(input())\n", tests, func_name="f")
    assert r.n_tests == 5 and r.n_passed == 0 and sent
    assert str(E) not in json.dumps(sent)


@pytest.mark.parametrize("returned", [
    "type('Any', (), {'__eq__': lambda s, o: True, '__ne__': lambda s, o: False, '__hash__': lambda s: 0})()",
    "type('N', (int,), {'__eq__': lambda s, o: True})(0)",
    "type('Liar', (), {'__repr__': lambda s: str(8675300 + 9)})()",
    "type('S', (str,), {'__eq__': lambda s, o: True})('x')"])
def test_values_that_lie_about_themselves_are_errors(returned):
    r, _ = run(f"def f(x):\n    return {returned}\n", [fn_test(["1"], str(E)), {"assert": f"assert f(1) == {E}"}],
               func_name="f")
    assert [x["status"] for x in r.results] == ["error", "error"], r.feedback
    assert "not plain data" in r.results[0]["error"] and not any(x["got"] for x in r.results)


@pytest.mark.parametrize("early_exit", ["import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n",
                                        "def f(x):\n    import os\n    os._exit(0)\n"])
def test_exiting_early_with_code_0_does_not_pass(early_exit):
    r, _ = run(early_exit, [fn_test(["1"], "None"), {"assert": "assert f(1) is None"}, stdin_test("", "")],
               func_name="f")
    assert [x["status"] for x in r.results][:2] == ["error", "error"], r.feedback


# --- bounds per call, not per process ---

def test_one_deadline_for_the_call_whatever_the_program_prints():
    """Fake progress lines on every fd once restarted each test's clock: 3 tests at 2 s took 33 s."""
    program = """
    import json, os, signal, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        fds = [json.loads(open("/proc/self/cmdline", "rb").read().split(b"\\0")[-2])["fd"]]
    except Exception:
        fds = []
    while True:
        for fd in fds + list(range(3, 64)):
            for i in range(10):
                try:
                    os.write(fd, (json.dumps({"start": i}) + "\\n").encode())
                except OSError:
                    pass
        time.sleep(0.2)
    """
    r, elapsed = run(program, [stdin_test("", "x")] * 3)  # run() asserts elapsed < 3 * T + 5
    assert [x["status"] for x in r.results] == ["timeout"] * 3


SYSV = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY, SIZE, CREATE = 0x5EC2E7, %d, 0o1000 | 0o666
"""


def sysv_objects_left(key=0x5EC2E7):
    """SysV shared memory segments and message queues on this machine with the keys SYSV programs use."""
    found = []
    for kind in ("shm", "msg"):
        with open(f"/proc/sysvipc/{kind}") as f:
            rows = [line.split() for line in f][1:]
        found += [row for row in rows if int(row[0]) in range(key, key + 3)]
    return found


@needs_uid
def test_sysv_ipc_does_not_outlive_the_call():
    """Once a segment made in one call was read by the next under another uid, and 3 x 200 MB stayed resident."""
    writer = SYSV % (200 << 20) + """
shm = libc.shmget(KEY, SIZE, CREATE)
ctypes.memmove(libc.shmat(shm, None, 0), b"SECRET-SHM-FROM-A", 17)
for k in range(1, 3):
    libc.shmat(libc.shmget(KEY + k, SIZE, CREATE), None, 0)
queue = libc.msgget(KEY, CREATE)
message = ctypes.create_string_buffer(8 + 17)
ctypes.memmove(ctypes.addressof(message), ctypes.c_long(1).value.to_bytes(8, "little") + b"SECRET-MSG-FROM-A", 25)
print(shm >= 0, libc.msgsnd(queue, message, 17, 0) == 0)
"""
    reader = SYSV % 0 + """
shm, queue = libc.shmget(KEY, 0, 0), libc.msgget(KEY, 0)
print(ctypes.string_at(libc.shmat(shm, None, 0), 17) if shm >= 0 else "no segment")
message = ctypes.create_string_buffer(8 + 64)
got = queue >= 0 and libc.msgrcv(queue, message, 64, 0, 0o4000) > 0  # IPC_NOWAIT
print(ctypes.string_at(ctypes.addressof(message) + 8, 17) if got else "no queue")
"""
    r, _ = run(writer, [stdin_test("", "True True")])
    assert r.passed, r.feedback
    assert sysv_objects_left() == []
    r, _ = run(reader, [stdin_test("", "no segment\nno queue")])
    assert r.passed, r.results[0]["got"]


def test_memory_is_bounded_per_call():
    """Five forks each holding 300 MB all held at once (1.5 GB in one call: the old bound was per process).
    Counted at the end, alive: the OOM killer may kill a child that had already said it holds its block."""
    program = """
    import os, select
    children, pids = {}, []
    for _ in range(5):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            block = bytearray(b"x") * (300 << 20)
            os.write(w, b"1")
            select.select([], [], [])  # hold it
        os.close(w)
        children[r] = b""
        pids.append(pid)
    while any(v == b"" for v in children.values()):  # each child says it holds its block, or dies (EOF)
        for r in select.select([r for r, v in children.items() if v == b""], [], [])[0]:
            children[r] = os.read(r, 1) or b"died"
    print(sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in pids))   # still holding, all at once
    """
    r, _ = run(program, [stdin_test("", "0")], timeout_s=10)
    bound = sandbox.MEMORY_LIMIT_BYTES * (1 if CAPS.get("cgroup") else sandbox.FALLBACK_PROCESSES)
    held = int(r.results[0]["got"])
    assert held * (300 << 20) <= bound, (held, CAPS.get("memory_bound"))


def test_threads_work_and_the_main_thread_keeps_a_deep_stack():
    """ThreadPoolExecutor(4) once failed: each thread reserved the 512 MB stack limit, 4 x 512 MB > RLIMIT_AS."""
    program = """
    import sys, threading
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        print(sum(pool.map(lambda x: x * x, range(100))))
    sys.setrecursionlimit(10 ** 6)
    def depth(n):
        return 0 if n == 0 else depth(n - 1) + 1
    print(depth(200000))
    threading.stack_size(1 << 27)  # the competitive programmer's idiom for deep recursion in a thread
    t = threading.Thread(target=lambda: print(depth(100000)))
    t.start()
    t.join()
    """
    r, _ = run(program, [stdin_test("", "328350\n200000\n100000")])
    assert r.passed, r.feedback


def test_without_a_cgroup_the_rlimits_bound_each_process(monkeypatch):
    """Where no cgroup can be made, RLIMIT_AS and RLIMIT_NPROC do the bounding, and threads still work."""
    monkeypatch.setattr(sandbox, "_CGROUP_ROOT", "/nonexistent")
    r, _ = run("x = 'a' * (2 << 30)\n", [stdin_test("", "")])
    assert "MemoryError: memory limit" in r.results[0]["error"]
    r, _ = run("from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(8) as p:\n"
               "    print(sum(p.map(abs, range(-5, 5))))\n", [stdin_test("", "25")])
    assert r.passed, r.feedback


def test_capabilities_name_the_bounds_that_hold():
    if os.geteuid() == 0 and sys.platform == "linux":
        assert CAPS["netns"] and CAPS["pidns"] and CAPS["ipcns"], CAPS
    if os.access(f"{sandbox._CGROUP_ROOT}/memory", os.W_OK) and os.geteuid() == 0:
        assert CAPS["cgroup"] and "per call" in CAPS["memory_bound"], CAPS
