"""Turn types (§5.2, §6.4, Fig. 5-6): what kind of turn a student takes, by rules or by a judge model.

Lost in Conversation's taxonomy: answer attempt, clarification (one short question), interrogation
(several questions), discussion, hedge (several candidate answers), refuse, missing. evaluate.py labels
every student turn with it (behaviour_entry) and reports the shares of each type, questions per
conversation and whether asking pays (Fig. 5-6, §6.4).

    python evaluate.py --judge MODEL ...   # label turns with a local chat model instead of the rules
    python -m pytest tests/test_turntypes.py -q

Deviation from the paper: the default classifier is rule-based (`classify_turn`: boxed answers, code
blocks, question marks, refusal phrases), not Gemini-2.5-Pro; `JudgeClassifier` uses any local chat
model with the paper's judge instructions (JUDGE_PROMPT) and falls back to the rules when its reply
names no type.
"""
from __future__ import annotations

import re

import dialogue
from report import TURN_TYPES
import verify


_EITHER = re.compile(r"\beither\b[^?!\n]{0,150}?\bor\b[^?!\n]{0,60}", re.I)
_REFUSE = re.compile(r"\b(i can ?not|i can't|i can’t|i'm unable|i am unable|i'm not able|i am not able|"
                     r"i won't|i will not|not possible to|impossible to)\b", re.I)


def classify_turn(text: str, task: str = "math") -> str:
    """The rule-based turn type of one student turn (the default classifier).

    missing: empty. answer_attempt: one answer, i.e. one distinct \\boxed{} (math) or one code block
    (code). hedge: several different answers, or "either ... or" naming two or more numbers.
    clarification: no answer and exactly one question, in a short turn (< 200 characters).
    interrogation: no answer and two or more questions. refuse: no answer and a phrase like "I
    can't" or "not possible to". discussion: everything else, such as a long turn with one question.
    """
    if not text or not text.strip():
        return "missing"
    if task == "code":
        answers = {body.strip() for _, body in verify.code_blocks(text)}
    else:
        # each box is read up to where the next one starts
        starts = [m.start() for m in verify.BOX_RE.finditer(text)] + [len(text)]
        boxes = [verify.extract_answer(text[a:b]) for a, b in zip(starts, starts[1:])]
        answers = {verify.normalize_answer(b) for b in boxes if b}
    either = _EITHER.search(text)
    if len(answers) >= 2 or (either and len(re.findall(r"\d+(?:\.\d+)?", either.group(0))) >= 2):
        return "hedge"
    if answers:
        return "answer_attempt"
    questions = len(re.findall(r"\?+", text))   # "??" is one question
    if questions >= 2:
        return "interrogation"
    if questions == 1 and len(text.strip()) < 200:
        return "clarification"
    if _REFUSE.search(text):
        return "refuse"
    return "discussion"


JUDGE_PROMPT = """Classify one turn of an assistant that is solving a {task} problem in a conversation with a user.
The turn types:
answer_attempt: the turn gives one complete answer ({answer}).
clarification: no answer; a short turn asking exactly one question.
interrogation: no answer; the turn asks several questions.
discussion: no answer and no question; it reasons, explains or comments.
hedge: the turn gives several candidate answers or branches (for example "either 12 or 15").
refuse: the turn declines, or says it cannot answer.
missing: the turn is empty.

The turn:
<<<
{text}
>>>
Reply with the name of its type only."""


class JudgeClassifier:
    """The paper's model-as-judge (§5.2) with any local chat model. It greedy-decodes a few tokens
    per turn and reads the first type name in the reply. When no name parses, it uses the rule-based
    label instead and counts a fallback. `batch` classifies many turns with one generate call per batch."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 8, batch_size: int = 32, max_chars: int = 3000):
        self.model, self.tokenizer = model, tokenizer
        self.chat = dialogue.ChatFormat(tokenizer, check=False)  # one-message prompts: prefixes don't matter
        self.max_new_tokens, self.batch_size, self.max_chars = max_new_tokens, batch_size, max_chars
        self.name = f"judge {getattr(tokenizer, 'name_or_path', '')}".strip()
        self.fallbacks = 0

    def __call__(self, text: str, task: str = "math") -> str:
        return self.batch([text], task)[0]

    def batch(self, texts: list[str], task: str = "math") -> list[str]:
        labels = ["missing" if not t.strip() else None for t in texts]   # no judge needed for an empty turn
        todo = [i for i, label in enumerate(labels) if label is None]
        answer = "a final answer in \\boxed{}" if task == "math" else "a complete program in a code block"
        for k in range(0, len(todo), self.batch_size):
            rows = todo[k:k + self.batch_size]
            prompts = [self.chat.encode_messages([{"role": "user", "content": JUDGE_PROMPT.format(
                task=task, answer=answer, text=self._clip(texts[i]))}]) for i in rows]
            outs = dialogue.generate(self.model, prompts, self.max_new_tokens, temperature=0,
                                     stop_token_ids=self.chat.stop_ids, pad_token_id=self.chat.pad_id)
            for i, reply in zip(rows, self.tokenizer.batch_decode(outs, skip_special_tokens=True)):
                labels[i] = parse_turn_type(reply)
                if labels[i] is None:
                    self.fallbacks += 1
                    labels[i] = classify_turn(texts[i], task)
        return labels

    def _clip(self, text: str) -> str:
        """Keep the start and the end of a long turn: the answer is usually at the end."""
        half = self.max_chars // 2
        return text if len(text) <= self.max_chars else text[:half] + "\n[...]\n" + text[-half:]


def parse_turn_type(reply: str) -> str | None:
    """The first turn-type name in a judge's reply ("Answer attempt." counts), or None."""
    reply = re.sub(r"[\s-]+", "_", reply.lower())
    found = [(reply.find(k), k) for k in TURN_TYPES if k in reply]
    return min(found)[1] if found else None
