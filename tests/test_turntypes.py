"""turntypes.py: the rule-based turn types on a table of turns (every type at least three times), and the
judge model's parsing and its fallback to the rules."""
import pytest

import dialogue
import report
import turntypes
from dialogue import ChatFormat


TURNS = [  # (text, task, type)
    ("", "math", "missing"), ("   \n", "math", "missing"), ("", "code", "missing"),
    ("\\boxed{85}", "math", "answer_attempt"), ("40 + 45 = 85, so the answer is \\boxed{85}.", "math", "answer_attempt"),
    ("I think it is \\boxed{85}. Is that right?", "math", "answer_attempt"),
    ("\\boxed{85} ... checking again: \\boxed{85}", "math", "answer_attempt"),
    ("Here:\n```python\nprint(sum(map(int, input().split())))\n```", "code", "answer_attempt"),
    ("It is \\boxed{84} or maybe \\boxed{85}.", "math", "hedge"),
    ("The answer is either 84 or 85, depending on rounding.", "math", "hedge"),
    ("```python\nprint(1)\n```\nor, if the input is one line:\n```python\nprint(2)\n```", "code", "hedge"),
    ("What is the last digit?", "math", "clarification"), ("Could you tell me the second number?", "math", "clarification"),
    ("I need more information. What are the numbers?", "math", "clarification"),
    ("What is the first number? And the second?", "math", "interrogation"),
    ("Is it a sum? What are the numbers? Are they integers?", "math", "interrogation"),
    ("What input format do you use? Should I read from stdin?", "code", "interrogation"),
    ("I can't solve this without the numbers.", "math", "refuse"), ("I cannot help with that.", "code", "refuse"),
    ("I'm unable to compute that.", "math", "refuse"), ("It is not possible to answer yet.", "math", "refuse"),
    ("Let me think about sums in general.", "math", "discussion"),
    ("Adding two numbers means combining their values; the tens and the units add separately.", "math", "discussion"),
    ("First I would read the input, then loop over it.", "code", "discussion"),
    ("x" * 250 + " so what is the first number?", "math", "discussion"),   # long, one question
]


@pytest.mark.parametrize("text,task,kind", TURNS)
def test_classify_turn(text, task, kind):
    assert turntypes.classify_turn(text, task) == kind


def test_classify_table_covers_every_type():
    for kind in report.TURN_TYPES:
        assert sum(k == kind for _, _, k in TURNS) >= 3, kind


def test_judge_classifier_parses_and_falls_back(monkeypatch, tok, model):
    replies = iter(["Clarification", "answer attempt.", "I am not sure"])
    chat = ChatFormat(tok)
    seen = []

    def fake_generate(m, prompts, max_new_tokens, **kw):
        seen.append(len(prompts))
        assert kw["temperature"] == 0
        return [tok.encode(next(replies), add_special_tokens=False) + [chat.end_of_turn] for _ in prompts]
    monkeypatch.setattr(dialogue, "generate", fake_generate)
    judge = turntypes.JudgeClassifier(model, tok)
    labels = judge.batch(["What is it?", "", "\\boxed{3}", "Hmm, \\boxed{4} or \\boxed{5}"], "math")
    assert labels == ["clarification", "missing", "answer_attempt", "hedge"]   # the last one from the rules
    assert judge.fallbacks == 1 and seen == [3]                              # one batch; no call for an empty turn
    assert turntypes.parse_turn_type("Type: interrogation") == "interrogation"
    assert turntypes.parse_turn_type("none of these") is None
