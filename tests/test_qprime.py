"""qprime.py: P_Q(t) = 0.75^t on wrong turns only, leaking questions rejected, questions kept as generated."""
import random

import pytest

import dialogue
import qprime
import tasks
import tinyworld


def test_injection_rate_per_turn_matches_eq4():
    """Over 20,000 seeded draws per turn the empirical rate is within 0.015 of 0.75^t (> 4 standard errors)."""
    rng = random.Random(0)
    for t in range(1, 6):
        rate = sum(rng.random() < qprime.injection_probability(t) for _ in range(20_000)) / 20_000
        assert rate == pytest.approx(0.75 ** t, abs=0.015)


def _scripted(monkeypatch, tok, student_replies, question_replies):
    """A fake model: dialogue prompts get the student's scripted reply, question prompts a scripted question."""
    chat = dialogue.ChatFormat(tok)
    asked = []

    def fake_generate(model, prompts, max_new_tokens, **kw):
        outs = []
        for p in prompts:
            text = tok.decode(p)
            if "Ask the teacher" in text:
                asked.append(text)
                reply = question_replies.pop(0) if question_replies else "What is the last digit?"
            else:
                reply = next(v for k, v in student_replies.items() if k in text)
            outs.append(tok.encode(reply, add_special_tokens=False) + [chat.end_of_turn])
        return outs
    monkeypatch.setattr(dialogue, "generate", fake_generate)
    return asked


def test_injection_measured_through_rollouts_and_correct_turns_never_replaced(monkeypatch, tok):
    right, wrong = tasks.tiny_math_problems("train", n=2, seed=3)
    near = int(wrong.answer) - 2
    _scripted(monkeypatch, tok, {right.statement: f"\\boxed{{{right.answer}}}", wrong.statement: "\\boxed{1}"},
              [f"How far off is {near}?"] * 400)
    injector = qprime.QuestionInjector(None, tok, seed=0)
    ds = dialogue.rollout(None, tok, [right, wrong], tinyworld.HintTeacher(), group_size=400, max_turns=2,
                          on_incorrect=injector)
    solved = [d for d in ds if d.problem is right]
    assert all(d.success_turn == 1 and not any(m.get("injected") for m in d.messages) for d in solved)
    unsolved = [d for d in ds if d.problem is wrong]
    first_turn = sum(d.student_turns()[0].get("injected", False) for d in unsolved) / len(unsolved)
    assert first_turn == pytest.approx(0.75, abs=0.07)           # 400 draws: 3 standard errors
    q = next(d for d in unsolved if d.student_turns()[0].get("injected"))
    # the teacher answered the question with the piece of information it asked for
    assert q.messages[2]["text"] == f"{near} is 2 too low."
    assert q.student_turns()[0]["correct"] is None and q.segments[1][0] == "student"
    assert injector.stats["injected"] > 0 and injector.stats["wrong_turns"] == 400   # not asked at the last turn


def test_question_containing_the_gold_answer_is_rejected(monkeypatch, tok):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 5?", answer="45", source="tiny")
    asked = _scripted(monkeypatch, tok, {p.statement: "\\boxed{44}"}, ["Is it 45?", "Is it \\boxed{45}?"])
    injector = qprime.QuestionInjector(None, tok, base=1.0, tries=2, seed=0)
    d = dialogue.rollout(None, tok, [p], tinyworld.HintTeacher(), max_turns=2, on_incorrect=injector)[0]
    assert len(asked) == 2 and injector.stats["rejected_leaks"] == 2 and injector.stats["kept_attempt"] == 1
    assert d.student_turns()[0]["text"] == "\\boxed{44}"           # the attempt stayed; no leaking question
    asked = _scripted(monkeypatch, tok, {p.statement: "\\boxed{44}"}, ["Is it 45?", "What is the last digit?"])
    injector = qprime.QuestionInjector(None, tok, base=1.0, tries=2, seed=0)
    d = dialogue.rollout(None, tok, [p], tinyworld.HintTeacher(), max_turns=2, on_incorrect=injector)[0]
    assert d.student_turns()[0]["text"] == "What is the last digit?" and injector.stats["rejected_leaks"] == 1
    assert "45" not in d.student_turns()[0]["text"]


def test_question_prompt_shows_private_knowledge():
    p = tasks.tiny_math_problems("train", n=1, seed=0)[0]
    prompt = qprime.question_prompt(p, "\\boxed{3}")
    assert p.statement in prompt and p.answer in prompt and "\\boxed{3}" in prompt
    code = tasks.Problem(id="c", task="code", statement="Write f.")
    assert "2 of 3 tests failed" in qprime.question_prompt(code, "```python\n```", "2 of 3 tests failed")
