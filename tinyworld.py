"""The embedded tiny world: a character-level tokenizer, a small Llama warmed up into a base model, and
the scripted teachers it talks to. It stands in for the paper's Gemma-3-12B-IT and its teacher (§5.1), so
that the whole method (rollouts, rewards, learning from feedback, questions) runs on a laptop CPU in minutes.

The world
  The student knows one exact skill: one step of adding or subtracting a one-digit number, written out
  ("47 + 5 = \\boxed{52}"). The problems take two steps ("What is 47 + 5 - 3?") and the corpus never shows
  two at once, so none is solved in one turn. In about 4 problems of 10 the second number is far (10..36):
  the student can only get there 9 at a time. A quarter of the training problems take one step, as a real
  dataset has easy problems (`tasks.tiny_training_problems`); the held-out curves are on two-step problems.
  The math teacher knows the answer and never states it. To a wrong answer it says how far off it is,
  "52 is 3 too high.", when that is one step, else "52 is more than 9 too high." To a question, "How far
  off is 52?", it also names a number one step from the answer. The code task is the same problems as
  programs f(x) = x + c, and its teacher relays the first failing public test. Sharded problems give their
  numbers one per turn (the lazy user, §5.1).
  The base student's warm-up corpus writes it as a student who mostly ignores feedback: after a reply that
  carries information it takes the step only P_USE of the time, else it anchors on its last number or
  guesses; it seldom asks (P_ASK). A separate part of the corpus ("copy") teaches the step from a reply on
  its own, so that the skill is reliable while the habit is rare. `HintTeacher.uptake` measures the habit.

Each rule exists so that one of the paper's figures has something to show:
  * Fig. 1 (success by turn): two-step problems are unsolvable at turn 1 and solvable with feedback, so
    single-turn RL has nothing to reinforce and multi-turn RL rewards the dialogues that used a reply. Far
    problems need up to four replies, so later turns keep improving past the training horizon N = 4.
  * Fig. 3 (loss on the answer): an exact distance pins the answer, so the loss on the step from the last
    reply (`reference_dialogues`) shows how well a model uses feedback at a fixed kind of context.
  * Fig. 4 (code): the same problems as programs, so math and code share the skill.
  * Fig. 5 (questions): on a far problem a question's fuller reply solves it turns sooner, and the base asks
    seldom, so SML alone seldom finds asking and Q-priming's injected questions are what teach it.
  * Table 1 (sharded): the last shard is phrased as the teacher's correction ("37 is 5 too low."), so the
    habit SML trains is the one the sharded task needs.

    python tinyworld.py                 # warm up (or load) the base model and measure it
    python tinyworld.py --seed 1        # ... another warm-up seed (the spread of the base over seeds)
    python tinyworld.py --show          # print a few dialogues with the scripted teacher (--task code)
    python tinyworld.py --qprime        # ... with Q-priming's injected questions

The base is cached on disk (save_pretrained format, ~/.cache/sml or $SML_CACHE), deterministic given the
seed. Deviations: the teacher is scripted, not an LLM; the base's habits are written into its warm-up
corpus, where a real base model has them from pretraining; Fig. 3's base curve falls after turn 1 (before
any reply no model can know a two-step answer), where the paper's is flat.
"""
from __future__ import annotations

import functools
import json
import math
import os
import random
import re
import shutil
import time
from pathlib import Path

import torch

import dialogue
import qprime
import tasks
import verify
from dialogue import Dialogue

SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|unk|>"]
CHARS = [chr(c) for c in range(32, 127)] + ["\n"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
                 "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")

# The world's knobs. The cached base model depends on every value here: change one, bump VERSION.
VERSION = 14          # the cache key includes it
# The base student's habits, written into its warm-up corpus
P_USE = 0.1           # after a reply that carries information (or the last shard) the next answer takes
                      # its step: seldom, so that SML has a rare habit to raise
P_REPEAT = 0.6        # ... otherwise it repeats its last number (anchoring), else it guesses nearby
P_ASK = 0.01          # a turn asks "How far off is N?": seldom, so Q-priming has asking to teach (Fig. 5)
P_CLARIFY = 0.2       # sharded: before the last shard, a turn asks for the numbers instead of answering
# The corpus's kinds of sequence (corpus_sample), by weight
MIX = {"math": 0.42,          # dialogues with the hint teacher: the habits above
       "code": 0.14,          # ... the same as programs with test feedback, so code shares the skill (Fig. 4)
       "sharded": 0.08,       # the lazy user's shards (Table 1)
       "sharded-code": 0.04,  # ... as programs
       "question": 0.05,      # Q-priming's prompt -> a question, so the base can write one (Eq. 4)
       "solve": 0.12,         # problems -> the first step: the arithmetic, kept up in the dialogue phase
       "solve-code": 0.05,    # ... as programs
       "copy": 0.10}          # a reply alone -> the step it gives: the skill reliable, the habit rare (P_USE)
COPY_FAR, COPY_ASKED = 0.5, 0.7   # "copy": how often the reply is to a far number, and to a question
ARITHMETIC_STEPS = 500   # the first steps teach the arithmetic alone (problem -> answer), then the dialogues
ARITHMETIC_MIX = {"solve": 0.85, "solve-code": 0.15}   # programs from the start: their characters are new
# The model and its warm-up
HIDDEN, LAYERS = 64, 4   # small enough to warm up in minutes on two CPU cores
INIT_STD = 0.08          # Hugging Face's 0.02 leaves a model this narrow on a long plateau of uniform
                         # attention, whose end moves with float-level differences between machines
WARMUP_STEPS = 1200
DIALOGUE_BATCH = 24      # dialogue-phase sequences per step (per 64 arithmetic ones): they are long, and more
                         # would make the warm-up slower


# --- The scripted teachers: they hold the private knowledge and never state the answer. ---------------

class HintTeacher:
    """Math: how far off a wrong answer is (`hint`). The opening is the bare problem: the tiny student never
    learned to read instructions."""

    def opening(self, problem) -> str:
        return problem.statement

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        return [hint(int(d.problem.answer), d.student_turns()[-1]["text"])[0] for d in dialogues]

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        """Of the replies that placed the answer ("more than 9" does not) and were followed by an answer, the
        fraction whose next answer lies where the reply said. Returns (rate or None, cases)."""
        agree = cases = 0
        for d in dialogues:
            turns = d.student_turns()
            for this, nxt in zip(turns, turns[1:]):
                _, where = hint(int(d.problem.answer), this["text"])
                value = _integer(nxt["text"])
                if where is not None and value is not None:
                    cases += 1
                    agree += where[0] <= value <= where[1]
        return (agree / cases if cases else None), cases


def hint(gold: int, student_text: str) -> tuple[str, tuple[float, float] | None]:
    """The math teacher's reply to one student turn, and the interval [lo, hi] in which it says the answer
    lies (None if it says nothing about it). The warm-up corpus and `uptake` use it too."""
    if dialogue.is_question(student_text):
        asked = re.search(r"how far off is (-?\d+)", student_text, re.I)
        if asked is None:
            return "I can't tell you that. Ask me how far off a number is.", None
        n = int(asked.group(1))
        if n == gold:
            return "That one is exactly right.", (gold, gold)
        return _how_far(n, gold, asked=True)
    x = _integer(student_text)
    if x is None:
        return "Please give your final answer as a number in \\boxed{}.", None
    return _how_far(x, gold)


def _how_far(x: int, gold: int, asked: bool = False) -> tuple[str, tuple[int, int] | None]:
    """"52 is 3 too high." for a one-step distance, else "52 is more than 9 too high." (not pinned: None). A
    question beyond one step also gets the number the 9-steps reach: "..., and 34 is 7 too high.". A reply
    that would state the answer drops the number ("That is 3 too high.")."""
    d, side = abs(x - gold), "high" if x > gold else "low"
    how = f"{'more than 9' if d > 9 else d} too {side}."
    reply = f"{x} is {how}"
    if verify.mentions_answer(reply, str(gold)):
        reply = f"That is {how}"
    if d <= 9:
        return reply, (gold, gold)
    if asked:
        near = 1 + (d - 1) % 9                        # 52 -> 43 -> 34: 7 from 27
        fuller = f"{reply[:-1]}, and {gold + near if x > gold else gold - near} is {near} too {side}."
        if not verify.mentions_answer(fuller, str(gold)):
            return fuller, (gold, gold)
    return reply, None


def _use(reply: str, x: int) -> tuple[int, str | None]:
    """The number a reply points to and the step written down: the last number named, moved by the distance
    given ("52 is 3 too high." -> 49, "52 - 3"); code: the relayed test's expected output minus its input."""
    test = re.search(r"input '(-?\d+)' \| expected '(-?\d+)'", reply)
    if test:
        return int(test.group(2)) - int(test.group(1)), None
    said = re.findall(r"(-?\d+|That) is (?:more than )?(\d+) too (high|low)", reply)
    if not said:                                      # "That one is exactly right."
        return x, None
    n, d, side = said[-1]
    n, op = (x if n == "That" else int(n)), ("-" if side == "high" else "+")
    return n + int(d) * (-1 if op == "-" else 1), f"{n} {op} {d}"


def _integer(text: str) -> int | None:
    """The student's answer as an integer (math: the boxed number; code: the constant of f(x) = x + c)."""
    if "```" in text:
        m = re.search(r"return x \+ (-?\d+)\s*$", verify.extract_program(text) or "", re.M)
        return int(m.group(1)) if m else None
    answer = verify.extract_answer(text)
    return int(answer) if answer is not None and re.fullmatch(r"-?\d+", answer.strip()) else None


class TestFeedbackTeacher:
    """Code: the private knowledge k_t is the public tests' feedback on the latest program (§4.1, §5.1); the
    teacher relays its first line: "Test 1 (fail): input '0' | expected '85' | got '87'"."""

    def opening(self, problem) -> str:
        return problem.statement

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        return [self.phrase(_latest_feedback(d) or "No program was given yet.") for d in dialogues]

    def phrase(self, feedback: str) -> str:
        """verify.check_code's feedback on the latest program, as the teacher says it."""
        return feedback.split("\n")[0]

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        """Of the relayed failing tests followed by another program, the fraction that program passes.
        Returns (rate or None, cases)."""
        agree = cases = 0
        for d in dialogues:
            turns = d.student_turns()
            for this, nxt in zip(turns, turns[1:]):
                relayed = re.match(r"Test (\d+) \(", self.phrase(this.get("feedback") or ""))
                if relayed and nxt.get("correct") is not None:
                    cases += 1
                    agree += nxt["correct"] or f"Test {relayed.group(1)} (" not in (nxt.get("feedback") or "")
        return (agree / cases if cases else None), cases


def _latest_feedback(d: Dialogue) -> str | None:
    # k_t is about the latest program: a question put in place of an attempt (Q-priming) has none
    return next((m["feedback"] for m in reversed(d.student_turns()) if m.get("feedback")), None)


def scripted_teacher(task: str):
    """The teacher for a task (sharded tasks get the lazy user, dialogue.ShardTeacher, instead)."""
    return TestFeedbackTeacher() if task == "code" else HintTeacher()


def question_prompt(problem, attempt: str, feedback: str | None = None) -> str:
    """qprime.QUESTION_PROMPT with the answer as private knowledge, less its last line (the instruction,
    which a model that never learned to read instructions cannot use, and which doubles the prompt)."""
    prompt = qprime.QUESTION_PROMPT.format(problem=problem.statement, attempt=attempt,
                                           private_knowledge=f"the answer is {problem.answer}")
    return prompt.rsplit("\n", 1)[0]


def reference_dialogues(problems, tokenizer, n_turns: int, seed: int = 0) -> list[Dialogue]:
    """Fig. 3's shared contexts: per problem, n_turns wrong answers of the base's kind (the first step, then
    near misses or repeats) and the teacher's replies, segmented as dialogue.rollout does. Each teacher
    message carries the right answer in the student's form ("answer_form": the step from the reply, or the
    whole sum after the opening) and whether it "placed" the answer (answerloss.answer_loss)."""
    chat, teacher = dialogue.ChatFormat(tokenizer), HintTeacher()
    out = []
    for p in problems:
        rng = random.Random(f"{seed}-{p.id}")
        gold, d = int(p.answer), Dialogue(problem=p)
        whole = f"{_first_step(p)} {p.meta['op2']} {p.meta['c']}"
        d.segments.append(("teacher", chat.opening(teacher.opening(p))))
        d.messages.append({"role": "teacher", "turn": 1, "text": teacher.opening(p),
                           "answer_form": _attempt(p, gold, whole), "placed": False})
        x = _best_effort(p) if _best_effort(p) != gold else gold + rng.choice([-2, -1, 1, 2])
        for t in range(1, n_turns + 1):
            text = _attempt(p, x, _first_step(p) if x == _best_effort(p) else None)
            d.segments.append(("student", chat.encode(text) + [chat.end_of_turn]))
            d.messages.append({"role": "student", "turn": t, "text": text, "correct": False,
                               "answer": str(x)})
            if t == n_turns:
                break
            reply, where = hint(gold, text)
            # the step from a one-digit distance lands on the answer; from "more than 9" no step does
            value, work = _use(reply, x)
            placed = where is not None
            assert (value == gold) == placed, (reply, gold)
            d.segments.append(("teacher", chat.teacher_turn(reply)))
            d.messages.append({"role": "teacher", "turn": t + 1, "text": reply, "leak": False,
                               "answer_form": _attempt(p, gold, work if placed else None), "placed": placed})
            x = gold + rng.choice([-3, -2, -1, 1, 2, 3]) if rng.random() < 0.7 else x
        d.done = True
        out.append(d)
    return out


# --- The model: characters in, a small Llama, cached after its warm-up. ------------------------------

def cache_dir(seed: int, steps: int) -> Path:
    root = Path(os.environ.get("SML_CACHE", Path.home() / ".cache" / "sml"))
    name = f"tiny-v{VERSION}-seed{seed}"
    return root / name if steps == WARMUP_STEPS else root / f"{name}-steps{steps}"


def load_tiny(seed: int = 0, steps: int | None = None, progress: bool = True):
    """The tiny base model and its tokenizer: from the cache, or warmed up now (a few minutes on CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    steps = steps or int(os.environ.get("SML_TINY_STEPS", WARMUP_STEPS))   # tests use a few steps
    path = cache_dir(seed, steps)
    if not (path / "config.json").exists():
        warm_up(path, seed=seed, steps=steps, progress=progress)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def build_tokenizer():
    """One token per character, plus the chat roles, wrapped as a PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|end|>",
                                   pad_token="<|pad|>", unk_token="<|unk|>", chat_template=CHAT_TEMPLATE,
                                   model_max_length=1024)


def build_model(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=3 * HIDDEN,
                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=INIT_STD,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


# --- The warm-up: next-token prediction on the student's turns of generated dialogues. ---------------

def warm_up(path: Path, seed: int = 0, steps: int = WARMUP_STEPS, batch_size: int = 64, lr: float = 3e-3,
            progress: bool = True):
    """Train a fresh tiny model on the corpus and save it (atomically) to `path`."""
    from tqdm.auto import tqdm
    t0 = time.time()
    random.seed(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    chat = dialogue.ChatFormat(tokenizer)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    model.train()
    bar = tqdm(range(steps), desc="warming up the tiny model (once; cached)", disable=not progress)
    pool = []
    for step in bar:
        for g in opt.param_groups:   # linear warm-up, cosine decay
            g["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        if not pool:   # batches of similar lengths: padding to the longest costs ~2.5x otherwise
            arithmetic = step < ARITHMETIC_STEPS * steps // WARMUP_STEPS
            mix, B = (ARITHMETIC_MIX, batch_size) if arithmetic else (MIX, DIALOGUE_BATCH * batch_size // 64)
            samples = sorted((corpus_sample(rng, chat, mix) for _ in range(8 * B)), key=lambda s: len(s[0]))
            pool = [samples[i:i + B] for i in range(0, len(samples), B)]
            rng.shuffle(pool)
        ids, mask = zip(*pool.pop())
        x, m = _pad(ids, tokenizer.pad_token_id), _pad(mask, 0)                      # (B, T)
        # Padding is on the right, so under causal attention no real token ever sees a pad: no
        # attention mask is needed, and without one SDPA takes its fast causal path (~30% faster).
        logits = model(input_ids=x).logits                                          # (B, T, V)
        logp = torch.log_softmax(logits[:, :-1].float(), -1)                       # (B, T-1, V)
        logp = logp.gather(-1, x[:, 1:, None]).squeeze(-1)                          # (B, T-1)
        loss = -(logp * m[:, 1:]).sum() / m[:, 1:].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "warmup.json").write_text(json.dumps({"seed": seed, "steps": steps, "batch_size": batch_size,
                                                 "dialogue_batch_size": DIALOGUE_BATCH * batch_size // 64,
                                                 "final_loss": loss.item(), "seconds": time.time() - t0}))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


# --- The corpus: the base student's dialogues, written by its habits (P_USE, P_REPEAT, P_ASK, ...). ---

def corpus_sample(rng: random.Random, chat, mix: dict = MIX):
    """One training sequence (ids, mask) of a kind drawn from `mix` (see MIX)."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    task = "code" if "code" in kind else "math"
    kind = kind.removesuffix("-code")
    if kind == "copy":    # the step from a reply alone: "52 is 3 too high." -> "52 - 3 = \\boxed{49}"
        p = rng.choice(_train_problems(task))
        far = rng.random() < COPY_FAR
        x = _gold(p) + rng.choice([-1, 1]) * (rng.randint(10, 30) if far else rng.randint(1, 9))
        reply = hint(_gold(p), _question(x) if rng.random() < COPY_ASKED else f"\\boxed{{{x}}}")[0]
        value, work = _use(reply, x)
        return _encode(chat, reply, [_attempt(p, value, work)], [])
    if kind == "solve":   # a few problems in one chat, so the arithmetic also works far into a dialogue
        chain = [rng.choice(_train_problems(task, rng.random() < 0.6)) for _ in range(rng.randint(1, 4))]
        answers = [_attempt(p, _best_effort(p), _first_step(p)) for p in chain]
        return _encode(chat, chain[0].statement, answers, [p.statement for p in chain[1:]])
    if kind == "sharded":
        problem = rng.choice(_train_problems(task, True))
        return _encode(chat, problem.shards[0], *_sharded_turns(problem, rng))
    problem = rng.choice(_train_problems(task))
    if kind == "question":
        x = _best_effort(problem)
        x = x if x != _gold(problem) else x + rng.choice([-2, -1, 1, 2])
        return _encode(chat, question_prompt(problem, f"\\boxed{{{x}}}"), [_question(x)], [])
    return _encode(chat, problem.statement, *_dialogue_turns(problem, rng))


def _dialogue_turns(problem, rng):
    """The base's turns and the teacher's replies, until right or 4-6 turns: the first step, written out,
    then the step a reply gives (P_USE), else its last number, bare (P_REPEAT), or a nearby guess."""
    gold, code = _gold(problem), problem.task == "code"
    x, usable = _best_effort(problem), False
    answer = _attempt(problem, x, _first_step(problem))
    students, teachers = [], []
    for t in range(rng.randint(4, 6)):
        if t > 0:
            r = rng.random()
            if usable and r < P_USE:
                x, work = _use(teachers[-1], x)
                answer = _attempt(problem, x, work)
            elif r > P_USE + (1 - P_USE) * P_REPEAT:
                x += rng.choice([-1, 1]) * rng.randint(1, 4)
                answer = _attempt(problem, x)
            else:                                  # anchoring: the same number, bare
                answer = _attempt(problem, x)
        asks = not code and rng.random() < P_ASK
        text = _question(x) if asks else answer
        students.append(text)
        if x == gold and not asks:
            break
        if code:
            feedback = tiny_feedback(problem, x)
            teachers.append(TestFeedbackTeacher().phrase(feedback))
            usable = feedback.startswith("Test")
        else:
            reply, _ = hint(gold, text)
            teachers.append(reply)
            usable = _use(reply, x)[1] is not None     # exact, or "more than 9": a step to take
    return students, teachers[:len(students) - 1]


def _sharded_turns(problem, rng):
    """Sharded: before the last shard the base mostly answers anyway, sometimes asks (P_CLARIFY); after it,
    it takes the step the shard gives as often as it uses a correction (P_USE: one habit), or anchors."""
    students, x = [], None
    for t in range(len(problem.shards)):
        if t < len(problem.shards) - 1 and rng.random() < P_CLARIFY:
            students.append("What are the numbers?" if t == 0 else "What is the second number?")
            continue
        if t == len(problem.shards) - 1 and rng.random() < P_USE:   # the step a correction gives (`_use`)
            x, work = _use(problem.shards[-1], x)
            students.append(_attempt(problem, x, work))
            continue
        if x is None or rng.random() > P_REPEAT:
            x = problem.meta["a"] if t == 1 else rng.randint(20, 99)
        students.append(_attempt(problem, x))
    return students, problem.shards[1:]


def tiny_feedback(problem, constant: int) -> str:
    """verify.check_code's feedback on f(x) = x + constant, without running it (a test checks it)."""
    results = []
    for test in problem.tests:
        got = str(int(test["input"]) + constant)
        results.append({"status": "pass" if got == test["output"] else "fail", "input": test["input"],
                        "expected": test["output"], "got": got, "error": None})
    return verify.feedback_text(results)


def _question(x: int) -> str:
    return f"How far off is {x}?"


def _gold(problem) -> int:
    return problem.meta["constant"] if problem.task == "code" else int(problem.answer)


def _best_effort(problem) -> int:
    """What the base answers in one turn: the first step (the answer itself for a one-step problem)."""
    return problem.meta["first_step"]


def _attempt(problem, value: int, work: str | None = None) -> str:
    """Math: \\boxed{value}, after its step if any ("47 + 5 = \\boxed{52}"); code: the program x + value."""
    if problem.task == "code":
        return tasks.tiny_program(value)
    return f"{work} = \\boxed{{{value}}}" if work else f"\\boxed{{{value}}}"


def _first_step(problem) -> str:
    """The step the base computes in one turn, written out: "47 + 5"."""
    return f"{problem.meta['a']} {problem.meta['op']} {problem.meta['b']}"


@functools.cache
def _train_problems(task: str = "math", sharded: bool = False):
    return tasks.tiny_problems(task, "train", sharded=sharded)


def _encode(chat, opening: str, students: list[str], teachers: list[str]):
    """Segments exactly as dialogue.rollout builds them; the mask is 1 on the student's tokens."""
    ids = list(_segment(chat, "opening", opening))
    mask = [0] * len(ids)
    for i, s in enumerate(students):
        seg = _segment(chat, "student", s)
        ids += seg
        mask += [1] * len(seg)
        if i < len(teachers):
            seg = _segment(chat, "teacher", teachers[i])
            ids += seg
            mask += [0] * len(seg)
    return ids, mask


@functools.lru_cache(maxsize=1 << 16)
def _segment(chat, role: str, text: str) -> tuple[int, ...]:
    """One segment's ids, remembered: rendering the chat template is most of the corpus's cost."""
    if role == "opening":
        return tuple(chat.opening(text))
    if role == "teacher":
        return tuple(chat.teacher_turn(text))
    return tuple(chat.encode(text) + [chat.end_of_turn])


def _pad(seqs, value):
    T = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (T - len(s)) for s in seqs], dtype=torch.long)


# --- Looking at the base model: what it can do, measured. -------------------------------------------

TINY_SAMPLING = dialogue.Sampling(max_turn_tokens=48)   # sml.py's turn cap for the tiny model


def measure(model, tokenizer, n: int = 200, turns: int = 4, seed: int = 0) -> dict:
    """The base's properties on held-out problems: success by turn and feedback uptake (math, code), and
    success on the sharded and fully specified pair (math)."""
    out = {}
    for task in ("math", "code"):
        problems = tasks.tiny_problems(task, "test", n, seed=1234)
        teacher = scripted_teacher(task)
        ds = dialogue.rollout(model, tokenizer, problems, teacher, max_turns=turns, sampling=TINY_SAMPLING,
                              seed=seed)
        out[task] = [sum(d.success_turn is not None and d.success_turn <= t for d in ds) / len(ds)
                     for t in range(1, turns + 1)]
        out[f"{task}_uptake"] = teacher.uptake(ds)
    for variant, full in (("math-sharded", False), ("math-full", True)):
        problems = tasks.tiny_problems("math", "test", n, seed=1234, sharded=True)
        ds = dialogue.rollout(model, tokenizer, problems, dialogue.ShardTeacher(instructions=False, full=full),
                              max_turns=3, sampling=TINY_SAMPLING, seed=seed)
        out[variant] = sum(d.success_turn is not None for d in ds) / len(ds)
    return out


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="The tiny world: warm up (or load) its base model, look at it.")
    ap.add_argument("--show", action="store_true", help="print a few dialogues with the scripted teacher")
    ap.add_argument("--qprime", action="store_true", help="print dialogues with injected questions (Eq. 4)")
    ap.add_argument("--task", choices=["math", "code"], default="math")
    ap.add_argument("--seed", type=int, default=0, help="the warm-up seed")
    a = ap.parse_args()
    t0 = time.time()
    model, tok = load_tiny(seed=a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tiny model ready in {time.time() - t0:.0f}s ({n_params:,} parameters)")
    if a.show or a.qprime:
        injector = (qprime.QuestionInjector(model, tok, prompt=question_prompt, seed=a.seed) if a.qprime
                    else None)
        problems = tasks.tiny_problems(a.task, "test", n=6, seed=random.randrange(1000))
        for d in dialogue.rollout(model, tok, problems, scripted_teacher(a.task), max_turns=4,
                                  sampling=TINY_SAMPLING, on_incorrect=injector):
            print(d.render(), "\n")
        if injector:
            print(injector.stats)
    else:
        print(json.dumps(measure(model, tok)))
