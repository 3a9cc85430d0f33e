"""How often is the math grader right? verify.math_equal, and Math-Verify alone, on labelled pairs.

The reward of the paper (§4.3) is only as good as the grader behind it: a false negative tells the
student that a right answer is wrong, a false positive rewards a wrong one. This script reads JSON
Lines of pairs `{"gold", "pred", "expected"[, "questionable", "source"]}` and prints right / total,
false positives (FP) and false negatives (FN) of two graders:

    verify.math_equal    what the reward uses: exact numbers first, then Math-Verify, re-checked
    Math-Verify alone    the same Math-Verify call without the exact-number checks (verify.py's steps 1
                         and the re-check of step 2), so the table shows what those checks cost

Pairs come in two kinds, scored apart: answer pairs (the prediction holds a \\boxed{} or is a bare
answer) and prose pairs (a sentence with no box: a dialogue needs a box to tell an answer from a
question, so the trainer never grades these). A pair with a "questionable" note is left out of the
scores and listed.

    python -m bench.math_grader                              # tests/fixtures/math_verify_cases.jsonl
    python -m bench.math_grader my_pairs.jsonl --show 20     # and up to 20 mistakes of each grader

Deviation: the paper grades with an LLM judge and reports no such measure; this one measures the
rule-based grader that stands in for the judge here.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

import verify

DEFAULT_CASES = "tests/fixtures/math_verify_cases.jsonl"
GRADERS = {
    "verify.math_equal": lambda pred, gold, timeout_s: verify.math_equal(pred, gold, timeout_s=timeout_s),
    "Math-Verify alone": lambda pred, gold, timeout_s: verify._ask_worker(pred, gold, timeout_s, exact=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_CASES, help="JSON Lines of labelled pairs")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per pair (math_equal's timeout_s)")
    parser.add_argument("--show", type=int, default=0, help="list up to this many mistakes of each grader")
    args = parser.parse_args()
    try:
        rows = load_pairs(args.path)
    except ValueError as e:
        sys.exit(str(e))
    scored = [r for r in rows if not r.get("questionable")]
    kinds = {"answer": [r for r in scored if not is_prose(r["pred"])],
             "prose": [r for r in scored if is_prose(r["pred"])]}
    print(f"{args.path}: {len(rows)} pairs; scored {len(kinds['answer'])} answer pairs and "
          f"{len(kinds['prose'])} prose pairs; left out {len(rows) - len(scored)} questionable ones\n")
    print("| grader | answer pairs right | FP | FN | prose pairs right | FP | FN |")
    print("|---|---|---|---|---|---|---|")
    mistakes = {}
    for name, grade in GRADERS.items():
        cells = []
        for kind, pairs in kinds.items():
            s = score(pairs, lambda pred, gold: grade(pred, gold, args.timeout))
            mistakes[name, kind] = s["mistakes"]
            cells.append(f"{s['right']}/{s['total']} ({100 * s['right'] / max(s['total'], 1):.1f}%) | "
                         f"{s['false_positives']} | {s['false_negatives']}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for r in rows:
        if r.get("questionable"):
            verdicts = ", ".join(f"{name} says {grade(r['pred'], r['gold'], args.timeout)}"
                                 for name, grade in GRADERS.items())
            print(f"\nleft out, {r.get('source', '?')} (expected {r['expected']}; {verdicts}): {r['questionable']}")
    for (name, kind), wrong in mistakes.items():
        for r in wrong[:args.show]:
            print(f"\n{name}, {kind} pair, expected {r['expected']}: {r.get('source', '?')}\n"
                  f"  gold {r['gold'][:150]!r}\n  pred {r['pred'][:150]!r}")


def score(pairs: list[dict], grade) -> dict:
    """right, total, false_positives, false_negatives and the mistaken pairs of grade(pred, gold)."""
    wrong = [r for r in pairs if bool(grade(r["pred"], r["gold"])) != bool(r["expected"])]
    return {"right": len(pairs) - len(wrong), "total": len(pairs), "mistakes": wrong,
            "false_positives": sum(not r["expected"] for r in wrong),
            "false_negatives": sum(bool(r["expected"]) for r in wrong)}


def is_prose(pred: str) -> bool:
    """No box, and it opens with a word of two letters or more outside $...$, \\(...\\) and \\[...\\]:
    a sentence ("Answer $9$", "Therefore $x > 5$"), never a box's content ("28 percent", "$28$ pct")."""
    if verify.BOX_RE.search(pred):
        return False
    values = re.sub(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[a-zA-Z]+", "0", pred, flags=re.S)
    return re.match(r"\W*[A-Za-z]{2,}", values) is not None


def load_pairs(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"Cannot read {path} ({e.strerror}): pass a JSON Lines file of labelled pairs.") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("gold"), str) and isinstance(row.get("pred"), str)
                and isinstance(row.get("expected"), (bool, int))):
            raise ValueError(f'{path}, line {n}: expected {{"gold": str, "pred": str, "expected": bool}}; '
                             "fix or remove that line.")
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
