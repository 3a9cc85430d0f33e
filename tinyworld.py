"""The embedded tiny world: a character-level tokenizer, a small Llama, and its warm-up into a base model.

No 12B model fits on a laptop CPU, so `--model tiny` (the default) stands in for the paper's
Gemma-3-12B-IT: a ~0.2M-parameter Llama-architecture model that reads characters, built locally and
warmed up on the tiny world (a two-digit number plus or minus a one-digit one; a scripted teacher
that hints one digit at a time). The warm-up has two phases:
  1. the arithmetic alone, ARITHMETIC_STEPS steps of problem -> answer, several problems chained in
     one chat so that it still holds far into a long dialogue (a model this small learns it abruptly,
     after ~1000 steps);
  2. dialogues written to look like a base model of the paper: right on the first try only some of
     the time, and only sometimes *using* the teacher's hints (P_USE_HINT; otherwise it guesses
     again), so that learning from feedback is left for SML to teach; plus sharded dialogues (the
     lazy user) and Q-priming's question-writing prompt, so every stage has something to start from.
The result is cached on disk (save_pretrained format, ~/.cache/sml or $SML_CACHE) and deterministic
given the seed. Measured: 291 s on 2 CPU cores.

    python tinyworld.py            # warm up (or load) the tiny base model and report its accuracy

Deviation: a model this small, in this budget, learns the arithmetic but hardly learns to copy a
hinted digit into its next answer, so on the tiny world SML's gains come mostly from the first turn.
"""
from __future__ import annotations

import functools
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import torch

VERSION = 4          # bump when the corpus or the model changes: the cache key includes it
SPECIALS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|unk|>"]
CHARS = [chr(c) for c in range(32, 127)] + ["\n"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")

# The base student's habits in the warm-up corpus (see the module docstring).
P_FIRST_CORRECT = 0.6    # the first attempt is right (before the model's own arithmetic errors)
P_USE_HINT = 0.3         # a later attempt follows the teacher's digit hints
P_LATER_CORRECT = 0.1    # a later attempt is right by a fresh try
P_REPEAT = 0.3           # a later wrong attempt repeats the previous one
P_ASK = 0.03             # a turn asks about a digit instead of answering
MIX = {"math": 0.7, "sharded": 0.12, "question": 0.08, "solve": 0.1}
ARITHMETIC_STEPS = 800   # the first steps teach the arithmetic alone (problem -> answer), then the dialogues


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


def build_model(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


# ---------------------------------------------------------------------------------------------
# The warm-up: next-token prediction on the student's turns of generated dialogues.
# ---------------------------------------------------------------------------------------------

WARMUP_STEPS = 1400


def warm_up(path: Path, seed: int = 0, steps: int = WARMUP_STEPS, batch_size: int = 64, lr: float = 3e-3,
            progress: bool = True):
    """Train a fresh tiny model on the corpus and save it (atomically) to `path`."""
    from tqdm.auto import tqdm
    from dialogue import ChatFormat
    import tasks
    t0 = time.time()
    random.seed(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    chat = ChatFormat(tokenizer)
    problems = tasks.tiny_math_problems("train")
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    model.train()
    bar = tqdm(range(steps), desc="warming up the tiny model (once; cached)", disable=not progress)
    pool = []
    for step in bar:
        for g in opt.param_groups:   # linear warm-up, cosine decay
            g["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        if not pool:   # batches of similar lengths: padding to the longest costs ~2.5x otherwise
            mix = {"solve": 1.0} if step < ARITHMETIC_STEPS * steps // WARMUP_STEPS else MIX
            samples = sorted((corpus_sample(rng.choice(problems), chat, rng, mix) for _ in range(8 * batch_size)),
                             key=lambda s: len(s[0]))
            pool = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
            rng.shuffle(pool)
        ids, mask = zip(*pool.pop())
        x, m = _pad(ids, tokenizer.pad_token_id), _pad(mask, 0)                      # (B, T)
        logits = model(input_ids=x, attention_mask=(x != tokenizer.pad_token_id).long()).logits
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
                                                 "final_loss": loss.item(), "seconds": time.time() - t0}))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def corpus_sample(problem, chat, rng: random.Random, mix: dict = MIX):
    """One training sequence (ids, mask): a dialogue, a sharded dialogue, a question-writing prompt,
    or a plain problem -> correct answer pair (the arithmetic itself, learned first)."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    if kind == "solve":   # a few problems in one chat, so the arithmetic also works far into a dialogue
        chain = [problem] + [rng.choice(_train_problems()) for _ in range(rng.randint(0, 3))]
        return _encode(chat, chain[0].statement, [f"\\boxed{{{p.answer}}}" for p in chain],
                       [p.statement for p in chain[1:]])
    if kind == "question":
        import qprime
        attempt = f"\\boxed{{{_wrong(int(problem.answer), rng)}}}"
        prompt = qprime.question_prompt(problem, attempt)
        wrong_digit = "last" if attempt[-2] != problem.answer[-1] else "tens"
        return _encode(chat, prompt, [f"What is the {wrong_digit} digit?"], [])
    if kind == "sharded":
        return _encode(chat, problem.shards[0], *_sharded_turns(problem, rng))
    return _encode(chat, problem.statement, *_math_turns(problem, rng))


def _math_turns(problem, rng):
    """The base student's attempts and the scripted teacher's replies, until correct or 4-6 turns."""
    from dialogue import hint_reply
    y, gold = int(problem.answer), problem.answer
    students, teachers, prev, known = [], [], None, {}
    for t in range(rng.randint(4, 6)):
        if rng.random() < P_ASK:
            text = f"What is the {rng.choice(['last', 'tens'])} digit?"
        else:
            if prev is None:
                x = y if rng.random() < P_FIRST_CORRECT else _wrong(y, rng)
            else:
                r = rng.random()
                if r < P_USE_HINT:
                    x = _apply_hints(prev, known)
                elif r < P_USE_HINT + P_LATER_CORRECT:
                    x = y
                else:
                    x = prev if rng.random() < P_REPEAT else _wrong(y, rng)
            prev, text = x, f"\\boxed{{{x}}}"
        students.append(text)
        if text == f"\\boxed{{{y}}}":
            break
        reply = hint_reply(gold, text)
        for place, k in (("last", -1), ("tens", -2)):
            if f"{place} digit is" in reply:
                known[k] = reply[-2]
        teachers.append(reply)
    return students, teachers[:len(students) - 1]


def _sharded_turns(problem, rng):
    """Before all shards are in, the base student mostly guesses (premature answers), sometimes asks."""
    y = int(problem.answer)
    students = []
    for t in range(len(problem.shards)):
        if t < len(problem.shards) - 1:
            ask = rng.random() < 0.25
            students.append("What are the numbers?" if ask else f"\\boxed{{{rng.randint(20, 150)}}}")
        else:
            students.append(f"\\boxed{{{y if rng.random() < P_FIRST_CORRECT else _wrong(y, rng)}}}")
    return students, problem.shards[1:]


@functools.cache
def _train_problems():
    import tasks
    return tasks.tiny_math_problems("train")


def _wrong(y: int, rng) -> int:
    """A near miss: the last digit wrong (60%), or the tens off by one (40%)."""
    if rng.random() < 0.6:
        return y - y % 10 + rng.choice([d for d in range(10) if d != y % 10])
    return y + 10 if y < 20 or rng.random() < 0.5 else y - 10


def _apply_hints(prev: int, known: dict) -> int:
    digits = list(str(prev))
    for k, d in known.items():
        if len(digits) >= -k:
            digits[k] = d
    return int("".join(digits))


def _encode(chat, opening: str, students: list[str], teachers: list[str]):
    """Segments exactly as dialogue.rollout builds them; the mask is 1 on the student's tokens."""
    ids = list(chat.opening(opening))
    mask = [0] * len(ids)
    for i, s in enumerate(students):
        seg = chat.encode(s) + [chat.end_of_turn]
        ids += seg
        mask += [1] * len(seg)
        if i < len(teachers):
            seg = chat.teacher_turn(teachers[i])
            ids += seg
            mask += [0] * len(seg)
    return ids, mask


def _pad(seqs, value):
    T = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (T - len(s)) for s in seqs], dtype=torch.long)


if __name__ == "__main__":
    import dialogue
    import tasks
    t0 = time.time()
    model, tok = load_tiny(seed=0)
    print(f"tiny model ready in {time.time() - t0:.0f}s ({sum(p.numel() for p in model.parameters()):,} parameters)")
    problems = tasks.tiny_math_problems("test", n=200, seed=0)
    ds = dialogue.rollout(model, tok, problems, dialogue.HintTeacher(), max_turns=4, temperature=1.0, progress=True)
    for t in range(1, 5):
        print(f"solved by turn {t}: {sum(d.success_turn is not None and d.success_turn <= t for d in ds) / len(ds):.3f}")
