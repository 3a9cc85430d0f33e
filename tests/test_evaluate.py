"""evaluate.py: curves and CIs by hand, sharded premature answers, the answer loss's mask, the reports and
their schema, and the standalone CLI (turn types: test_turntypes.py)."""
import json
import os
import statistics
import subprocess
import sys

import pytest
import torch

import dialogue
import answerloss
import evaluate
import report
from infra import runfolder
from infra import stats
import tasks
from conftest import ROOT, random_llama
from dialogue import ChatFormat, Dialogue


def _d(success_turn=None, truncated=False):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85")
    return Dialogue(problem=p, success_turn=success_turn, truncated=truncated)


def test_success_curve_by_hand():
    ds = [_d(1), _d(3), _d(None), _d(None, truncated=True), _d(2, truncated=True), _d(4)]
    curve = evaluate.success_curve(ds, 5)
    assert curve == pytest.approx([1 / 6, 1 / 6, 2 / 6, 3 / 6, 3 / 6])   # truncated dialogues count as unsolved
    assert all(a <= b for a, b in zip(curve, curve[1:]))
    assert evaluate.success_curve([_d(7)], 3) == [0.0, 0.0, 0.0]         # solved after the horizon


def test_combine_over_training_seeds():
    e = lambda s, q: {"n_problems": 4, "n_turns": 2, "success_at_turn": s, "ci95": None, "per_seed": [s],
                      "questions_per_conversation": q, "turn_types": {"answer_attempt": q},
                      "answer_loss_by_turn": [2 * q, None], "answer_loss_placed": [None, q],
                      "answer_loss_not_placed": [2 * q, 3 * q], "answer_placed_share": [0.0, 0.5]}
    c = evaluate.combine([e([0.5, 0.6], 0.2), e([0.6, 0.7], 0.4), e([0.7, 0.8], 0.6)])
    assert c["success_at_turn"] == pytest.approx([0.6, 0.7])
    assert c["ci95"] == pytest.approx([0.2484, 0.2484], abs=1e-4)
    assert c["per_seed"] == [[0.5, 0.6], [0.6, 0.7], [0.7, 0.8]] and c["training_seeds"] == 3
    assert c["questions_per_conversation"] == pytest.approx(0.4)
    assert c["turn_types"]["answer_attempt"] == pytest.approx(0.4)
    # Fig. 3's loss: the mean over seeds and its CI, as for the curves (0.4, 0.8, 1.2: sd 0.4, t 4.303)
    assert c["answer_loss_by_turn"] == pytest.approx([0.8, None])
    assert c["answer_loss_ci95"][0] == pytest.approx(4.303 * 0.4 / 3 ** 0.5, abs=1e-3)
    assert c["answer_loss_ci95"][1] is None and c["answer_loss_per_seed"] == [[0.4, None], [0.8, None], [1.2, None]]
    assert c["seed_ci95"]["questions_per_conversation"] == pytest.approx(4.303 * 0.2 / 3 ** 0.5, abs=1e-3)
    # ... and so does each kind of context's; the share of placed contexts is the same for every seed
    assert c["answer_loss_placed"] == pytest.approx([None, 0.4]) and c["answer_loss_placed_ci95"][0] is None
    assert c["answer_loss_placed_ci95"][1] == pytest.approx(4.303 * 0.2 / 3 ** 0.5, abs=1e-3)
    assert c["answer_loss_not_placed"] == pytest.approx([0.8, 1.2]) and len(c["answer_loss_not_placed_per_seed"]) == 3
    assert c["answer_placed_share"] == [0.0, 0.5]
    report.validate_eval_json({"m": {"math": c}})
    md = report._markdown({"m": {"math": c}}, plots=None)
    assert "| m | math | 0.80 ± 0.99 | – |" in md and "| m | math | 0.40 ± 0.50 |" in md
    assert "Share of placed contexts by turn: 0.00, 0.50." in md
    assert "| m | math | placed | – | 0.40 ± 0.50 |" in md
    assert "| m | math | not placed | 0.80 ± 0.99 | 1.20 ± 1.49 |" in md
    with pytest.raises(ValueError, match="answer_loss_placed_ci95"):
        report.validate_eval_json({"m": {"math": {**c, "answer_loss_placed_ci95": [0.1]}}})
    with pytest.raises(ValueError, match="answer_loss_ci95"):
        report.validate_eval_json({"m": {"math": {**c, "answer_loss_ci95": [0.1]}}})


def _script(monkeypatch, tok, replies):
    """The student, scripted: the reply to a prompt depends on its opening shard and on the turn number."""
    chat = ChatFormat(tok)

    def fake_generate(model, prompts, max_new_tokens, **kw):
        outs = []
        for prompt in prompts:
            text = tok.decode(prompt)
            key = next(k for k in replies if k in text)
            reply = replies[key][text.count("<|assistant|>") - 1]
            outs.append(tok.encode(reply, add_special_tokens=False) + [chat.end_of_turn])
        return outs
    monkeypatch.setattr(dialogue, "generate", fake_generate)


def test_evaluate_sharded_counts_premature_answers(monkeypatch, tok):
    ann = tasks.Problem(id="ann", task="math", statement="Ann: 40 + 45?", answer="85", source="tiny",
                        shards=["Compute a sum for Ann.", "The first number is 40.", "The second number is 45."])
    bob = tasks.Problem(id="bob", task="math", statement="Bob: 12 + 30?", answer="42", source="tiny",
                        shards=["Compute a sum for Bob.", "The first number is 12.", "The second number is 30."])
    _script(monkeypatch, tok, {"Ann.": ["\\boxed{12}", "\\boxed{50}", "\\boxed{85}"],
                               "Bob.": ["What are the numbers?", "\\boxed{13}", "\\boxed{41}"]})
    entry, by_seed = evaluate.evaluate(None, tok, [ann, bob], dialogue.ShardTeacher(instructions=False), n_turns=10,
                                       seeds=(0, 1),
                                       sharded=True, progress=False)
    for d in by_seed[0]:   # one shard per turn, in order, then the dialogue ends
        assert [m["text"] for m in d.messages if m["role"] == "teacher"] == d.problem.shards
        assert d.turns == 3
    assert entry["success_at_turn"] == [0.0, 0.0, 0.5] + [0.5] * 7
    assert entry["ci95"] == [0.0] * 10 and entry["per_seed"] == [entry["success_at_turn"]] * 2
    # answer attempts: Ann at turns 1, 2, 3 and Bob at turns 2, 3; before the last shard: Ann 1, 2 and Bob 2
    assert entry["premature_answer_rate"] == pytest.approx(3 / 5)
    assert entry["premature_answers_per_conversation"] == pytest.approx(3 / 2)
    assert entry["questions_per_conversation"] == pytest.approx(1 / 2)
    assert entry["turn_types"]["answer_attempt"] == pytest.approx(5 / 6)
    assert entry["turn_types"]["clarification"] == pytest.approx(1 / 6)
    assert entry["teacher_leak_rate"] == 0.0 and entry["truncated_rate"] == 0.0
    assert entry["decoding"] == "sampled, temperature 1.0, top_p 1.0" and entry["seeds"] == [0, 1]
    assert by_seed[0][1].messages[1]["turn_type"] == "clarification"
    # the behaviour's spread over the sampling seeds: both seeds behaved alike here
    assert entry["seed_ci95"]["premature_answer_rate"] == 0.0 and entry["seed_ci95"]["turn_types.clarification"] == 0.0
    assert "success_when_not_asked" in entry["seed_ci95"]
    # had Bob answered instead of asking in seed 1: questions per conversation 0.5 and 0, t(1) = 12.706
    by_seed[1][1].messages[1]["turn_type"] = "answer_attempt"
    spread = evaluate.seed_ci95([evaluate.behaviour_stats(ds, sharded=True) for ds in by_seed])
    assert spread["questions_per_conversation"] == pytest.approx(12.706 * (0.5 / 2 ** 0.5) / 2 ** 0.5, abs=1e-3)
    assert "success_when_asked" not in spread                 # nobody asked in seed 1: no number, no CI
    report.validate_eval_json({"scripted": {"math-sharded": entry}})
    greedy, _ = evaluate.evaluate(None, tok, [ann], dialogue.ShardTeacher(instructions=False), n_turns=2,
                                  sampling=dialogue.Sampling(temperature=0), progress=False)
    assert greedy["decoding"] == "greedy" and greedy["ci95"] is None and "premature_answer_rate" not in greedy


def _two_turn_dialogue(chat, hint="Not quite. The last digit is 5.", second="\\boxed{75}", correct=False):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85")
    segs = [("teacher", chat.opening(p.statement)), ("student", chat.encode("\\boxed{84}") + [chat.end_of_turn]),
            ("teacher", chat.teacher_turn(hint)), ("student", chat.encode(second) + [chat.end_of_turn])]
    msgs = [{"role": "teacher"}, {"role": "student", "correct": False}, {"role": "teacher"},
            {"role": "student", "correct": correct}]
    return Dialogue(problem=p, segments=segs, messages=msgs)


def test_answer_loss_contexts_are_fixed_prefixes_and_the_mask_is_on_the_answer_itself(tok, model):
    chat = ChatFormat(tok)
    d = _two_turn_dialogue(chat)
    contexts = answerloss.reference_contexts([d], n_turns=10)
    assert [c.turn for c in contexts] == [1, 2]                      # one context per teacher turn
    for (t, context, problem, reply, placed), end in zip(contexts, [1, 3]):
        assert context == [i for _, seg in d.segments[:end] for i in seg] and problem is d.problem
        assert context[-1] == tok.convert_tokens_to_ids("<|assistant|>")
        assert reply == "\\boxed{85}"                                # no answer_form: the bare boxed answer
        assert placed is None                                        # no "placed" key: the kind is not known
    ids, mask = answerloss.answer_tokens(chat, "\\boxed{85}")
    assert ids == chat.encode("\\boxed{85}") and tok.decode([i for i, m in zip(ids, mask) if m]) == "85"
    step, step_mask = answerloss.answer_tokens(chat, "52 - 3 = \\boxed{49}")   # a worked step: all but box and spaces
    assert tok.decode([i for i, m in zip(step, step_mask) if m]).replace(" ", "") == "52-3=49"
    entry = answerloss.answer_loss(model, tok, contexts, n_turns=3)
    assert set(entry) == {"answer_loss_by_turn"}                     # no kinds: one curve
    losses = entry["answer_loss_by_turn"]
    assert losses[2] is None                                         # no context reaches teacher turn 3
    for (t, context, *_), got in zip(contexts, losses):              # by hand, from full logits
        full = context + ids
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)   # (T, V)
        answer = [len(context) + j for j, m in enumerate(mask) if m]  # positions of "8" and "5"
        manual = -sum(logp[k - 1, full[k]].item() for k in answer) / len(answer)
        assert got == pytest.approx(manual, abs=1e-4)
    # a different hint changes the loss after turn 2 only; batching and padding change nothing
    other = _two_turn_dialogue(chat, hint="The tens digit is 8.")
    both = answerloss.answer_loss(model, tok, answerloss.reference_contexts([d, other], 2), 2,
                                batch_size=4)["answer_loss_by_turn"]
    alone = answerloss.answer_loss(model, tok, answerloss.reference_contexts([other], 2), 2,
                                 batch_size=1)["answer_loss_by_turn"]
    assert alone[0] == pytest.approx(losses[0], abs=1e-5) and alone[1] != pytest.approx(losses[1], abs=1e-4)
    assert both == pytest.approx([losses[0], (losses[1] + alone[1]) / 2], abs=1e-5)
    # where the teacher's messages say whether they placed the answer, each kind is averaged on its own
    other.messages[2]["placed"] = True
    for dd in (d, other):
        dd.messages[0]["placed"] = False
    d.messages[2]["placed"] = False
    split = answerloss.answer_loss(model, tok, answerloss.reference_contexts([d, other], 2), 2, batch_size=3)
    assert split["answer_loss_by_turn"] == pytest.approx(both, abs=1e-5)
    assert split["answer_loss_placed"] == pytest.approx([None, alone[1]], abs=1e-5)      # other's hint only
    assert split["answer_loss_not_placed"] == pytest.approx([losses[0], losses[1]], abs=1e-5)
    assert split["answer_placed_share"] == [0.0, 0.5]
    # the answer must never be in a context: a dialogue contributes its prefixes up to its first correct turn
    solved = _two_turn_dialogue(chat, second="\\boxed{85}", correct=True)
    assert [c.turn for c in answerloss.reference_contexts([solved], 10)] == [1, 2]
    first_right = _two_turn_dialogue(chat)
    first_right.messages[1]["correct"] = True
    assert [c.turn for c in answerloss.reference_contexts([first_right], 10)] == [1]


def _entry(curve, ci=None, **extra):
    return {"n_problems": 4, "n_turns": len(curve), "success_at_turn": curve, "ci95": ci, **extra}


def _results():
    types = {k: 0.0 for k in report.TURN_TYPES} | {"answer_attempt": 0.75, "clarification": 0.25}
    return {
        "base": {"math": _entry([0.2, 0.3, 0.4], [0.05, 0.05, 0.1], turn_types=types, questions_per_conversation=0.5,
                                teacher_leak_rate=0.0, truncated_rate=0.1, answer_loss_by_turn=[2.0, 1.5, None],
                                answer_loss_placed=[None, 0.5, None], answer_loss_not_placed=[2.0, 3.5, None],
                                answer_placed_share=[0.0, 0.5, None]),
                 "math-sharded": _entry([0.1, 0.2, 0.25], premature_answer_rate=0.8, turn_types=types),
                 "math-full": _entry([0.6], [0.05])},
        "sml": {"math": _entry([0.3, 0.5, 0.6], [0.02, 0.03, 0.04]),
                "math-sharded": _entry([0.2, 0.3, 0.35], premature_answer_rate=0.4),
                "math-full": _entry([0.7], [0.03])},
    }


def test_write_report(tmp_path):
    results = _results()
    report.write_report(tmp_path, results, n_turns_train=2)
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved == results
    report.validate_eval_json(saved)
    md = (tmp_path / "results.md").read_text()
    assert "## math: success by turn" in md and "| model | 1 | 2 | 3 |" in md
    assert "| base | 0.200 ± 0.050 | 0.300 ± 0.050 | 0.400 ± 0.100 |" in md
    # Table 1 pairs the sharded problems with the same problems fully specified, not with the main set
    assert "| Math | Full | 60.0 ± 5.0 | 70.0 ± 3.0 |" in md and "| Math | Sharded | 25.0 | 35.0 |" in md
    assert "Turn types" in md and "questions / conversation" in md and "80.0%" in md
    assert "Loss on the correct answer" in md and "| base | math | placed | – | 0.50 | – |" in md
    assert not list(tmp_path.glob("*.tmp"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "Plots need matplotlib" in md
    else:
        for name in ["success_by_turn_math.png", "success_by_turn_math-sharded.png", "answer_loss.png"]:
            assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def _seeded(curves, uptakes, **extra):
    """An entry measured over len(curves) seeds, as evaluate.combine writes it."""
    return evaluate.combine([_entry(c, per_seed=[c], feedback_uptake=u, **extra) for c, u in zip(curves, uptakes)])


def test_seed_summary_and_differences():
    a = _seeded([[0.1, 0.5, 0.6], [0.2, 0.6, 0.8], [0.0, 0.7, 0.7]], [0.5, 0.6, 0.9])
    b = _seeded([[0.1, 0.2, 0.3], [0.1, 0.1, 0.3], [0.0, 0.2, 0.35]], [0.1, 0.2, 0.1])
    # a behaviour number's spread comes back from its mean and CI half-width; a turn's from per_seed
    assert report.seed_summary(a, "feedback_uptake") == pytest.approx((2 / 3, statistics.stdev([0.5, 0.6, 0.9]), 3))
    assert report.seed_summary(a, 2) == pytest.approx((0.6, 0.1, 3))
    assert report.seed_summary(a, 4) is None and report.seed_summary(_entry([0.5], per_seed=[[0.5]]), 1) is None
    rows = report.differences(a, b)
    assert [r[0] for r in rows] == ["success at turn 1", "success at turn 2", "success at turn 3", "feedback_uptake"]
    name, va, vb, diff, hw = rows[1]
    assert (va, vb, diff) == pytest.approx((0.6, 0.5 / 3, 0.6 - 0.5 / 3))
    assert hw == pytest.approx(stats.welch_ci((0.6, 0.1, 3), (0.5 / 3, statistics.stdev([0.2, 0.1, 0.2]), 3))[1])
    assert diff - hw > 0 and rows[0][3] - rows[0][4] < 0   # turn 2 apart, turn 1 not
    # a one-turn task: the later turns repeat the first and are left out
    full = report.differences(_seeded([[0.5] * 3, [0.6] * 3], [0.1, 0.2]), _seeded([[0.4] * 3, [0.4] * 3], [0.1, 0.1]))
    assert [r[0] for r in full] == ["success at turn 1", "feedback_uptake"]


def test_results_md_gives_each_difference_from_the_base(tmp_path):
    results = {"base": {"math": _seeded([[0.1, 0.2, 0.3], [0.1, 0.1, 0.3], [0.0, 0.2, 0.35]], [0.1, 0.2, 0.1])},
               "sml": {"math": _seeded([[0.1, 0.5, 0.6], [0.2, 0.6, 0.8], [0.0, 0.7, 0.7]], [0.5, 0.6, 0.9])}}
    report.write_report(tmp_path, results, n_turns_train=2)
    md = (tmp_path / "results.md").read_text()
    assert "## Against the base" in md
    assert "| sml | math | success at turn 1 | 0.100 | 0.067 | +0.033 |" in md
    rows = {line.split(" | ")[2]: line for line in md.splitlines() if line.startswith("| sml | math |")}
    assert rows["success at turn 1"].endswith("| – |") and rows["success at turn 2"].endswith("| clear |")
    report.write_report(tmp_path, {"sml": results["sml"]})
    assert "Against the base" not in (tmp_path / "results.md").read_text()


def test_compare_two_runs(tmp_path, capsys):
    sharded = lambda c: _seeded([[c[0]] * 3, [c[1]] * 3, [c[2]] * 3], [0.1, 0.2, 0.3])
    for run, label, curve in (("mt", "mt-rl", (0.29, 0.335, 0.22)), ("st", "st-rl", (0.075, 0.115, 0.125))):
        report.write_report(tmp_path / run, {"base": {"math-sharded": sharded((0.09, 0.06, 0.07))},
                                            label: {"math-sharded": sharded(curve)}})
    report.main(["compare", str(tmp_path / "mt"), str(tmp_path / "st")])
    out = capsys.readouterr().out
    assert "A = mt-rl" in out and "B = st-rl" in out
    # the two 95% CIs overlap (0.138 < 0.171); the difference's does not reach 0: by hand, se 0.0368, df 2.80, t 3.315
    assert "| math-sharded | success at turn 1 | 0.282 | 0.105 | +0.177 | [+0.055, +0.299] | clear |" in out
    report.main(["compare", str(tmp_path / "st" / "eval.json"), f"{tmp_path / 'st'}:base", "--turns", "1"])
    assert "B = base" in capsys.readouterr().out
    bad = {"nothing there": ([str(tmp_path / "none"), str(tmp_path / "st")], "no eval.json"),
           "no such model": ([f"{tmp_path / 'mt'}:sft", str(tmp_path / "st")], "no model 'sft'")}
    for args, message in bad.values():
        with pytest.raises(runfolder.UserError, match=message):
            report.main(["compare", *args])
    report.write_report(tmp_path / "two", {"a": {"math": _entry([0.1])}, "b": {"math": _entry([0.2])}})
    with pytest.raises(runfolder.UserError, match="name one as"):
        report.main(["compare", str(tmp_path / "two"), str(tmp_path / "st")])
    with pytest.raises(runfolder.UserError, match="share no eval task"):
        report.main(["compare", f"{tmp_path / 'two'}:a", str(tmp_path / "st")])
    with pytest.raises(runfolder.UserError, match="2 or more seeds"):
        report.main(["compare", f"{tmp_path / 'two'}:a", f"{tmp_path / 'two'}:b"])


def test_write_report_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib now raises ImportError
    report.write_report(tmp_path, _results())
    assert "Plots need matplotlib" in (tmp_path / "results.md").read_text()
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("bad,message", [
    ({}, "non-empty"),
    ({"m": {"math": {"success_at_turn": [0.1], "ci95": None}}}, "n_problems"),
    ({"m": {"math": {"n_problems": 3, "ci95": None}}}, "success_at_turn"),
    ({"m": {"math": {"n_problems": 3, "success_at_turn": [0.1]}}}, "ci95"),
    ({"m": {"math": _entry([0.3, 0.2])}}, "decreases from turn 1 to turn 2"),
    ({"m": {"math": _entry([0.3, 1.2])}}, r"\[0, 1\]"),
    ({"m": {"math": _entry([0.1, 0.2], [0.1])}}, "ci95"),
    ({"m": {"math": _entry([0.1, 0.2], n_turns=3)}}, "n_turns"),
    ({"m": {"math": _entry([0.1], per_seed=[[0.1, 0.2]])}}, "per_seed"),
    ({"m": {"math": _entry([0.1], truncated_rate=2.0)}}, "truncated_rate"),
    ({"m": []}, "non-empty object"),
])
def test_validate_eval_json_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        report.validate_eval_json(bad)


def test_cli_errors_are_one_sentence(tmp_path, capsys):
    with pytest.raises(tasks.DataError, match="No data file"):
        evaluate.main(["--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)])
    with pytest.raises(runfolder.UserError, match="scripted teacher"):
        evaluate.main(["--data", "hub", "--teacher", "scripted", "--out", str(tmp_path)])
    with pytest.raises(runfolder.UserError, match="--label"):
        evaluate.main(["--model", "a/final", "--model", "b/final", "--out", str(tmp_path)])


def test_cli_error_exits_with_one_line(tmp_path):
    missing = tmp_path / "lcb.jsonl"
    proc = subprocess.run([sys.executable, "evaluate.py", "--task", "code", "--data", str(missing), "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(missing) in lines[0]


def _run_cli(tmp_path, tok, model_name, *args):
    """evaluate.py in a subprocess on a random tiny model saved under tmp_path/model_name."""
    path = tmp_path / model_name
    random_llama(tok).save_pretrained(path)
    tok.save_pretrained(path)
    # one thread: on a busy machine, several threads per tiny matmul are much slower than one
    env = {**os.environ, "SML_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "evaluate.py", "--model", str(path), "--data", "tiny", *args,
                           "--out", str(tmp_path / "eval")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_transfer_to_the_tiny_code_task(tmp_path, tok):
    out = tmp_path / "eval"
    proc = _run_cli(tmp_path, tok, "math-trained", "--task", "code", "--trained-on", "math", "--problems", "3",
                    "--turns", "2", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "eval.json").read_text())
    assert set(results["math-trained"]) == {"code", "code-sharded", "code-full"}
    assert "| code | transfer | math-trained |" in (out / "results.md").read_text()
    first = json.loads((out / "dialogues" / "math-trained-code-seed0.jsonl").read_text().splitlines()[0])
    assert first["task"] == "code" and first["messages"][0]["text"].startswith("Write f(x) that returns x + ")


def test_cli_smoke(tmp_path, tok):
    out = tmp_path / "eval"
    proc = _run_cli(tmp_path, tok, "random-tiny", "--label", "rand", "--problems", "4", "--turns", "3",
                    "--seeds", "2", "--answer-loss")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "eval.json").read_text())
    report.validate_eval_json(results)
    assert set(results) == {"rand"} and set(results["rand"]) == {"math", "math-sharded", "math-full"}
    entry = results["rand"]["math"]
    assert entry["n_problems"] == 4 and len(entry["success_at_turn"]) == 3 and len(entry["ci95"]) == 3
    assert len(entry["answer_loss_by_turn"]) == 3 and entry["answer_loss_by_turn"][0] > 0
    assert "premature_answer_rate" in results["rand"]["math-sharded"]
    assert "## math: success by turn" in (out / "results.md").read_text()
    for task in ("math", "math-sharded"):
        for seed in (0, 1):
            rows = (out / "dialogues" / f"rand-{task}-seed{seed}.jsonl").read_text().splitlines()
            assert len(rows) == 4 and all("turn_type" in m for m in json.loads(rows[0])["messages"]
                                          if m["role"] == "student")
    # report.html's token view: the first seed's first dialogues, each token with its role and loss mask
    views = [json.loads(line) for line in (out / "dialogues" / "rand-math-tokens.jsonl").read_text().splitlines()]
    first = json.loads((out / "dialogues" / "rand-math-seed0.jsonl").read_text().splitlines()[0])
    assert len(views) == evaluate.TOKEN_VIEWS and views[0]["messages"] == first["messages"]
    for v in views:
        assert len(v["tokens"]) == v["n_tokens"] and sum(m for _, _, m in v["tokens"]) == v["n_student_tokens"]
        assert all(m == (role == "student") for _, role, m in v["tokens"])
    assert 'class="tok m1 student"' in (out / "report.html").read_text()


def test_standalone_evaluation_has_the_same_budget_as_the_recipes():
    """sml.py evaluates N = 10 turns with twice its training context; evaluate.py on its own must match,
    or 10-turn code dialogues (about 100 tokens a turn) run out of context by turn 5."""
    import sml
    for extra in ([], ["--model", "google/gemma-3-12b-it"]):
        data = [] if not extra else ["--data", "hub"]
        assert evaluate.parse_args(extra + data).max_dialogue_tokens == 2 * sml.parse_args(extra).max_dialogue_tokens


def test_full_and_sharded_rows_are_the_same_problems(monkeypatch, tok):
    """Table 1's Full column is the sharded problems fully specified (the benchmark's FULL setting: the whole
    problem in one turn), not the main evaluation set."""
    fixture = str(ROOT / "tests" / "fixtures")
    suites = evaluate.load_eval_tasks("math", fixture + "/omni_math.jsonl", None, fixture + "/lost_in_conversation.json")
    assert set(suites) == {"math", "math-sharded", "math-full"}
    assert [p.id for p in suites["math-full"]] == [p.id for p in suites["math-sharded"]]
    assert all(p.id.startswith("lic-") for p in suites["math-full"]) and not any(
        p.id.startswith("lic-") for p in suites["math"])
    full = evaluate.task_teacher("math-full", None, tiny=False)
    p = suites["math-full"][0]
    assert full.opening(p).endswith(p.statement) and full.reply([None]) == [None]     # one turn, then it ends
    _script(monkeypatch, tok, {p.statement: ["\\boxed{1}", "\\boxed{2}"]})
    entry, by_seed = evaluate.evaluate(None, tok, [p], evaluate.task_teacher("math-full", None, tiny=True),
                                       n_turns=3, progress=False)
    assert by_seed[0][0].turns == 1 and entry["success_at_turn"] == [0.0] * 3


def test_standalone_evaluation_refuses_the_runs_training_problems(tmp_path, tok):
    """A checkpoint inside a run folder is tested on that run's split: the run's seed by default, and a split
    (here --seed 0 against a run trained with seed 1) that shares problems with its training split is refused."""
    data = str(ROOT / "tests" / "fixtures" / "omni_math.jsonl")
    run = tmp_path / "run"
    train_ids = [p.id for p in tasks.load_omni_math(data, "train", seed=1)]
    run.mkdir()
    runfolder.write_json(run / "config.json", {"seed": 1, "method": "mt-rl"})
    runfolder.write_json(run / "split-train.json", train_ids)
    ckpt = run / "seed-1" / "checkpoints" / "step-000001"
    random_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    overlap = set(train_ids) & {p.id for p in tasks.load_omni_math(data, "test", seed=0)}
    assert overlap                                                     # the fixture's seed-0 test split overlaps
    with pytest.raises(runfolder.UserError, match="training split of the run"):
        evaluate.main(["--model", str(ckpt), "--data", data, "--seed", "0", "--teacher", "same",
                       "--out", str(tmp_path / "e")])
    assert evaluate.run_folder_of(str(ckpt)) == run
    evaluate.check_splits(evaluate.load_eval_tasks("math", data, seed=1), [run])   # the run's own seed: fine
