"""Batched KV-cached generation: the sampling loop every rollout runs (student turns, model teachers, questions).

    prefill   the left-padded prompts in one forward pass, filling a KV cache
    decode    one token per live row per step, through the cache
    trim      each row's tokens up to its stop token or budget

`generate(model, prompts, max_new_tokens, ...) -> list[list[int]]`: prompts are token-id lists of different
lengths; it returns each one's new tokens. Greedy (temperature 0) equals Hugging Face `generate(do_sample=False)`
token for token (tests/test_real_models.py).

    python -m bench.generate           # against Hugging Face generate: tokens/s, and outputs checked equal
"""
from __future__ import annotations

import torch

@torch.inference_mode()   # like no_grad, and also skips autograd's version counters: cheaper small ops
def generate(model, prompts: list[list[int]], max_new_tokens: int | list[int], temperature: float = 1.0,
             top_p: float = 1.0, stop_token_ids=(), pad_token_id: int = 0, seed: int | None = None,
             sync_every: int | None = None, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Sample a continuation of each prompt; return each one's new tokens (ending with its stop token
    if it stopped). temperature=0 is greedy. `max_new_tokens` may differ per prompt.

    Prompts are left-padded into one batch (B, L); position ids count real tokens only, so a padded
    prompt computes exactly what it would alone. Each step feeds one token per row through the cache.
    Speed: the loop never asks the device for a value except every `sync_every` steps (16 on CUDA,
    where a sync stalls the queue of kernels; every step on CPU, where it costs nothing), when it also
    drops finished rows from the batch and the cache, so a few long replies don't make every row pay.
    Memory: `max_batch_tokens` caps a batch's padded size, rows x (longest prompt + largest budget), which
    is what its KV cache and its prefill's temporaries grow with; the prompts are then generated in
    consecutive chunks within the cap (a prompt alone is always a chunk). Greedy chunks give exactly the
    tokens of one batch. Seeds: the chunks draw, in order, from one generator seeded once with `seed`, so
    a single chunk is the whole batch's stream, and the same cap gives the same samples.
    """
    device = next(model.parameters()).device
    budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    sync_every = sync_every or (16 if device.type == "cuda" else 1)
    results = []
    for start, end in _chunks([len(p) for p in prompts], budgets, max_batch_tokens):
        results += _generate_batch(model, prompts[start:end], budgets[start:end], temperature, top_p,
                                   stop_token_ids, pad_token_id, gen, sync_every)
    return results


def _generate_batch(model, prompts, budgets, temperature, top_p, stop_token_ids, pad_token_id, gen, sync_every):
    """generate() on one batch: prefill the left-padded prompts, then decode one token per row per step."""
    device = next(model.parameters()).device
    B, T = len(prompts), max(budgets)
    L = max(len(p) for p in prompts)
    input_ids = torch.full((B, L), pad_token_id, dtype=torch.long)
    attention = torch.zeros((B, L), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, L - len(p):] = torch.tensor(p, dtype=torch.long)
        attention[i, L - len(p):] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)             # (B, L)
    position = (attention.cumsum(-1) - 1).clamp(min=0)                            # (B, L)
    budget = torch.tensor(budgets, device=device)                                 # (B,)
    stop = torch.tensor(sorted(set(stop_token_ids)) or [-1], device=device)

    from transformers import DynamicCache
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=position,
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]  # (B, V)
    out = torch.full((B, T), pad_token_id, dtype=torch.long, device=device)       # (B, T)
    rows = torch.arange(B, device=device)          # which original prompt each live row is
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    next_pos = position[:, -1] + 1                                                # (B,)
    last_step = budget - 1                                                        # (B_live,)
    for step in range(T):
        token = _sample(logits, temperature, top_p, gen)                          # (B_live,)
        token = torch.where(finished, pad_token_id, token)
        out[rows, step] = token
        finished = finished | (token[:, None] == stop).any(-1) | (last_step <= step)
        if step + 1 == T:
            break
        if (step + 1) % sync_every == 0:           # the only host sync: stop, or shrink the batch
            n_live = int((~finished).sum())
            if n_live == 0:
                break
            if n_live < rows.numel():
                live = (~finished).nonzero().squeeze(1)
                cache.batch_select_indices(live)
                rows, finished, token, last_step = rows[live], finished[live], token[live], last_step[live]
                attention, next_pos = attention[live], next_pos[live]
        attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
        logits = model(input_ids=token[:, None], attention_mask=attention, position_ids=next_pos[:, None],
                       past_key_values=cache, use_cache=True).logits[:, -1]        # (B_live, V)
        next_pos = next_pos + 1

    results = []
    stop_set = set(stop_token_ids)
    for seq, n in zip(out.tolist(), budgets):
        seq = seq[:n]
        for j, tok in enumerate(seq):
            if tok in stop_set:
                seq = seq[:j + 1]
                break
        results.append(seq)
    return results


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
