"""report.html: it parses (as XML, stricter than a browser), it holds Fig. 1's and Fig. 3's curves with their CI
bands, the training curves, results.md's tables and the dialogues token by token with the loss mask's colours, it
loads nothing from outside, and `report.py html RUN` rebuilds it; a damaged eval.json is one sentence."""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import dialogue
import report
import tasks
from infra import runfolder

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
TURNS = ["47 + 5 = \\boxed{52}", "52 is 3 too high.", "52 - 3 = \\boxed{49}"]


def entry(curve, ci=None, **extra):
    return {"n_problems": 4, "n_turns": len(curve), "success_at_turn": curve, "ci95": ci, **extra}


RESULTS = {
    "base": {"math": entry([0.1, 0.3, 0.4], [0.05, 0.05, 0.1], answer_loss_by_turn=[2.0, 1.5, 1.0],
                           answer_loss_placed=[None, 0.5, 0.4], answer_loss_not_placed=[2.0, 2.5, 1.6],
                           answer_placed_share=[0.0, 0.5, 0.6], feedback_uptake=0.1),
             "math-sharded": entry([0.0, 0.1, 0.2], [0.0, 0.05, 0.05]), "math-full": entry([0.9], [0.05])},
    "mt-rl": {"math": entry([0.1, 0.6, 0.8], [0.02, 0.1, 0.1], answer_loss_by_turn=[2.1, 0.8, 0.5],
                            feedback_uptake=0.7),
              "math-sharded": entry([0.0, 0.3, 0.4], [0.0, 0.1, 0.1]), "math-full": entry([0.9], [0.04])},
}
METRICS = [{"step": s, "reward": 0.2 + 0.05 * s, "solved_by_turn_4": 0.3 + 0.05 * s, "feedback_uptake": 0.1 * s,
            "zero_variance_groups": 0.5 - 0.04 * s, "entropy": 0.12 - 0.01 * s, "loss": -0.02, "problems": ["p"]}
           for s in range(1, 7)]


def dialogue_of(tok) -> dialogue.Dialogue:
    """A two-turn dialogue segmented as dialogue.rollout segments one: the student uses the reply."""
    chat = dialogue.ChatFormat(tok)
    d = dialogue.Dialogue(problem=tasks.Problem(id="tiny-47+5-3", task="math", statement="What is 47 + 5 - 3?",
                                                answer="49"), success_turn=2)
    d.segments.append(("teacher", chat.opening(d.problem.statement)))
    d.messages.append({"role": "teacher", "turn": 1, "text": d.problem.statement})
    for i, text in enumerate(TURNS):
        if i % 2 == 0:
            d.segments.append(("student", chat.encode(text) + [chat.end_of_turn]))
            d.messages.append({"role": "student", "turn": i // 2 + 1, "text": text, "correct": i == 2})
        else:
            d.segments.append(("teacher", chat.teacher_turn(text)))
            d.messages.append({"role": "teacher", "turn": i // 2 + 2, "text": text, "leak": False})
    return d


@pytest.fixture
def run(tmp_path, tok, monkeypatch):
    """A run folder as sml.py leaves it (token views named as evaluate.py names them), its page written by
    report.write_report without matplotlib: the page's figures must not need it."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    d = dialogue_of(tok)
    (tmp_path / "seed-0").mkdir()
    (tmp_path / "seed-0" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in METRICS) + '{"step": 7, "rew\n')
    (tmp_path / "dialogues").mkdir()
    for label in ("base", "mt-rl-seed0"):      # a trained model's files carry its training seed
        runfolder.write_jsonl(tmp_path / "dialogues" / f"{label}-math-tokens.jsonl",
                              [{**d.to_json(), "tokens": d.tokens(tok)}])
    runfolder.write_json(tmp_path / "config.json", {"task": "math", "method": "mt-rl", "turns": 2})
    report.write_report(tmp_path, RESULTS, n_turns_train=2)
    return tmp_path, d


def parse(path: Path) -> ET.Element:
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(text.split("\n", 1)[1])          # raises on a tag left open or a bad entity


def figure(page: ET.Element, caption: str) -> ET.Element:
    [found] = [f for f in page.iter("figure") if "".join(f.find("figcaption").itertext()).startswith(caption)]
    return found


def test_the_page_holds_the_curves_with_their_cis(run):
    page = parse(run[0] / "report.html")
    fig1 = figure(page, "Success by turn on math (")
    paths = fig1.findall(f".//{SVG}path")
    assert [p.find(f"{SVG}title").text for p in paths] == ["base", "mt-rl"]
    assert len(fig1.findall(f".//{SVG}polygon")) == 2                                  # a CI band each
    assert all(len(p.get("d").split()) == 3 for p in paths)                           # a point per turn
    assert any(t.text == "training N = 2" for t in fig1.iter(f"{SVG}text"))
    figure(page, "Success by turn on math-sharded")
    fig3 = figure(page, "Loss on the correct answer")
    assert [p.find(f"{SVG}title").text for p in fig3.findall(f".//{SVG}path")] == \
        ["base (math)", "base (math), placed", "mt-rl (math)"]
    for caption in ("reward", "success by turn 4", "feedback uptake", "flat groups", "entropy", "loss"):
        lines = figure(page, caption).findall(f".//{SVG}path")
        assert [p.find(f"{SVG}title").text for p in lines] == ["seed-0", "seed-0, mean of 10"]
        assert len(lines[0].get("d").split()) == len(METRICS)                       # every step
    assert "1 unreadable lines were left out" in "".join(page.itertext())


def test_the_page_holds_the_tables(run):
    page = parse(run[0] / "report.html")
    tables = [(tuple(th.text for th in t.iter("th")), [[td.text for td in tr.iter("td")] for tr in t.iter("tr")][1:])
              for t in page.iter("table")]
    assert tables[0] == (("model", "1", "2", "3"), [["base", "0.100 ± 0.050", "0.300 ± 0.050", "0.400 ± 0.100"],
                                                    ["mt-rl", "0.100 ± 0.020", "0.600 ± 0.100", "0.800 ± 0.100"]])
    assert dict(tables)[("domain", "setting", "base", "mt-rl")][0] == ["Math", "Full", "90.0 ± 5.0", "90.0 ± 4.0"]
    behaviour = next(rows for head, rows in tables if "feedback uptake" in head)
    assert ["70.0%" in row for row in behaviour if row[:2] == ["mt-rl", "math"]] == [True]


def test_each_token_is_coloured_by_role_and_loss_mask(run):
    out, d = run
    page = parse(out / "report.html")
    for h3 in ("base", "mt-rl"):
        assert h3 in [h.text for h in page.iter("h3")]
    boxes = [s for s in page.iter("span") if "tok" in s.get("class", "").split()]
    per_model = len(d.ids)
    assert len(boxes) == 2 * per_model + 2                  # two models' dialogues, and the legend's two
    boxes = boxes[2:per_model + 2]
    assert [int("m1" in b.get("class")) for b in boxes] == d.student_mask
    assert [b.get("class").split()[2] for b in boxes] == [role for role, seg in d.segments for _ in seg]
    trained = "".join(b.text for b in boxes if "m1" in b.get("class"))
    assert trained == "".join(text + "<|end|>" for text in TURNS[0::2])       # its turns, each with its end
    assert "<|assistant|>" in [b.text for b in boxes if "m0" in b.get("class")]    # role headers don't train


def test_the_page_loads_nothing_from_outside(run):
    text = (run[0] / "report.html").read_text()
    page = parse(run[0] / "report.html")
    tags = {e.tag.split("}")[-1] for e in page.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source", "image"}
    for e in page.iter():
        for name, value in e.attrib.items():
            if name.split("}")[-1] in ("src", "href", "srcset", "data", "action"):
                assert value.startswith("#"), (e.tag, name, value)
    assert "url(" not in text and "@import" not in text and "//" not in page.find("head/style").text


def test_report_html_rebuilds_the_page_of_a_run(run, capsys):
    out, _ = run
    before = (out / "report.html").read_text()
    (out / "report.html").unlink()
    report.main(["html", str(out)])
    assert (out / "report.html").read_text() == before and capsys.readouterr().out == f"wrote {out / 'report.html'}\n"


def test_an_evaluation_without_token_views_shows_its_messages(run):
    out, d = run
    for f in (out / "dialogues").glob("*-tokens.jsonl"):
        f.unlink()
    runfolder.write_jsonl(out / "dialogues" / "base-math-seed0.jsonl", [d.to_json()])
    report.main(["html", str(out)])
    page = parse(out / "report.html")
    assert "This evaluation saved no token view" in "".join(page.itertext())
    assert [p.find("b").text for p in page.iter("p") if "message" in p.get("class", "")] == \
        ["teacher 1", "student 1", "teacher 2", "student 2"]


def test_a_damaged_eval_json_is_one_sentence(run):
    out, _ = run
    (out / "eval.json").write_text('{"base": {"math": {"n_problems": 4,')
    with pytest.raises(runfolder.UserError, match=r"eval.json is damaged: it is not JSON \(line 1, column 36"):
        report.main(["html", str(out)])
    r = subprocess.run([sys.executable, "report.py", "compare", str(out), f"{out}:base"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {out / 'eval.json'} is damaged: it is not JSON (line 1, "
                                             "column 36: Expecting property name enclosed in double quotes); run "
                                             "the evaluation again (sml.py --resume --out RUN, or evaluate.py) or "
                                             "restore the file."]
