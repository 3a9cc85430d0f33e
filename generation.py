"""Batched KV-cached generation: the sampling loop of every rollout (student, teacher, questions).

The paper (§4.2-4.3) samples the student's and the teacher's turns; this is how, for a batch of prompts:

    prefill   the left-padded prompts in one forward pass, filling a KV cache
    decode    one token per live row per step, through the cache
    trim      each row's tokens up to its stop token or budget

`generate(model, prompts, max_new_tokens, ...) -> list[list[int]]`: prompts are token-id lists of different
lengths; it returns each one's new tokens. Greedy (temperature 0) equals Hugging Face
`generate(do_sample=False)` token for token (tests/test_real_models.py).

Padding: prompts are left-padded into one batch (B, L), and position ids count real tokens only, so a
padded prompt computes exactly what it would alone.
The cache: each call allocates, per layer, one buffer of its whole length (longest prompt + largest budget,
what `max_batch_tokens` caps) and each step writes its column in place (`BufferLayer`), as gpt-fast's static
cache does; attention reads only the filled columns. Hugging Face's DynamicCache instead concatenates, copying
the whole cache at every step; its StaticCache attends over all of its columns, filled or not. Sliding-window
models keep the DynamicCache. The forward gets the cache by the name the installed transformers uses
(`cache`, or `past_key_values` before the rename).
Across calls: `caches` gives each prompt a PrefixCache, the keys and values of a dialogue so far (no
padding), which the next call reads instead of prefilling that prefix again (the common prefix of the
cached tokens and the prompt, so a rewritten turn is simply recomputed). The batch is built right-aligned:
each row's cached columns, then the last M columns fed through the model, M the longest uncached part;
a row with less that is new recomputes a few cached tokens instead of leaving a hole, so positions and
masks are those of a fresh prefill. When a row leaves the batch, its real columns are copied back out.
Identical prompts with nothing cached (a GRPO group's g openings) are prefilled once and their rows copied.
Models whose cache has sliding-window layers (Gemma 3) keep only a window of each layer's keys, so
their prompts are prefilled whole (`reuses_cache`). Greedy tokens equal a fresh prefill's
(tests/test_kv_reuse.py); sampled ones draw the same random numbers in the same order. That holds in
float32; in bfloat16 a cached key, computed in a batch of another shape, may round differently, so sampled
dialogues can part ways.
Speed: the loop asks the device for a value only every `sync_every` steps (16 on CUDA, where a sync
stalls the queue of kernels; every step on CPU, where it costs nothing); then it also drops finished
rows from the batch and the cache, so a few long replies don't make every row pay.
Memory: `max_batch_tokens` caps a batch's padded size, rows x (longest prompt + largest budget), which
is what its KV cache and its prefill's temporaries grow with; the prompts are then generated in
consecutive chunks within the cap (a prompt alone is always a chunk). Greedy chunks give exactly the
tokens of one batch. Sampled chunks draw, in order, from one generator seeded once, so a single chunk
is the whole batch's stream and the same cap gives the same samples.

    python -m bench.generate           # against every Hugging Face option: tokens/s, rows equal to ours

Deviations: none (the paper does not say how it samples).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer


@torch.inference_mode()   # like no_grad, and also skips autograd's version counters: cheaper small ops
def generate(model, prompts: list[list[int]], max_new_tokens: int | list[int], temperature: float = 1.0,
             top_p: float = 1.0, stop_token_ids=(), pad_token_id: int = 0, seed: int | None = None,
             sync_every: int | None = None, max_batch_tokens: int | None = None,
             caches: list[PrefixCache] | None = None) -> list[list[int]]:
    """Each prompt's new tokens (ending with its stop token if it stopped); temperature 0 is greedy.
    `max_new_tokens` may differ per prompt; chunks within `max_batch_tokens` share one seeded generator.
    `caches`: one PrefixCache per prompt, read (its common prefix with the prompt is not prefilled again)
    and then rewritten to hold the prompt and the new tokens but the last; ignored for models whose cache
    is not plain full attention (see `reuses_cache`)."""
    device = next(model.parameters()).device
    budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    sync_every = sync_every or (16 if device.type == "cuda" else 1)
    caches = caches if caches is not None and reuses_cache(model) else [None] * len(prompts)
    results = []
    for start, end in _chunks([len(p) for p in prompts], budgets, max_batch_tokens):
        results += _generate_batch(model, prompts[start:end], budgets[start:end], temperature, top_p,
                                   stop_token_ids, pad_token_id, gen, sync_every, caches[start:end])
    return results


def _generate_batch(model, prompts, budgets, temperature, top_p, stop_token_ids, pad_token_id, gen,
                    sync_every, caches):
    """generate() on one batch: prefill, a decode step per token (dropping finished rows), trim."""
    device = next(model.parameters()).device
    B, T = len(prompts), max(budgets)
    cache, logits, attention, next_pos = prefill(model, prompts, pad_token_id, caches, T)   # (B, V), (B, L), (B,)
    stop = torch.tensor(sorted(set(stop_token_ids)) or [-1], device=device)
    out = torch.full((B, T), pad_token_id, dtype=torch.long, device=device)       # (B, T)
    rows = torch.arange(B, device=device)          # which original prompt each live row is
    finished = torch.zeros(B, dtype=torch.bool, device=device)                    # (B_live,)
    last_step = torch.tensor(budgets, device=device) - 1                          # (B_live,)
    for step in range(T):
        token = _sample(logits, temperature, top_p, gen)                          # (B_live,)
        token = torch.where(finished, pad_token_id, token)
        out[rows, step] = token
        finished = finished | (token[:, None] == stop).any(-1) | (last_step <= step)
        if step + 1 == T:
            break
        if (step + 1) % sync_every == 0:           # the only host sync: stop, or shrink the batch
            live = (~finished).nonzero().squeeze(1)                               # (B_live',)
            if live.numel() == 0:
                break
            if live.numel() < rows.numel():
                _keep(cache, attention, rows, finished, out, prompts, budgets, stop_token_ids, caches)
                cache.batch_select_indices(live)
                rows, finished, token, last_step = rows[live], finished[live], token[live], last_step[live]
                attention, next_pos = attention[live], next_pos[live]
        logits, attention, next_pos = decode_step(model, cache, token, attention, next_pos)
    _keep(cache, attention, rows, torch.ones_like(finished), out, prompts, budgets, stop_token_ids, caches)
    return trim(out.tolist(), budgets, stop_token_ids)


def prefill(model, prompts: list[list[int]], pad_token_id: int, caches: list[PrefixCache | None] | None = None,
            max_new_tokens: int = 0):
    """Run the left-padded prompts through the model once, from where each one's PrefixCache ends; the cache
    has room for `max_new_tokens` more columns.
    Returns (cache, last logits (B, V), attention mask (B, L), next positions (B,)).

    Each row is right-aligned (left padding), and only the last M columns are fed, M the longest part of
    a prompt that its PrefixCache lacks; the columns before come from the PrefixCaches. A row whose new
    part is shorter than M computes a few of its cached tokens again, in columns the batch computes
    anyway: no row has a hole, so position ids and sliding windows see what a fresh prefill sees."""
    device = next(model.parameters()).device
    caches = caches or [None] * len(prompts)
    first = {}                    # a GRPO group's g openings are one prompt: prefill it once, then copy its rows
    for p in prompts:
        first.setdefault(tuple(p), len(first))
    if len(first) < len(prompts) and not any(c is not None and c.layers for c in caches):
        index = torch.tensor([first[tuple(p)] for p in prompts], device=device)        # (B,) into the distinct
        cache, logits, attention, next_pos = prefill(model, [list(p) for p in first], pad_token_id,
                                                     max_new_tokens=max_new_tokens)
        cache.batch_select_indices(index)
        return cache, logits[index], attention[index], next_pos[index]
    reused = [c.match(p) if c is not None else 0 for c, p in zip(caches, prompts)]
    M = max(len(p) - n for p, n in zip(prompts, reused))         # columns fed through the model
    taken = [max(len(p) - M, 0) for p in prompts]                 # tokens each row takes from its cache
    P = max(taken)                                                # columns taken from the caches
    input_ids = torch.full((len(prompts), M), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), P + M), dtype=torch.long)
    for i, (p, n) in enumerate(zip(prompts, taken)):
        input_ids[i, M - (len(p) - n):] = torch.tensor(p[n:], dtype=torch.long)
        attention[i, P + M - len(p):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)             # (B, M), (B, P + M)
    position = (attention.cumsum(-1) - 1).clamp(min=0)[:, P:]                     # (B, M) real tokens only
    cache = _new_cache(model, capacity=P + M + max_new_tokens)
    if P:
        _fill(cache, caches, taken, P)
    for c in caches:               # their tensors are in the batch now; generate rewrites them at the end
        if c is not None:
            c.layers = []
    logits = _forward(model, cache, input_ids, attention, position, logits_to_keep=1)[:, -1]   # (B, V)
    return cache, logits, attention, position[:, -1] + 1


def decode_step(model, cache, token: torch.Tensor, attention: torch.Tensor, next_pos: torch.Tensor):
    """Feed each live row's last token (B,) through the cache.
    Returns (next logits (B, V), attention mask (B, L + 1), next positions (B,))."""
    attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)      # (B, L + 1)
    logits = _forward(model, cache, token[:, None], attention, next_pos[:, None])[:, -1]     # (B, V)
    return logits, attention, next_pos + 1                                                   # ..., (B,)


def trim(out: list[list[int]], budgets: list[int], stop_token_ids) -> list[list[int]]:
    """Each row's tokens up to its budget and up to (and including) its first stop token."""
    stop_set, results = set(stop_token_ids), []
    for seq, n in zip(out, budgets):
        seq = seq[:n]
        for j, tok in enumerate(seq):
            if tok in stop_set:
                seq = seq[:j + 1]
                break
        results.append(seq)
    return results


# ---- keys and values kept between calls ------------------------------------------------------------

@dataclass
class PrefixCache:
    """The keys and values of a sequence's first tokens, one (kv heads, n, head dim) pair per layer, kept
    between generate calls (a dialogue's turns). No padding is stored: a batch pads its rows afresh."""
    ids: list[int] = field(default_factory=list)                 # the n tokens whose keys and values these are
    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list, repr=False)

    def match(self, prompt: list[int]) -> int:
        """How many of the prompt's first tokens are cached (the common prefix; the rest is dropped). The last
        token of the prompt is always fed again: its logits are what the next token is sampled from."""
        n = min(len(self.ids), len(prompt) - 1) if self.layers else 0
        if self.ids[:n] != prompt[:n]:
            n = next(i for i in range(n) if self.ids[i] != prompt[i])
        self.ids = self.ids[:n]
        return n

    def clear(self):
        self.ids, self.layers = [], []


def reuses_cache(model) -> bool:
    """Whether PrefixCaches can serve this model: every layer of its cache is plain full attention. A
    sliding-window layer (Gemma 3) keeps only its window, so a dialogue's earlier keys are gone; such
    models prefill each turn whole."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


def _fill(cache, caches, taken: list[int], P: int):
    """Put each row's first `taken` cached keys and values, right-aligned, into P columns of a fresh cache."""
    first = next(c for c, n in zip(caches, taken) if n)
    for layer, (k0, v0) in enumerate(first.layers):
        keys = k0.new_zeros((len(taken), k0.shape[0], P, k0.shape[2]))           # (B, kv heads, P, head dim)
        values = v0.new_zeros((len(taken), v0.shape[0], P, v0.shape[2]))
        for i, (c, n) in enumerate(zip(caches, taken)):
            if n:
                keys[i, :, P - n:], values[i, :, P - n:] = c.layers[layer][0][:, :n], c.layers[layer][1][:, :n]
        cache.update(keys, values, layer)


def _keep(cache, attention, rows, leaving, out, prompts, budgets, stop_token_ids, caches):
    """Copy each leaving row's keys and values into its PrefixCache: the prompt and its new tokens but the
    last (sampled, never fed). Its real tokens are the last columns of the attention mask, from the first 1."""
    if all(c is None for c in caches):
        return
    starts = (attention.shape[1] - attention.sum(-1)).tolist()                    # (B_live,) first real column
    rows = rows.tolist()
    for b in leaving.nonzero().squeeze(1).tolist():
        r = rows[b]
        if caches[r] is None:
            continue
        new = trim([out[r].tolist()], [budgets[r]], stop_token_ids)[0]      # this row only: it runs every shrink
        ids = prompts[r] + new[:-1]
        s = starts[b]
        caches[r].ids = ids
        n = len(ids)
        caches[r].layers = [(layer.keys[b, :, s:s + n].clone(), layer.values[b, :, s:s + n].clone())
                            for layer in cache.layers]                           # (kv heads, n, head dim) each


# ---- the cache API in one place ----------------------------------------------------------------------

class BufferLayer(DynamicLayer):
    """One layer's keys and values, written in place into a buffer of the call's whole length (prompt + budget),
    allocated at the first write. A DynamicLayer grows by torch.cat instead, copying the whole cache at every
    decode step; here a step writes one column and attention reads a view of the filled ones."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def update(self, key_states, value_states, *args, **kwargs):                 # (B, kv heads, t, head dim)
        if not self.is_initialized:
            B, H, _, D = key_states.shape
            self.key_buffer = key_states.new_empty((B, H, self.capacity, D))   # (B, kv heads, capacity, head dim)
            self.value_buffer = value_states.new_empty((B, H, self.capacity, value_states.shape[-1]))
            self.device, self.is_initialized = key_states.device, True
        n = self.length + key_states.shape[-2]
        if n > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions and was given a {n}th: size it for the "
                             f"prompt and every token to come (prefill's max_new_tokens)")
        self.key_buffer[:, :, self.length:n] = key_states
        self.value_buffer[:, :, self.length:n] = value_states
        self.length = n
        self.keys, self.values = self.key_buffer[:, :, :n], self.value_buffer[:, :, :n]   # (B, kv heads, n, head dim)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
            self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]


def _new_cache(model, capacity: int):
    """A cache for one generate call: a BufferLayer of `capacity` columns per layer where every layer is plain
    full attention; else (sliding windows) Hugging Face's DynamicCache, which keeps only each window."""
    if not reuses_cache(model):
        return DynamicCache(config=model.config)
    return Cache(layers=[BufferLayer(capacity) for _ in range(model.config.num_hidden_layers)])


def _forward(model, cache, input_ids, attention, position, **kw) -> torch.Tensor:
    """Logits (B, T', V) of input_ids (B, T'), appending their keys and values to the cache."""
    return model(input_ids=input_ids, attention_mask=attention, position_ids=position, use_cache=True,
                 **{_cache_argument(type(model)): cache}, **kw).logits


@functools.lru_cache(maxsize=None)
def _cache_argument(model_class) -> str:
    """The forward's name for the cache: `cache` since transformers renamed it (5.x, where the old name
    `past_key_values` warns that it goes away in 5.40), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _chunks(lengths: list[int], budgets: list[int], max_tokens: int | None) -> list[tuple[int, int]]:
    """(start, end) of consecutive prompts whose padded batch, rows x (longest prompt + largest budget),
    stays within max_tokens; None: one chunk of all."""
    if max_tokens is None:
        return [(0, len(lengths))]
    spans, start, longest, most = [], 0, 0, 0
    for i, (n, b) in enumerate(zip(lengths, budgets)):
        if i > start and (i + 1 - start) * (max(longest, n) + max(most, b)) > max_tokens:
            spans.append((start, i))
            start, longest, most = i, 0, 0
        longest, most = max(longest, n), max(most, b)
    return spans + [(start, len(lengths))]


def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen) -> torch.Tensor:
    """Next token per row from logits (B, V): greedy at temperature 0, else nucleus sampling."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)                  # (B, V)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p     # keep the smallest prefix whose mass reaches top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(1)
