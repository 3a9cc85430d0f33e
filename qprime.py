"""Q-priming (§4.4, Eq. 4): SFT data in which wrong attempts were replaced by informative questions.

During data generation, when the student's attempt at turn t is incorrect, it is replaced with
probability P_Q(t) = 0.75^t by a question that the student model itself writes when shown the
problem, its attempt and the teacher's private knowledge.
"""
from __future__ import annotations

QUESTION_PROMPT = """Problem: {problem}
Your attempt: {attempt}
What the teacher knows: {private_knowledge}
Ask the teacher one short question whose answer would help you solve the problem. Do not state the answer."""


def question_prompt(problem, attempt: str) -> str:
    """The prompt under which the student writes an informative question (it sees k_t, the question must not)."""
    known = f"the answer is {problem.answer}" if problem.task == "math" else "the test results"
    return QUESTION_PROMPT.format(problem=problem.statement, attempt=attempt, private_knowledge=known)
