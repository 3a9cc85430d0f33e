"""Reports (§5-6): eval.json's schema, and its readable forms: results.md's tables and the plots.

evaluate.py measures; this file writes down what it measured, for a person and for the next program:
  * eval.json: {model label: {eval task: entry}}, checked by `validate_eval_json` before it is written;
  * results.md: success by turn with 95% CIs (Fig. 1-2), "Full vs Sharded" (Table 1), in-domain vs transfer
    (Fig. 4, when the models were trained on one task), turn types and questions (Fig. 5-6), the loss on the
    correct answer by turn (Fig. 3);
  * success_by_turn_<task>.png and answer_loss.png when matplotlib is installed;
  * report.html: all of it, with the training curves and dialogues token by token, in one offline page
    (report_html.py);
  * "A beats B": `differences`, each difference between two models' numbers with its own 95% CI (Welch's t,
    stats.welch_ci), in results.md against the base, and for any two runs from the command line.

    python -c "import json, report; report.write_report('out', json.load(open('runs/<run>/eval.json')))"
    python report.py compare runs/<mt-rl run> runs/<st-rl run>     # each run's trained model (or RUN:LABEL)
    python report.py html runs/<run>                               # report.html again (report_html.py)

Deviations: the paper's figures are drawn here as plain matplotlib plots and markdown tables; the
differences with Welch's CIs are this project's addition.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

from infra import runfolder
from infra import stats
import report_html

TURN_TYPES = ("answer_attempt", "clarification", "interrogation", "discussion", "hedge", "refuse", "missing")
QUESTION_TYPES = ("clarification", "interrogation")
# Fig. 3's curves (answerloss.answer_loss), each with the key of its CI over training seeds (evaluate.combine):
# over every context, and after a teacher's message that placed the answer or one that did not
ANSWER_LOSS_CURVES = {"answer_loss_by_turn": "answer_loss_ci95", "answer_loss_placed": "answer_loss_placed_ci95",
                      "answer_loss_not_placed": "answer_loss_not_placed_ci95"}
# the two curves of one kind each: did the teacher's last message place the answer?
ANSWER_LOSS_KINDS = {"answer_loss_placed": True, "answer_loss_not_placed": False}


def write_report(out: Path, results: dict, n_turns_train: int | None = None, trained_on: str | None = None) -> None:
    """Write eval.json (exactly `results`: {model_label: {eval_task: entry}}), results.md, report.html and, when
    matplotlib is installed, success_by_turn_<task>.png and answer_loss.png, each atomically.
    `trained_on` (the task the models were trained on) adds Fig. 4's in-domain vs transfer table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    validate_eval_json(results)
    runfolder.atomic_write(out / "eval.json", json.dumps(results, indent=2))
    plots = _plots(out, results, n_turns_train)
    runfolder.atomic_write(out / "results.md", _markdown(results, plots, n_turns_train, trained_on))
    write_html(out, results, n_turns_train, trained_on)


def write_html(out: Path, results: dict, n_turns_train: int | None = None, trained_on: str | None = None) -> None:
    """report.html (report_html.py): results.md's tables and this run's curves, training and dialogues, in one
    page that needs no network; its figures are drawn as SVG, so it needs no matplotlib either."""
    figures = [f"success_by_turn_{t}.png" for t in _tasks(results) if not t.endswith("-full")] + ["answer_loss.png"]
    markdown = _markdown(results, figures, n_turns_train, trained_on)
    runfolder.atomic_write(Path(out) / "report.html", report_html.page(Path(out), results, markdown, n_turns_train))


def _tasks(results: dict) -> list[str]:
    names = {t for by_task in results.values() for t in by_task}
    return sorted(names, key=lambda t: (t.split("-")[0], t))


def _pm(values, ci, i: int, scale: float = 1.0, digits: int = 3) -> str:
    """The value at turn i as "mean ± ci", or just the mean when there is no CI."""
    if i >= len(values) or values[i] is None:
        return "–"
    s = f"{scale * values[i]:.{digits}f}"
    return s + (f" ± {scale * ci[i]:.{digits}f}" if ci and ci[i] is not None else "")


def _num(e: dict, key: str, percent: bool = False) -> str:
    """A number of the entry, with ± its 95% CI over seeds where there is one (seed_ci95)."""
    if e.get(key) is None:
        return "–"
    ci = (e.get("seed_ci95") or {}).get(key)
    if percent:
        return f"{100 * e[key]:.1f}%" + (f" ± {100 * ci:.1f}" if ci is not None else "")
    return f"{e[key]:.2f}" + (f" ± {ci:.2f}" if ci is not None else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _markdown(results: dict, plots: list[str] | None, n_turns_train: int | None = None,
              trained_on: str | None = None) -> str:
    lines = ["# Evaluation", "", "Success at turn t is the fraction of dialogues solved at or before turn t, "
             "as mean ± 95% CI half-width over seeds. Truncated dialogues count as unsolved."]
    names = _tasks(results)
    for task in names:
        entries = {label: r[task] for label, r in results.items() if task in r}
        N = max(len(e["success_at_turn"]) for e in entries.values())
        e0 = next(iter(entries.values()))
        lines += ["", f"## {task}: success by turn", "",
                  f"{e0['n_problems']} problems; {e0.get('decoding', '?')}; seeds {e0.get('seeds', '?')}.", ""]
        lines += _table(["model"] + [str(t) for t in range(1, N + 1)],
                        [[label] + [_pm(e["success_at_turn"], e["ci95"], i) for i in range(N)]
                         for label, e in entries.items()])
        if plots and f"success_by_turn_{task}.png" in plots:
            lines += ["", f"![success by turn, {task}](success_by_turn_{task}.png)"]
    pairs = [t.removesuffix("-sharded") for t in names if t.endswith("-sharded") and
             t.removesuffix("-sharded") + "-full" in names]
    if pairs:
        lines += ["", "## Full vs sharded (Table 1): the same problems, fully specified in one turn or revealed "
                  "shard by shard; success at the last turn, %", ""]
        rows = []
        for domain in pairs:
            for setting in ("full", "sharded"):
                name = f"{domain}-{setting}"
                rows.append([domain.capitalize(), setting.capitalize()] + [
                    _pm(r[name]["success_at_turn"], r[name]["ci95"], len(r[name]["success_at_turn"]) - 1, 100, 1)
                    if name in r else "–" for r in results.values()])
        lines += _table(["domain", "setting"] + list(results), rows)
    if trained_on:
        lines += _transfer_table(results, names, n_turns_train, trained_on)
    lines += _against_base(results, names, n_turns_train)
    rows, types = [], []
    for label, by_task in results.items():
        for task, e in by_task.items():
            rows.append([label, task, _num(e, "questions_per_conversation"), _num(e, "success_when_asked", True),
                         _num(e, "success_when_not_asked", True), _num(e, "premature_answer_rate", True),
                         _num(e, "premature_answers_per_conversation"), _num(e, "feedback_uptake", True),
                         _num(e, "teacher_leak_rate", True), _num(e, "truncated_rate", True),
                         _num(e, "overlong_rate", True), _num(e, "answer_rate", True),
                         e.get("turn_type_classifier", "–")])
            if "turn_types" in e:
                spread = e.get("seed_ci95") or {}
                types.append([label, task] + [f"{100 * e['turn_types'].get(k, 0.0):.1f}" + (
                    f" ± {100 * spread[f'turn_types.{k}']:.1f}" if f"turn_types.{k}" in spread else "")
                    for k in TURN_TYPES])
    lines += ["", "## Behaviour (§5.2, §6.4)", "",
              "Success when asked / not asked: success of the dialogues in which the student asked at least one "
              "question / none. Feedback uptake: of the wrong attempts that the teacher's feedback could correct, "
              "the share whose next attempt agreed with it (scripted teachers); with other teachers, of the wrong "
              "numeric answers followed by another, the share that moved closer to the gold. Answered: the share "
              "of student turns in which the verifier could read an answer (well-formed).", ""]
    lines += _table(["model", "task", "questions / conversation", "success when asked", "success when not asked",
                     "premature answer rate", "premature answers / conversation", "feedback uptake",
                     "teacher leak rate", "truncated", "over-long turn", "answered", "turn types by"], rows)
    if types:
        lines += ["", "## Turn types (% of student turns)", ""] + _table(["model", "task", *TURN_TYPES], types)
    losses = [(label, task, e["answer_loss_by_turn"], e.get("answer_loss_ci95"))
              for label, by_task in results.items() for task, e in by_task.items() if e.get("answer_loss_by_turn")]
    if losses:
        N = max(len(v) for _, _, v, _ in losses)
        lines += ["", "## Loss on the correct answer after each teacher turn (Fig. 3; nats per answer token, on "
                  "the same contexts for every model; ± 95% CI over training seeds)", ""]
        lines += _table(["model", "task"] + [str(t) for t in range(1, N + 1)],
                        [[label, task] + [_pm(v, ci, i, digits=2) for i in range(N)]
                         for label, task, v, ci in losses])
        kinds = [(label, task, e) for label, by_task in results.items() for task, e in by_task.items()
                 if e.get("answer_loss_placed")]
        if kinds:   # the same contexts split by the kind of the teacher's last message
            share = kinds[0][2]["answer_placed_share"]
            lines += ["", "The same loss at a fixed kind of context: after a teacher's message that placed the "
                      "answer (an exact distance), and after one that did not (the opening, \"more than 9\"). "
                      "Share of placed contexts by turn: " + ", ".join(
                          "–" if v is None else f"{v:.2f}" for v in share) + ".", ""]
            lines += _table(["model", "task", "context"] + [str(t) for t in range(1, N + 1)],
                            [[label, task, kind.removeprefix("answer_loss_").replace("_", " ")]
                             + [_pm(e[kind], e.get(ANSWER_LOSS_CURVES[kind]), i, digits=2) for i in range(N)]
                             for label, task, e in kinds for kind in ANSWER_LOSS_KINDS])
        if plots and "answer_loss.png" in plots:
            lines += ["", "![loss on the correct answer](answer_loss.png)"]
    if plots is None:
        lines += ["", "Plots need matplotlib (`pip install matplotlib`); none were drawn."]
    return "\n".join(lines) + "\n"


def _transfer_table(results: dict, names: list[str], n_turns_train: int | None, trained_on: str) -> list[str]:
    """Fig. 4: success of every model on every fully specified task, marked in-domain (the task it was
    trained on) or transfer, at turn 1, at the training horizon and at the last turn."""
    full = [t for t in names if not t.endswith(("-sharded", "-full"))]
    N = max(len(e["success_at_turn"]) for r in results.values() for t, e in r.items() if t in full)
    turns = sorted({1, n_turns_train or 1, N})
    rows = [[task, "in-domain" if task == trained_on else "transfer", label]
            + [_pm(r[task]["success_at_turn"], r[task]["ci95"], t - 1) for t in turns]
            for task in full for label, r in results.items() if task in r]
    return (["", f"## Transfer (Fig. 4): trained on {trained_on}, evaluated on every task", ""]
            + _table(["eval task", "", "model"] + [f"turn {t}" for t in turns], rows))


def _against_base(results: dict, names: list[str], n_turns_train: int | None) -> list[str]:
    """Each model minus the base, on every task both have: success at turn 1, at the training horizon and at the
    last turn, and feedback uptake, each difference with its 95% CI (Welch). Empty without a base."""
    if "base" not in results:
        return []
    rows = []
    for label, r in results.items():
        if label == "base":
            continue
        for task in [t for t in names if t in r and t in results["base"]]:
            N = len(r[task]["success_at_turn"])
            turns = sorted({t for t in (1, n_turns_train or 1, N) if t <= N})
            rows += [[label, task, *_difference_cells(*d)]
                     for d in differences(r[task], results["base"][task], turns, ("feedback_uptake",))]
    if not rows:
        return []
    return (["", "## Against the base: each difference with its own 95% CI (Welch's t over seeds; \"clear\": the "
             "CI excludes 0)", ""]
            + _table(["model", "task", "number", "value", "base", "difference", "95% CI", ""], rows))


def _difference_cells(name: str, a: float, b: float, diff: float, hw: float) -> list[str]:
    return [name, f"{a:.3f}", f"{b:.3f}", f"{diff:+.3f}", f"[{diff - hw:+.3f}, {diff + hw:+.3f}]",
            "clear" if abs(diff) > hw else "–"]


# ---------------------------------------------------------------------------------------------
# "A beats B": the difference of two models' numbers, with its own 95% CI.
# ---------------------------------------------------------------------------------------------

def seed_summary(e: dict, number: int | str) -> tuple[float, float, int] | None:
    """(mean, sd, n) of one of an entry's numbers over the n seeds its CI was taken over (per_seed's curves):
    success at turn `number` (an int) from per_seed; a behaviour number (a key of seed_ci95, such as
    "feedback_uptake" or "turn_types.clarification") from its mean and CI half-width, as
    sd = half-width * sqrt(n) / t_{0.975, n-1}. None where the number was not measured over 2 or more seeds."""
    n = len(e.get("per_seed") or [])
    if n < 2:
        return None
    if isinstance(number, int):
        if not 1 <= number <= len(e["success_at_turn"]):
            return None
        values = [curve[number - 1] for curve in e["per_seed"]]
        return statistics.mean(values), statistics.stdev(values), n
    group, _, kind = number.partition(".")
    mean = e.get("turn_types", {}).get(kind) if group == "turn_types" else e.get(number)
    hw = (e.get("seed_ci95") or {}).get(number)
    if mean is None or hw is None:
        return None
    return mean, hw * math.sqrt(n) / stats.t975(n - 1), n


def differences(a: dict, b: dict, turns: list[int] | None = None,
                keys: tuple[str, ...] | None = None) -> list[tuple[str, float, float, float, float]]:
    """Model A against model B on one eval task (their two entries): for each number measured over 2 or more
    seeds in both, (name, A, B, A - B, 95% CI half-width of A - B by Welch's t). Success at `turns` (default:
    1, 2, 4 and the last; a turn at which neither curve moved since the one before is left out, as every turn
    after the first of a one-turn task), then `keys` (default: every behaviour number with a CI in both)."""
    N = min(len(a["success_at_turn"]), len(b["success_at_turn"]))
    turns = [t for t in turns or sorted({1, min(2, N), min(4, N), N}) if t <= N]

    def moved(t: int, since: int) -> bool:   # did either curve change between the two turns, in any seed?
        return any(c[t - 1] != c[since - 1] for e in (a, b) for c in e.get("per_seed") or [])
    turns = [t for i, t in enumerate(turns) if i == 0 or moved(t, turns[i - 1])]
    if keys is None:
        keys = tuple(k for k in a.get("seed_ci95") or {} if k in (b.get("seed_ci95") or {}))
    rows = []
    for number in [*turns, *keys]:
        sa, sb = seed_summary(a, number), seed_summary(b, number)
        if sa and sb:
            name = f"success at turn {number}" if isinstance(number, int) else number
            rows.append((name, sa[0], sb[0], *stats.welch_ci(sa, sb)))
    return rows


def _model(spec: str) -> tuple[str, dict]:
    """RUN[:LABEL] (a run folder or an eval.json) -> (name for the table, {eval task: entry})."""
    path, sep, label = spec.rpartition(":")
    if not sep or not Path(path).exists():
        path, label = spec, ""
    f = Path(path) / "eval.json" if Path(path).is_dir() else Path(path)
    if not f.is_file():
        raise runfolder.UserError(f"{path}: there is no eval.json there; give a run folder or an eval.json file.")
    results = read_eval_json(f)
    trained = [k for k in results if k != "base"] or list(results)
    if not label and len(trained) != 1:
        raise runfolder.UserError(f"{path} holds the models {list(results)}; name one as {path}:LABEL.")
    label = label or trained[0]
    if label not in results:
        raise runfolder.UserError(f"{path} has no model {label!r}; it holds {list(results)}.")
    return f"{label} ({path})", results[label]


def read_eval_json(path: Path) -> dict:
    """A run's eval.json, checked (validate_eval_json); a damaged or malformed file is one sentence naming it."""
    again = "run the evaluation again (sml.py --resume --out RUN, or evaluate.py) or restore the file"
    try:
        results = json.loads(Path(path).read_bytes())
    except json.JSONDecodeError as e:
        raise runfolder.UserError(f"{path} is damaged: it is not JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                                  f"{again}.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise runfolder.UserError(f"{path} cannot be read ({type(e).__name__}: {e}); {again}.") from None
    try:
        validate_eval_json(results)
    except ValueError as e:
        raise runfolder.UserError(f"{path} is not a report of this project's: {e}; {again}.") from None
    return results


def rebuild_html(run: str) -> Path:
    """`python report.py html RUN`: report.html again, from the run's eval.json, config.json, metrics and
    dialogues (a folder of evaluate.py's has no config.json: no training horizon is marked)."""
    run = Path(run)
    if not (run / "eval.json").is_file():
        raise runfolder.UserError(f"{run} holds no eval.json: give the folder of a run (sml.py) or of an "
                                  "evaluation (evaluate.py).")
    results = read_eval_json(run / "eval.json")
    try:
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    except (OSError, ValueError):
        raise runfolder.UserError(f"{run / 'config.json'} is damaged (not JSON); restore it, or move it away to "
                                  "build the page without the run's settings.") from None
    write_html(run, results, config.get("turns"), config.get("task") if config.get("transfer") else None)
    return run / "report.html"


def compare(spec_a: str, spec_b: str, turns: list[int] | None = None) -> str:
    """The markdown table of `python report.py compare A B`: every eval task both models have, every number."""
    (name_a, a), (name_b, b) = _model(spec_a), _model(spec_b)
    tasks = [t for t in _tasks({name_a: a}) if t in b]
    if not tasks:
        raise runfolder.UserError(f"{name_a} and {name_b} share no eval task: nothing to compare.")
    rows = [[task, *_difference_cells(*d)] for task in tasks for d in differences(a[task], b[task], turns)]
    if not rows:
        raise runfolder.UserError("No number was measured over 2 or more seeds in both: a CI needs seeds "
                                  "(sml.py --seeds 3, evaluate.py --seeds 3).")
    return "\n".join([f"A = {name_a}, B = {name_b}: each difference A - B with its own 95% CI (Welch's t over "
                      "seeds; \"clear\": the CI excludes 0).", ""]
                     + _table(["task", "number", "A", "B", "A - B", "95% CI", ""], rows)) + "\n"


def _plots(out: Path, results: dict, n_turns_train: int | None) -> list[str] | None:
    """Fig. 1-style success curves with CI bands, one file per eval task, and Fig. 3's loss curves.
    Returns the names of the files written, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")   # no display needed: files only
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    written = []

    def save(fig, name):
        tmp = out / f"{name}.tmp"
        fig.tight_layout()
        fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        os.replace(tmp, out / name)
        written.append(name)

    for task in [t for t in _tasks(results) if not t.endswith("-full")]:   # one turn: no curve to draw
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for label, by_task in results.items():
            if task not in by_task:
                continue
            y, ci = by_task[task]["success_at_turn"], by_task[task]["ci95"]
            x = range(1, len(y) + 1)
            line, = ax.plot(x, y, marker="o", ms=3, label=label)
            if ci:
                ax.fill_between(x, [a - c for a, c in zip(y, ci)], [a + c for a, c in zip(y, ci)],
                                color=line.get_color(), alpha=0.2)
        if n_turns_train:
            ax.axvline(n_turns_train, ls="--", color="grey", lw=1, label=f"training horizon N={n_turns_train}")
        ax.set(xlabel="turn t", ylabel="success rate (solved by turn t)", title=task)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        save(fig, f"success_by_turn_{task}.png")
    losses = [(f"{label} ({task})", e) for label, by_task in results.items()
              for task, e in by_task.items() if e.get("answer_loss_by_turn")]
    if losses:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for name, e in losses:   # every context (solid), and after a message that placed the answer (dashed)
            for key, style, suffix in (("answer_loss_by_turn", "-", ""), ("answer_loss_placed", "--", ", placed")):
                points = [(t, v) for t, v in enumerate(e.get(key) or [], start=1) if v is not None]
                if points:
                    line, = ax.plot([t for t, _ in points], [v for _, v in points], style, marker="o", ms=3,
                                    label=name + suffix, **({"color": line.get_color()} if suffix else {}))
        ax.set(xlabel="teacher turn", ylabel="loss on the correct answer (nats/token)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        save(fig, "answer_loss.png")
    return written


def validate_eval_json(obj) -> None:
    """Raise ValueError naming the problem when `obj` is not {label: {task: {"n_problems": int,
    "success_at_turn": [N floats in 0..1, non-decreasing], "ci95": [N floats] or None, ...}}}."""
    def check(ok, where, msg):
        if not ok:
            raise ValueError(f"eval.json{where}: {msg}")

    def num(x, hi=math.inf):   # NaN fails both comparisons
        return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= hi

    check(isinstance(obj, dict) and obj, "", "should be a non-empty object {model label: {eval task: entry}}")
    for label, by_task in obj.items():
        check(isinstance(by_task, dict) and by_task, f"[{label!r}]", "should be a non-empty object {eval task: entry}")
        for task, e in by_task.items():
            w = f"[{label!r}][{task!r}]"
            check(isinstance(e, dict), w, "should be an object")
            for key in ("n_problems", "success_at_turn", "ci95"):
                check(key in e, w, f"has no key {key!r}")
            check(isinstance(e["n_problems"], int) and num(e["n_problems"]), w, "'n_problems' should be an integer >= 0")
            s, ci = e["success_at_turn"], e["ci95"]
            check(isinstance(s, list) and s and all(num(x, 1) for x in s), w,
                  "'success_at_turn' should be a non-empty list of numbers in [0, 1]")
            for t in range(1, len(s)):
                check(s[t] >= s[t - 1] - 1e-9, w, f"'success_at_turn' decreases from turn {t} to turn {t + 1} "
                      f"({s[t - 1]} -> {s[t]}), but it counts the dialogues solved at or before each turn")
            check(ci is None or (isinstance(ci, list) and len(ci) == len(s) and all(map(num, ci))), w,
                  f"'ci95' should be null or a list of {len(s)} non-negative numbers")
            check(e.get("n_turns", len(s)) == len(s), w, f"'n_turns' differs from the {len(s)} values of 'success_at_turn'")
            per_seed = e.get("per_seed", [])
            check(isinstance(per_seed, list) and all(isinstance(c, list) and len(c) == len(s) for c in per_seed), w,
                  f"'per_seed' should be a list of curves of {len(s)} values")
            for key in ("teacher_leak_rate", "truncated_rate", "overlong_rate", "premature_answer_rate", "answer_rate"):
                check(num(e.get(key, 0), 1), w, f"{key!r} should be a rate in [0, 1], not {e.get(key)!r}")
            for key in (*ANSWER_LOSS_CURVES, "answer_placed_share"):
                values = e.get(key) or []
                check(isinstance(values, list) and all(v is None or num(v) for v in values), w,
                      f"{key!r} should be a list of numbers or nulls")
            spread = e.get("seed_ci95", {})
            check(isinstance(spread, dict) and all(num(v) for v in spread.values()), w,
                  "'seed_ci95' should map names to non-negative numbers")
            for key, ci_key in ANSWER_LOSS_CURVES.items():
                loss = e.get(key) or []
                loss_ci = e.get(ci_key) or [None] * len(loss)
                check(isinstance(loss_ci, list) and len(loss_ci) == len(loss)
                      and all(v is None or num(v) for v in loss_ci),
                      w, f"{ci_key!r} should be a list of {len(loss)} non-negative numbers or nulls")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Compare two models measured over seeds (each difference with its "
                                "own 95% CI, Welch's t), or rebuild a run's report.html.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="A against B on every eval task and number both have")
    c.add_argument("a", help="a run folder or eval.json, with :LABEL to pick a model (default: its trained model)")
    c.add_argument("b", help="the same for the model to compare against, e.g. runs/<run>:base")
    c.add_argument("--turns", type=runfolder.number(int, 1), nargs="+", help="success at these turns "
                   "(default: 1, 2, 4 and the last)")
    h = sub.add_parser("html", help="write RUN/report.html again (a run of sml.py or a folder of evaluate.py)")
    h.add_argument("run", help="the run folder")
    args = p.parse_args(argv)
    if args.command == "html":
        print(f"wrote {rebuild_html(args.run)}")
    else:
        print(compare(args.a, args.b, args.turns), end="")


if __name__ == "__main__":
    try:
        main()
    except runfolder.UserError as e:
        sys.exit(f"error: {e}")
