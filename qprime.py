"""Q-priming (§4.4, Eq. 4): SFT data in which wrong attempts were replaced by informative questions.

SML alone rarely teaches a model to ask (§6.4). Q-priming adds a first SFT stage on dialogues in
which, during data generation, an incorrect student attempt at turn t was replaced, with probability

    P_Q(t) = 0.75^t * 1[R(s_t, a_t) = 0]                                        (Eq. 4)

by a question that the student model itself writes when shown the problem, its own attempt and the
teacher's private knowledge (QUESTION_PROMPT). The teacher then answers the question and the
dialogue goes on; the successful dialogues, questions included, are the SFT dataset (student turns
only). The two-stage recipe of §6.4 is SFT on that dataset, then GRPO (`--method qprime`); its
control is the same without injected questions (`--method sft-rl`). Both live in sml.py.

    python sml.py --task math --method qprime
    python tinyworld.py --qprime              # show a few question-injected tiny-world dialogues

Details:
  * Early turns are replaced more often (0.75, 0.56, 0.42, 0.32 for t = 1..4): asking is taught as
    an opening move, not a last resort.
  * The question sees k_t, so it can aim at what the student is missing; a question that contains the
    gold answer (verify.mentions_answer) would teach the student to expect it stated: it is rejected
    and regenerated, up to `tries` times, then the original attempt is kept (both counted).
  * The question's tokens are the student model's own samples, kept as generated and placed where
    the attempt was; the mask stays 1 on them, like any student turn.
Deviations: the rejection of questions that contain the answer, and its retry limit, are this project's.
"""
from __future__ import annotations

import random

import dialogue
from infra.runfolder import derive_seed
import verify

QUESTION_PROMPT = """Problem: {problem}
Your attempt: {attempt}
What the teacher knows: {private_knowledge}
Ask the teacher one short question whose answer would help you solve the problem. Do not state the answer."""


def injection_probability(turn: int, base: float = 0.75) -> float:
    """P_Q(t) for an incorrect turn t = 1, 2, ... (Eq. 4)."""
    return base ** turn


def question_prompt(problem, attempt: str, feedback: str | None = None) -> str:
    """The prompt under which the student writes a question: it sees k_t; the question must not reveal it.
    For code, k_t is what the tests said about this attempt (`feedback`)."""
    if problem.task == "code":
        known = "Results of the tests on your attempt:\n" + (feedback or "none")
    else:
        known = f"Reference solution: {problem.solution}\nThe final answer: {problem.answer}"
    return QUESTION_PROMPT.format(problem=problem.statement, attempt=attempt, private_knowledge=known)


class QuestionInjector:
    """dialogue.rollout's `on_incorrect` hook: replaces wrong attempts by the student's own questions.
    `prompt(problem, attempt, feedback)` writes the question-asking prompt (the tiny world has its own)."""

    def __init__(self, student, tokenizer, prompt=question_prompt, base: float = 0.75, tries: int = 2,
                 max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0,
                 max_batch_tokens: int | None = None):
        self.student, self.tokenizer, self.chat = student, tokenizer, dialogue.ChatFormat(tokenizer)
        self.prompt = prompt
        self.base, self.tries, self.max_new_tokens, self.temperature = base, tries, max_new_tokens, temperature
        self.rng, self.seed, self.max_batch_tokens = random.Random(seed), seed, max_batch_tokens
        self.stats = {"wrong_turns": 0, "injected": 0, "rejected_leaks": 0, "kept_attempt": 0}

    def __call__(self, wrong: list[dialogue.Dialogue], turn: int):
        self.stats["wrong_turns"] += len(wrong)
        chosen = [d for d in wrong if self.rng.random() < injection_probability(turn, self.base)]
        for attempt in range(self.tries):
            if not chosen:
                return
            prompts = [self.chat.encode_messages([{"role": "user", "content": self.prompt(
                d.problem, d.messages[-1]["text"], d.messages[-1].get("feedback"))}]) for d in chosen]
            outs = dialogue.generate(self.student, prompts, self.max_new_tokens, temperature=self.temperature,
                                     stop_token_ids=self.chat.stop_ids, pad_token_id=self.chat.pad_id,
                                     seed=derive_seed(self.seed, "question", turn * 101 + attempt),
                                     max_batch_tokens=self.max_batch_tokens)
            retry = []
            for d, out in zip(chosen, outs):
                text = self.tokenizer.decode([i for i in out if i not in self.chat.stop_ids],
                                             skip_special_tokens=True).strip()
                if out[-1] not in self.chat.stop_ids or not text:
                    retry.append(d)                       # ran out of tokens, or said nothing
                elif d.problem.answer is not None and verify.mentions_answer(text, d.problem.answer):
                    self.stats["rejected_leaks"] += 1
                    retry.append(d)
                else:
                    d.segments[-1] = ("student", out)     # the attempt's ids give way to the question's
                    d.messages[-1] = {"role": "student", "turn": turn, "text": text, "correct": None,
                                      "injected": True}
                    self.stats["injected"] += 1
            chosen = retry
        self.stats["kept_attempt"] += len(chosen)

