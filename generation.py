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
Speed: the loop asks the device for a value only every `sync_every` steps (16 on CUDA, where a sync
stalls the queue of kernels; every step on CPU, where it costs nothing); then it also drops finished
rows from the batch and the cache, so a few long replies don't make every row pay.
Memory: `max_batch_tokens` caps a batch's padded size, rows x (longest prompt + largest budget), which
is what its KV cache and its prefill's temporaries grow with; the prompts are then generated in
consecutive chunks within the cap (a prompt alone is always a chunk). Greedy chunks give exactly the
tokens of one batch. Sampled chunks draw, in order, from one generator seeded once, so a single chunk
is the whole batch's stream and the same cap gives the same samples.

    python -m bench.generate           # against Hugging Face generate: tokens/s, and outputs checked equal

Deviations: none (the paper does not say how it samples). The cache is Hugging Face's dynamic one, not a
static one as in gpt-fast.
"""
from __future__ import annotations

import torch


@torch.inference_mode()   # like no_grad, and also skips autograd's version counters: cheaper small ops
def generate(model, prompts: list[list[int]], max_new_tokens: int | list[int], temperature: float = 1.0,
             top_p: float = 1.0, stop_token_ids=(), pad_token_id: int = 0, seed: int | None = None,
             sync_every: int | None = None, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Each prompt's new tokens (ending with its stop token if it stopped); temperature 0 is greedy.
    `max_new_tokens` may differ per prompt; chunks within `max_batch_tokens` share one seeded generator."""
    device = next(model.parameters()).device
    budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    sync_every = sync_every or (16 if device.type == "cuda" else 1)
    results = []
    for start, end in _chunks([len(p) for p in prompts], budgets, max_batch_tokens):
        results += _generate_batch(model, prompts[start:end], budgets[start:end], temperature, top_p,
                                   stop_token_ids, pad_token_id, gen, sync_every)
    return results


def _generate_batch(model, prompts, budgets, temperature, top_p, stop_token_ids, pad_token_id, gen,
                    sync_every):
    """generate() on one batch: prefill, a decode step per token (dropping finished rows), trim."""
    device = next(model.parameters()).device
    cache, logits, attention, next_pos = prefill(model, prompts, pad_token_id)   # (B, V), (B, L), (B,)
    B, T = len(prompts), max(budgets)
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
                cache.batch_select_indices(live)
                rows, finished, token, last_step = rows[live], finished[live], token[live], last_step[live]
                attention, next_pos = attention[live], next_pos[live]
        logits, attention, next_pos = decode_step(model, cache, token, attention, next_pos)
    return trim(out.tolist(), budgets, stop_token_ids)


def prefill(model, prompts: list[list[int]], pad_token_id: int):
    """Run the left-padded prompts through the model once.
    Returns (cache, last logits (B, V), attention mask (B, L), next positions (B,))."""
    device = next(model.parameters()).device
    L = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), L), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), L), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, L - len(p):] = torch.tensor(p, dtype=torch.long)
        attention[i, L - len(p):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)             # (B, L)
    position = (attention.cumsum(-1) - 1).clamp(min=0)                            # (B, L) real tokens only
    cache = _new_cache(model)
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


# The cache API in one place: transformers warns that the `past_key_values` argument will be removed.
def _new_cache(model):
    from transformers import DynamicCache
    return DynamicCache(config=model.config)


def _forward(model, cache, input_ids, attention, position, **kw) -> torch.Tensor:
    """Logits (B, T', V) of input_ids (B, T'), appending their keys and values to the cache."""
    return model(input_ids=input_ids, attention_mask=attention, position_ids=position,
                 past_key_values=cache, use_cache=True, **kw).logits


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
