"""The embedded tiny world: a character-level tokenizer, a small Llama, its warm-up into a base model, and the
scripted teachers it talks to. It stands in for the paper's Gemma-3-12B-IT on a laptop CPU.

What the base model can do, and what it cannot
  The tiny student is a small Llama-architecture model that reads characters, warmed up for a few minutes
  on a corpus written below. It learns one exact skill: one step of adding or subtracting a one-digit number,
  which it writes out ("37 + 5 = \\boxed{42}"). The problems take two steps, "What is 47 + 5 - 3?", and the corpus
  never shows it doing two at once: its best effort is the first step, "47 + 5 = \\boxed{52}". So no such problem
  is solved in one turn, and single-turn RL has nothing to reinforce on them: the right answer is never among the
  answers it samples. The second step is exactly what the teacher's feedback makes possible. In about 4 problems
  of 10 the second number is "far", 10..36 ("What is 47 + 5 - 23?"): the student can only get there 9 at a time.
  (A quarter of the training problems take one step, which the base solves at turn 1, as a real dataset has easy
  problems: `tasks.tiny_training_problems`. The held-out curves are on two-step problems only.)

The teacher, and what the base does with its feedback
  The math teacher knows the answer and never states it. To a wrong answer it says how far off it is: "52 is 3 too
  high." when that is one step (1-9), else "52 is more than 9 too high." A student who uses the reply takes the
  one step it knows, "52 - 3 = \\boxed{49}", and is right; from "more than 9" its step is 9 ("52 - 9 =
  \\boxed{43}"), which gets closer without arriving, so a far problem takes 2-4 replies, each of which the student
  must use. A question, "How far off is 52?", is answered more fully: beyond one step the teacher adds a number
  one step from the answer, "52 is more than 9 too high, and 34 is 7 too high.", whose step ("34 - 7 =
  \\boxed{27}") lands on it. So on a far problem a question pays: the answer after it can be right, where the
  answer after "more than 9" cannot (Fig. 5). The code teacher relays the first failing test of the student's
  program ("Test 1 (fail): input '1' | expected '50' | got '53'").
  The corpus writes the base as a student who mostly ignores feedback: after a reply that carries information,
  its next answer uses it only P_USE of the time; otherwise it repeats its last number, bare (anchoring), or
  guesses nearby. It seldom asks (P_ASK). `HintTeacher.uptake` measures exactly how often a student's next
  answer is the one the reply points to: for the base 0.09 (0.63 after MT-RL), what SML should raise.
  The corpus also teaches the step from a reply on its own, a reply as the opening and the step it gives
  ("copy"), so that the skill is reliable while the habit stays rare; without it the base miscopied the
  distance in 85-90% of its attempts to use a reply, and RL had almost nothing to amplify.

Why SML should help, and where
  * Fig. 1: using feedback is a skill the base has (the step is the one it knows, and it shows the habit now
    and then) but seldom uses. Multi-turn RL rewards the dialogues in which it did, so later turns improve,
    and keep improving past the training horizon N = 4: a far problem needs up to four replies, and a student
    that still guesses or anchors now and then needs more; the step it learned is the same at every turn.
    (v9, without far problems, had MT-RL at 0.97 by turn 4, leaving nothing for later turns.) Single-turn RL
    (N = 1) only sees turn 1, where only the one-step problems, which the base already solves, pay.
  * Fig. 3: after SML the loss on the right answer, written as the step from the teacher's last reply
    (`reference_dialogues`), is low once a reply has pinned the answer: 0.04-0.10 per token after MT-RL against
    the base's 0.31-0.40, level over turns 2-5 (evaluate.answer_loss, "placed"). The paper's shape does not
    appear: every curve, the base's too, falls far from turn 1 (before any reply no model can know a two-step
    answer, and the base uses a reply now and then, P_USE), and after turn 2 only because fewer contexts follow
    "more than 9". One exact reply pins the answer, so nothing accumulates turn by turn; a base curve as flat as
    the paper's would need a base that partly solves a problem at its first turn.
  * Table 1: sharded problems ("Compute a sum." / "The first number is 37." / "37 is 5 too low.") need the
    same habit: the base computes 37 + 5 when asked in one turn, but in pieces it answers early and then
    anchors on its early answer. The lazy user's last shard is phrased as the teacher phrases a correction, so
    that the skill SML trains (take the step the last message gives) is the one the sharded task needs, and
    the base takes it as seldom as it uses a correction (P_USE). A 12B model may carry a skill across
    phrasings; this one did not: with "The second number is 5." (v13) MT-RL's sharded success stayed level
    with the base's (0.097 vs 0.078); in the teacher's words it rose (0.282 vs 0.073, 3 seeds).
  * Fig. 5: on a far problem, a question at turn 1 and then the step its reply gives solve it at turn 2, where
    answering takes 3-4 turns (on a near problem a question costs a turn and gains nothing, and on a one-step
    training problem it costs the reward the first answer would have earned). So a question pays where it
    should, and RL reinforces it once it is sampled: the base asks seldom (P_ASK, 1% of its turns), so that, as
    in the paper, SML alone seldom finds asking and Q-priming's injected questions are what teach it. (With 4%,
    MT-RL found it: 76% of its dialogues asked, and it asked instead of answering problems it could solve.)
  * Fig. 4: the code task is the same problems as programs, so math and code share the skill.

    python tinyworld.py                 # warm up (or load) the base model and measure it (success, uptake, sharded)
    python tinyworld.py --seed 1        # ... another warm-up seed (the spread of the base over seeds)
    python tinyworld.py --show          # print a few dialogues with the scripted teacher (--task code: the code task)
    python tinyworld.py --qprime        # ... with Q-priming's injected questions

The result is cached on disk (save_pretrained format, ~/.cache/sml or $SML_CACHE) and deterministic given the
seed. Deviations: the teacher is scripted, not an LLM; the base's habits (one step per answer, ignore feedback,
rarely ask) are written into its warm-up corpus, where a real base model has them from pretraining.
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

VERSION = 14         # bump when the corpus or the model changes: the cache key includes it
SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|unk|>"]
CHARS = [chr(c) for c in range(32, 127)] + ["\n"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")

# The base student's habits in the warm-up corpus (see the docstring).
P_USE = 0.1          # after a reply that carries information (or the sharded task's last shard), the next
                     # answer uses it
P_REPEAT = 0.6       # ... otherwise it repeats its last answer (anchoring), else it guesses nearby
P_ASK = 0.01         # a turn asks "How far off is N?" instead of answering (seldom: see Fig. 5 below)
P_CLARIFY = 0.2      # sharded: a turn before the last shard asks for the numbers instead of answering
# "copy" teaches the step from a reply on its own (the reply as the opening, no dialogue around it): the skill
# of using feedback, reliable, while the habit of using it in a dialogue stays rare (P_USE). Without it the
# base copies the teacher's distance wrong in 85-90% of its attempts to use it, and RL has little to amplify.
MIX = {"math": 0.42, "code": 0.14, "sharded": 0.08, "sharded-code": 0.04, "question": 0.05, "solve": 0.12,
       "solve-code": 0.05, "copy": 0.10}
COPY_FAR, COPY_ASKED = 0.5, 0.7   # "copy": how often the reply is to a far number, and to a question
ARITHMETIC_STEPS = 500   # the first steps teach the arithmetic alone (problem -> answer), then the dialogues
ARITHMETIC_MIX = {"solve": 0.85, "solve-code": 0.15}   # some programs from the start: their characters are new


# ---------------------------------------------------------------------------------------------
# The scripted teachers: they hold the private knowledge and never state the answer.
# ---------------------------------------------------------------------------------------------

class HintTeacher:
    """Math: to a wrong answer, how far off it is when that is one step ("52 is 3 too high."), else "more than 9
    too high"; to "How far off is N?" beyond one step it also names a number one step from the answer (`hint`).
    The tiny student gets the bare problem as its opening (it never learned to read instructions)."""

    def opening(self, problem) -> str:
        return problem.statement

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        return [hint(int(d.problem.answer), d.student_turns()[-1]["text"])[0] for d in dialogues]

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        """Feedback uptake: of the student turns that the teacher answered with the answer's place (an exact
        distance, or a question's fuller reply; a bare "more than 9" does not pin it) and that were followed by
        another answer, the fraction whose next answer lies where the reply said the answer is. (A next turn that
        asks instead of answering is not a case.) Returns (rate or None, cases)."""
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
    """The math teacher's reply to one student turn, and the interval [lo, hi] in which the reply says the answer
    lies (None when it says nothing about the answer). Also writes the warm-up corpus and measures uptake."""
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
    """"52 is 3 too high.": how far off, exactly, when it is a one-digit distance (the one step the student can
    take onto the answer); beyond that "52 is more than 9 too high.", whose step (52 - 9) gets closer but does
    not arrive, so the answer's place is not pinned (None). A question is answered more fully: beyond one step
    the teacher adds the number that the 9-steps would reach, one step from the answer, "52 is more than 9 too
    high, and 34 is 7 too high.", whose step ("34 - 7 = \\boxed{27}") lands on it. It never states the answer: a
    distance that equals it (or -x for x = -gold) is said without the number ("That is 3 too high.")."""
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
    """How the base uses a reply that carries information, and the step it writes down: it moves the last number
    the teacher named by the distance it gave ("52 is 3 too high." -> 49, written "52 - 3 = \\boxed{49}"; "52 is
    more than 9 too high, and 34 is 7 too high." -> "34 - 7 = \\boxed{27}"); for code it subtracts the input of the
    relayed test from its expected output ("input '1' | expected '50'" -> 49)."""
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
    """Code: the teacher's private knowledge k_t is what the public tests say about the student's latest
    program (§4.1, §5.1); it relays the first line of that feedback (the first failing test), templated:
    "Test 1 (fail): input '0' | expected '85' | got '87'"."""

    def opening(self, problem) -> str:
        return problem.statement

    def reply(self, dialogues: list[Dialogue]) -> list[str]:
        return [self.phrase(_latest_feedback(d) or "No program was given yet.") for d in dialogues]

    def phrase(self, feedback: str) -> str:
        """verify.check_code's feedback on the latest program, as the teacher says it."""
        return feedback.split("\n")[0]

    def uptake(self, dialogues: list[Dialogue]) -> tuple[float | None, int]:
        """Of the programs whose relayed feedback named a failing test and that were followed by another program,
        the fraction whose next program passes that test. Returns (rate or None, cases)."""
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
    """The tiny world's teacher for a task: how far off for math, the first failing test for code. (Its sharded
    and fully specified variants get the lazy user, dialogue.ShardTeacher, with no instructions.)"""
    return TestFeedbackTeacher() if task == "code" else HintTeacher()


def question_prompt(problem, attempt: str, feedback: str | None = None) -> str:
    """Q-priming's question-writing prompt (qprime.QUESTION_PROMPT) with the tiny world's private knowledge, and
    without its last line, the instruction: a model that never learned to read instructions cannot use it, and
    it made the prompt twice as long, in a stage that writes ~17,000 questions per seed."""
    prompt = qprime.QUESTION_PROMPT.format(problem=problem.statement, attempt=attempt,
                                           private_knowledge=f"the answer is {problem.answer}")
    return prompt.rsplit("\n", 1)[0]


def reference_dialogues(problems, tokenizer, n_turns: int, seed: int = 0) -> list[Dialogue]:
    """Fig. 3's shared contexts: for every problem, a dialogue of n_turns wrong answers of the base's kind and
    the math teacher's replies, with segments exactly as dialogue.rollout builds them. The first answer is the
    first step, written out (the base's); each later one is a near miss (70%) or repeats the last. Every model
    is scored on the prefixes of these (evaluate.reference_contexts).

    Each teacher message also names the correct reply in the form this world's student writes an answer, a
    worked step ("answer_form"): after the opening the whole sum ("47 + 5 - 3 = \\boxed{49}", which no model
    here computes in one turn), after a reply the step from it ("52 is 3 too high." -> "52 - 3 = \\boxed{49}").
    Scoring a bare \\boxed{49} instead would score a form that a student who uses the reply does not write.
    After "52 is more than 9 too high." no step reaches the answer, and the bare \\boxed{49} is scored.
    Each teacher message also says whether it "placed" the answer (an exact distance does; the opening and "more
    than 9" do not), so that Fig. 3 can be read at a fixed kind of context (evaluate.answer_loss)."""
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
            d.messages.append({"role": "student", "turn": t, "text": text, "correct": False, "answer": str(x)})
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


# ---------------------------------------------------------------------------------------------
# The model: characters in, a small Llama, cached after its warm-up.
# ---------------------------------------------------------------------------------------------

def cache_dir(seed: int, steps: int) -> Path:
    root = Path(os.environ.get("SML_CACHE", Path.home() / ".cache" / "sml"))
    return root / f"tiny-v{VERSION}-seed{seed}" if steps == WARMUP_STEPS else root / f"tiny-v{VERSION}-seed{seed}-steps{steps}"


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


HIDDEN, LAYERS = 64, 4
INIT_STD = 0.08   # Hugging Face's 0.02 leaves a 64-wide model's attention uniform for ~400 steps: a plateau whose
                  # end (the arithmetic "clicking") moved with float-level differences between machines


def build_model(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=3 * HIDDEN,
                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=INIT_STD,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


# ---------------------------------------------------------------------------------------------
# The warm-up: next-token prediction on the student's turns of generated dialogues.
# ---------------------------------------------------------------------------------------------

WARMUP_STEPS = 1200
DIALOGUE_BATCH = 24    # phase 2's dialogues are long: with 24 a step the warm-up takes 3.8 min on 2 cores (40: 5.6,
                       # past the 5 we aim for; the base it gave answered sharded problems better)


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
        logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, x[:, 1:, None]).squeeze(-1)  # (B, T-1)
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


# ---------------------------------------------------------------------------------------------
# The corpus: the base student's dialogues, written by its habits (P_USE, P_REPEAT, P_ASK, ...).
# ---------------------------------------------------------------------------------------------

def corpus_sample(rng: random.Random, chat, mix: dict = MIX):
    """One training sequence (ids, mask): a math or code dialogue, a sharded dialogue, a question-writing
    prompt, a teacher's reply -> the step it gives, or plain problems -> the base's answers (its arithmetic,
    learned first)."""
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
        return _encode(chat, chain[0].statement, [_attempt(p, _best_effort(p), _first_step(p)) for p in chain],
                       [p.statement for p in chain[1:]])
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
    """The base student's turns and the scripted teacher's replies, until right or 4-6 turns. Its first answer is
    the first step, written out. After a reply that gives a step it uses it (P_USE: "52 - 3 = \\boxed{49}", or
    "52 - 9 = \\boxed{43}" after "more than 9"), else it repeats its last number (P_REPEAT; "\\boxed{52}",
    without the work of its first step) or guesses nearby (a bare number). A repeat that restated the first step
    word for word taught the base to answer the first reply with its first step again: its uptake right after
    that reply was 0.03 (v8)."""
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
    """Sharded (the lazy user reveals one shard per turn): before the last shard the base mostly answers anyway
    (a guess, or the number it was just given), sometimes asks (P_CLARIFY); after it, it takes the step the last
    shard gives ("37 is 5 too low." -> "37 + 5 = \\boxed{42}") as often as it uses a teacher's correction
    (P_USE: one habit, so that SML's training of it carries over), or anchors on its earlier answer."""
    students, x = [], None
    for t in range(len(problem.shards)):
        if t < len(problem.shards) - 1 and rng.random() < P_CLARIFY:
            students.append("What are the numbers?" if t == 0 else "What is the second number?")
            continue
        if t == len(problem.shards) - 1 and rng.random() < P_USE:   # the step a correction gives, as in `_use`
            x, work = _use(problem.shards[-1], x)
            students.append(_attempt(problem, x, work))
            continue
        if x is None or rng.random() > P_REPEAT:
            x = problem.meta["a"] if t == 1 else rng.randint(20, 99)
        students.append(_attempt(problem, x))
    return students, problem.shards[1:]


def tiny_feedback(problem, constant: int) -> str:
    """What verify.check_code says about the program f(x) = x + constant on a tiny code problem, without
    running it (the warm-up writes thousands; a test checks this against the sandbox)."""
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
    """The student's answer: for math \\boxed{value}, after the step it computed when it computed one
    ("47 + 5 = \\boxed{52}"); for code the program returning x + value."""
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


# ---------------------------------------------------------------------------------------------
# Looking at the base model: what it can do, measured.
# ---------------------------------------------------------------------------------------------

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
    ap = argparse.ArgumentParser(description="The tiny world: warm up (or load) its base model and look at it.")
    ap.add_argument("--show", action="store_true", help="print a few dialogues with the scripted teacher")
    ap.add_argument("--qprime", action="store_true", help="print a few dialogues with injected questions (Eq. 4)")
    ap.add_argument("--task", choices=["math", "code"], default="math")
    ap.add_argument("--seed", type=int, default=0, help="the warm-up seed")
    a = ap.parse_args()
    t0 = time.time()
    model, tok = load_tiny(seed=a.seed)
    print(f"tiny model ready in {time.time() - t0:.0f}s ({sum(p.numel() for p in model.parameters()):,} parameters)")
    if a.show or a.qprime:
        injector = qprime.QuestionInjector(model, tok, prompt=question_prompt, seed=a.seed) if a.qprime else None
        problems = tasks.tiny_problems(a.task, "test", n=6, seed=random.randrange(1000))
        for d in dialogue.rollout(model, tok, problems, scripted_teacher(a.task), max_turns=4,
                                  sampling=TINY_SAMPLING, on_incorrect=injector):
            print(d.render(), "\n")
        if injector:
            print(injector.stats)
    else:
        print(json.dumps(measure(model, tok)))
