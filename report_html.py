"""report.html: a run as one page, readable offline in any browser (§5-6, and the training of §4.3).

report.py writes it beside results.md whenever it writes results.md, from the same eval.json and from what
else the run folder holds:
  * Fig. 1-style success by turn and Fig. 3's loss on the correct answer, each with its 95% CI band;
  * results.md's tables (Table 1, behaviour, against the base, ...): the same text, as HTML tables;
  * the training curves of every metrics.jsonl: reward, success by turn N, feedback uptake, flat groups
    (zero-variance groups), entropy, and loss;
  * a few dialogues per model, token by token (dialogues/<label>-<task>-tokens.jsonl, which evaluate.py writes),
    each token coloured by its role and by whether it is in the loss mask: only the student's tokens train.
The plots are inline SVG drawn here (no matplotlib needed), the style is inline, and there is no script: the
page loads nothing from outside. It is also well-formed XML, which the tests parse it as.

    python report.py html runs/<run>          # rebuild it for an existing run

Not in the paper: a view of its figures and of a run's training, for a person.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
# The training curves, by the key of metrics.jsonl ("solved_by_turn_N" is found per file: N is the training's)
TRAINING = [("reward", "reward (Eq. 2: γ^(t-1) at the first correct turn t)"),
            ("solved_by_turn_N", "success by turn N"),
            ("feedback_uptake", "feedback uptake (next answer where the reply pointed)"),
            ("zero_variance_groups", "flat groups (zero-variance: advantage 0)"),
            ("entropy", "entropy of the student's tokens (nats)"),
            ("loss", "loss (GRPO: the policy loss with its KL term; SFT: cross-entropy on the student's tokens)")]
SMOOTH = 10            # the training curves' running mean, over this many steps
MAX_TOKENS = 1500      # tokens shown per dialogue; the rest is counted
DIALOGUES_SHOWN = 2    # per model


def page(out: Path, results: dict, markdown: str, n_turns_train: int | None) -> str:
    """The whole page. `markdown` is results.md's text, written with the names of every figure (report.py);
    each figure's image line becomes its SVG here."""
    out = Path(out)
    figures = {f"success_by_turn_{task}.png": success_figure(results, task, n_turns_train)
               for task in {t for r in results.values() for t in r} if not task.endswith("-full")}
    figures["answer_loss.png"] = answer_loss_figure(results)
    config = _read_json(out / "config.json")
    title = f"SML run: {out.resolve().name}"
    body = [f"<h1>{_e(title)}</h1>", _config_line(config),
            '<p class="toc"><a href="#evaluation">Evaluation</a> · <a href="#training">Training</a> · '
            '<a href="#dialogues">Dialogues</a></p>',
            '<section id="evaluation">', markdown_to_html(markdown, figures), "</section>",
            '<section id="training">', training_section(out), "</section>",
            '<section id="dialogues">', dialogues_section(out, results), "</section>"]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />'
            '<meta name="viewport" content="width=device-width, initial-scale=1" />'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n")


# ---------------------------------------------------------------------------------------------
# The figures: Fig. 1's success by turn, Fig. 3's loss on the answer, the training curves.
# ---------------------------------------------------------------------------------------------

def success_figure(results: dict, task: str, n_turns_train: int | None) -> str:
    """Fig. 1-style: each model's success by turn on one eval task, with its 95% CI band over seeds."""
    series = []
    for label, by_task in results.items():
        if task in by_task:
            e = by_task[task]
            series.append(_series(label, e["success_at_turn"], e.get("ci95")))
    return figure(chart(series, xlabel="turn t", ylabel="solved by turn t", ylim=(0, 1), integer_x=True,
                        marker=n_turns_train and (n_turns_train, f"training N = {n_turns_train}")),
                  series, f"Success by turn on {task} (mean ± 95% CI over seeds)")


def answer_loss_figure(results: dict) -> str | None:
    """Fig. 3: the loss on the correct answer after each teacher turn, over every context (solid) and after a
    message that placed the answer (dashed), each with its CI over training seeds where there is one."""
    series = []
    for label, by_task in results.items():
        for task, e in by_task.items():
            if e.get("answer_loss_by_turn"):
                colour = COLOURS[len({s["colour"] for s in series}) % len(COLOURS)]
                series.append(_series(f"{label} ({task})", e["answer_loss_by_turn"], e.get("answer_loss_ci95"),
                                      colour=colour))
                if e.get("answer_loss_placed"):
                    series.append(_series(f"{label} ({task}), placed", e["answer_loss_placed"],
                                          e.get("answer_loss_placed_ci95"), dashed=True, colour=colour))
    if not series:
        return None
    return figure(chart(series, xlabel="teacher turn", ylabel="nats per answer token", integer_x=True), series,
                  "Loss on the correct answer after each teacher turn (Fig. 3)")


def _series(name, values, ci=None, dashed=False, colour=None) -> dict:
    points = [(t, v) for t, v in enumerate(values, start=1)]
    band = [(t, v - c, v + c) for t, (v, c) in enumerate(zip(values, ci or []), start=1)
            if v is not None and c is not None]
    return {"name": name, "points": points, "band": band, "dashed": dashed, "colour": colour}


def training_section(out: Path) -> str:
    """One chart per training number, one line per metrics.jsonl (a seed, or a stage of it): each step faint,
    its running mean over SMOOTH steps solid."""
    files = sorted(out.glob("seed-*/metrics.jsonl")) + sorted(out.glob("seed-*/stage-*/metrics.jsonl"))
    parts = ['<h2>Training</h2>']
    if not files:
        return parts[0] + "<p>This folder holds no metrics.jsonl: no model was trained here.</p>"
    runs, damaged = [], 0
    for f in files:
        rows, bad = _read_jsonl(f)
        damaged += bad
        runs.append((str(f.parent.relative_to(out)), rows))
    parts.append(f"<p>One line per optimiser step, from {', '.join(_e(str(f.relative_to(out))) for f in files)}: "
                 f"each step faint, the running mean over {SMOOTH} steps solid."
                 + (f" {damaged} unreadable lines were left out." if damaged else "") + "</p>")
    charts = []
    for key, caption in TRAINING:
        series = []
        for i, (name, rows) in enumerate(runs):
            k = _solved_key(rows) if key == "solved_by_turn_N" else key
            points = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float)) and "step" in r
                      and math.isfinite(r[k])]
            if len(points) > 0:
                colour = COLOURS[i % len(COLOURS)]
                series.append({"name": name, "points": points, "faint": True, "colour": colour})
                series.append({"name": f"{name}, mean of {SMOOTH}", "points": _running_mean(points),
                               "colour": colour})
                caption = caption.replace("by turn N", f"by turn {k.rsplit('_', 1)[-1]}")
        if series:
            charts.append(figure(chart(series, xlabel="step", ylabel=key.replace("_", " ").removesuffix(" N"),
                                       width=360, height=230),
                                 [s for s in series if not s.get("faint")], caption))
    return "\n".join(parts) + '<div class="charts">' + "".join(charts) + "</div>"


def _solved_key(rows: list[dict]) -> str:
    keys = {k for r in rows for k in r if k.startswith("solved_by_turn_")}
    return max(keys, key=lambda k: int(k.rsplit("_", 1)[-1])) if keys else "solved_by_turn_N"


def _running_mean(points):
    return [(x, sum(y for _, y in points[max(0, i + 1 - SMOOTH):i + 1]) / min(i + 1, SMOOTH))
            for i, (x, _) in enumerate(points)]


def figure(svg: str, series: list[dict], caption: str) -> str:
    """An SVG chart, its legend and its caption."""
    legend = "".join(f'<span class="key"><svg width="22" height="10"><line x1="0" y1="5" x2="22" y2="5" '
                     f'stroke="{s["colour"]}" stroke-width="2.5"{_dash(s)} /></svg>{_e(s["name"])}</span>'
                     for s in series)
    return f'<figure>{svg}<figcaption>{_e(caption)}<br />{legend}</figcaption></figure>'


def chart(series: list[dict], *, xlabel: str, ylabel: str, ylim=None, integer_x=False, marker=None,
          width: int = 520, height: int = 300) -> str:
    """A line chart as SVG. Each series: {"name", "points": [(x, y or None)], "band": [(x, lo, hi)], "dashed",
    "faint", "colour"}; a None breaks the line. `marker`: (x, label), a dashed vertical line."""
    for i, s in enumerate(series):
        s["colour"] = s.get("colour") or COLOURS[i % len(COLOURS)]
    xs = [x for s in series for x, y in s["points"] if y is not None]
    ys = [y for s in series for _, y in s["points"] if y is not None]
    ys += [v for s in series for _, lo, hi in s.get("band") or [] for v in (lo, hi)]
    if not xs:
        return "<p>(no values)</p>"
    x0, x1 = min(xs), max(xs)
    if marker and marker[0]:
        x1 = max(x1, marker[0])
    y0, y1 = ylim or (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    L, R, T, B = 56, 12, 12, 40                          # margins: the axes' labels sit in them
    px = lambda x: L + (x - x0) / (x1 - x0) * (width - L - R)
    py = lambda y: T + (y1 - min(max(y, y0), y1)) / (y1 - y0) * (height - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" class="chart">']
    xticks = range(int(x0), int(x1) + 1, max(1, math.ceil((x1 - x0) / 10))) if integer_x else _ticks(x0, x1)
    for x in xticks:
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{height - B}" class="grid" />'
                   f'<text x="{px(x):.1f}" y="{height - B + 15}" text-anchor="middle">{_fmt(x)}</text>')
    for y in _ticks(y0, y1):
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{width - R}" y2="{py(y):.1f}" class="grid" />'
                   f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" class="frame" />')
    out.append(f'<text x="{(L + width - R) / 2:.1f}" y="{height - 6}" text-anchor="middle">{_e(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(T + height - B) / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'{_e(ylabel)}</text>')
    if marker and marker[0]:
        out.append(f'<line x1="{px(marker[0]):.1f}" y1="{T}" x2="{px(marker[0]):.1f}" y2="{height - B}" '
                   f'class="marker" /><text x="{px(marker[0]) - 4:.1f}" y="{T + 12}" text-anchor="end" '
                   f'class="small">{_e(marker[1])}</text>')
    for s in series:
        if s.get("band"):          # the 95% CI: the band between lo and hi, the line through the means
            edge = [(px(x), py(hi)) for x, _, hi in s["band"]] + [(px(x), py(lo)) for x, lo, _ in s["band"][::-1]]
            out.append(f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in edge)}" fill="{s["colour"]}" '
                       'fill-opacity="0.15" stroke="none" class="ci" />')
    for s in series:
        d, pen = [], "M"
        for x, y in s["points"]:
            if y is None:
                pen = "M"
                continue
            d.append(f"{pen}{px(x):.1f},{py(y):.1f}")
            pen = "L"
        width_ = 1 if s.get("faint") else 2
        opacity = ' stroke-opacity="0.3"' if s.get("faint") else ""
        out.append(f'<path d="{" ".join(d)}" fill="none" stroke="{s["colour"]}" stroke-width="{width_}"'
                   f'{opacity}{_dash(s)}><title>{_e(s["name"])}</title></path>')
        if len(s["points"]) <= 12 and not s.get("faint"):        # few points: mark each
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s["colour"]}" />'
                    for x, y in s["points"] if y is not None]
    return "".join(out) + "</svg>"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round numbers between lo and hi (1, 2 or 5 times a power of ten apart)."""
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 and abs(v) >= 1 or v == 0 else f"{v:.3g}"


def _dash(s: dict) -> str:
    return ' stroke-dasharray="6 4"' if s.get("dashed") else ""


# ---------------------------------------------------------------------------------------------
# The tables: results.md's markdown, as HTML.
# ---------------------------------------------------------------------------------------------

def markdown_to_html(markdown: str, figures: dict[str, str | None]) -> str:
    """The little markdown results.md uses: headings, paragraphs, tables, and image lines, which become the
    figure of that name."""
    parts, table = [], []

    def flush():
        if table:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table
                    if not set(line.replace("|", "").strip()) <= set("-: ")]
            head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
            table.clear()
    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            parts.append(f"<h{level + 1}>{_e(line[level:].strip())}</h{level + 1}>")
        elif line.startswith("![") and line.endswith(")"):
            svg = figures.get(line[line.index("](") + 2:-1])
            parts.append(svg or "")
        elif line.strip():
            parts.append(f"<p>{_e(line)}</p>")
    flush()
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The dialogues, token by token.
# ---------------------------------------------------------------------------------------------

def dialogues_section(out: Path, results: dict) -> str:
    """The first dialogues of each model on the first fully specified task, each token coloured by role and
    loss mask; a run whose evaluation saved no token view shows its messages instead."""
    tasks = sorted({t for r in results.values() for t in r}, key=lambda t: ("-" in t, t))
    if not tasks:
        return ""
    task = tasks[0]
    parts = [f"<h2>Dialogues on {_e(task)}, token by token</h2>",
             '<p class="legend">Each box is one token of the training sequence. <span class="tok m1 student">'
             'student</span> tokens are in the loss mask (trained on), its end-of-turn token included; '
             '<span class="tok m0 teacher">teacher</span> tokens, the problem, the replies and the template\'s role '
             'headers, are not. The same problems for every model (the first of the evaluation, seed 0).</p>']
    for label in results:
        rows, _ = _read_jsonl(_dialogue_file(out, label, task, "tokens"))
        messages = not rows
        if messages:      # an older run: its messages, with no token view
            rows, _ = _read_jsonl(_dialogue_file(out, label, task, "seed0"))
        if not rows:
            continue
        parts.append(f"<h3>{_e(label)}</h3>")
        if messages:
            parts.append("<p>This evaluation saved no token view (dialogues/*-tokens.jsonl); its messages:</p>")
        for row in rows[:DIALOGUES_SHOWN]:
            if not isinstance(row, dict):
                continue
            outcome = f"solved at turn {row['success_turn']}" if row.get("success_turn") else "unsolved"
            parts.append(f'<div class="dialogue"><div class="head">{_e(str(row.get("problem_id")))} · gold '
                         f'{_e(str(row.get("gold")))} · {outcome} · {row.get("turns")} student turns</div>')
            parts.append(_tokens_html(row["tokens"]) if not messages else _messages_html(row.get("messages", [])))
            parts.append("</div>")
    return "\n".join(parts)


def _dialogue_file(out: Path, label: str, task: str, kind: str) -> Path:
    """dialogues/<label>-<task>-<kind>.jsonl; a trained model's label in eval.json ("mt-rl") is its first
    training seed's in the file names ("mt-rl-seed0")."""
    folder = out / "dialogues"
    named = re.compile(rf"{re.escape(label)}-seed(\d+)-{re.escape(task)}-{kind}\.jsonl")
    seeds = sorted((int(m.group(1)), f) for f in folder.glob(f"{label}-seed*-{task}-{kind}.jsonl")
                   if (m := named.fullmatch(f.name)))
    return folder / f"{label}-{task}-{kind}.jsonl" if not seeds or (folder / f"{label}-{task}-{kind}.jsonl").exists() \
        else seeds[0][1]


def _tokens_html(tokens: list) -> str:
    """One box per token: its role (text colour, and a label where a segment starts) and its mask value (the
    background). A newline token shows as ↵ and breaks the line."""
    spans, role_before = [], None
    for piece, role, mask in tokens[:MAX_TOKENS]:
        if role != role_before:          # a new segment; each teacher turn starts a line
            spans.append(("<br />" if role_before and role == "teacher" else "")
                         + f'<span class="role {role}">{role}</span>')
            role_before = role
        text = "↵" if piece == "\n" else piece
        spans.append(f'<span class="tok m{int(mask)} {role}" title="{role}, mask {int(mask)}">{_e(text)}</span>'
                     + ("<br />" if "\n" in piece else ""))
    more = len(tokens) - MAX_TOKENS
    return '<div class="tokens">' + "".join(spans) + (f" … {more} more tokens" if more > 0 else "") + "</div>"


def _messages_html(messages: list[dict]) -> str:
    return "".join(f'<p class="message {m.get("role")}"><b>{_e(str(m.get("role")))} {m.get("turn")}</b> '
                   f'{_e(str(m.get("text")))}</p>' for m in messages if isinstance(m, dict))


# ---------------------------------------------------------------------------------------------
# Reading the run folder: whatever is damaged is left out, not fatal.
# ---------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _read_jsonl(path: Path) -> tuple[list, int]:
    """(rows, how many lines could not be read); no file: ([], 0)."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return [], 0
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows, len(lines) - len(rows)


def _config_line(config: dict) -> str:
    keys = ("task", "method", "model", "seeds", "problems", "turns", "eval_turns", "group_size", "eval_problems")
    shown = [f"{k.replace('_', ' ')} {config[k]}" for k in keys if k in config]
    return f'<p class="config">{_e(" · ".join(shown))}</p>' if shown else ""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1240px; margin: 24px auto;
  padding: 0 16px; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
h3 { margin-bottom: 0.3em; }
.config, .toc { color: #57606a; margin: 0.2em 0; }
a { color: #0969da; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.8em; }
th, td { border: 1px solid #d0d7de; padding: 2px 6px; text-align: left; white-space: nowrap; }
.scroll { overflow-x: auto; }
th { background: #f6f8fa; } tbody tr:nth-child(even) { background: #fafbfc; }
figure { display: inline-block; margin: 8px 12px 8px 0; vertical-align: top; max-width: 520px; }
.charts figure { max-width: 360px; }
figcaption { font-size: 0.85em; color: #57606a; }
.key { display: inline-block; margin-right: 12px; white-space: nowrap; } .key svg { margin-right: 4px; }
.chart { font-size: 11px; fill: #1f2328; background: #fff; }
.chart .grid { stroke: #eaeef2; } .chart .frame { fill: none; stroke: #8c959f; }
.chart .marker { stroke: #57606a; stroke-dasharray: 4 3; } .chart .small { font-size: 10px; fill: #57606a; }
.dialogue { border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; }
.dialogue .head { background: #f6f8fa; padding: 4px 8px; font-size: 0.85em; color: #57606a; }
.tokens { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px;
  padding: 6px 8px; line-height: 1.9; }
.tok { display: inline-block; white-space: pre; border: 1px solid #d0d7de; border-radius: 2px; padding: 0 1px;
  margin: 1px 1px 1px 0; line-height: 1.35; }
.tok.m1 { background: #fde68a; border-color: #d4a72c; }
.tok.m0 { background: #f6f8fa; }
.tok.teacher { color: #0550ae; } .tok.student { color: #1f2328; font-weight: 600; }
.role { font-family: system-ui, sans-serif; font-size: 10px; text-transform: uppercase; color: #fff;
  border-radius: 3px; padding: 1px 4px; margin: 0 4px 0 6px; }
.role.teacher { background: #0550ae; } .role.student { background: #9a6700; }
.legend .tok { font-family: ui-monospace, monospace; }
.message { margin: 4px 8px; font-family: ui-monospace, monospace; font-size: 13px; }
.message.teacher { color: #0550ae; }
"""
