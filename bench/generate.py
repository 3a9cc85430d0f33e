"""Benchmark: generation.generate against every Hugging Face way to generate, on the same model, batch and lengths.

    python -m bench.generate                          # CPU: the tiny model, batch 64, 128 new tokens
    python -m bench.generate --model smollm2 --batch 32 --new-tokens 64
    python -m bench.generate --model qwen2.5-0.5b     # GPU: a 0.5B-class Qwen2 config, random weights
    python -m bench.generate --model PATH_OR_ID       # any causal LM
    python -m bench.generate --model smollm2 --batch 8 --rollout-shapes   # every round a new shape, as in a rollout

The Hugging Face rows: `model.generate` with its dynamic cache (the default), with a static cache
(`cache_implementation="static"`), with a static cache and `torch.compile(model.forward)` (the recipe
transformers documents; compiling is timed apart), and continuous batching (`model.generate_batch`,
paged attention). Every generator makes exactly --new-tokens tokens per row (no stop token) from the same
prompts of mixed lengths; under greedy decoding the table counts the rows that equal ours token for token
(float32 rounding can flip a near tie where a cache's sums run in another order). Tokens/s counts generated
tokens only.
The generators take turns, round after round, so a slow spell of a shared machine hits all of them; the
table gives each one's fastest and median round and all rounds' sum, and its speed against the best Hugging
Face row by each. With --rollout-shapes every round has a new batch and prompt length, as a rollout's calls
do, which is what a compiled forward pays for (it compiles again).
On CUDA it also prints peak memory and the decode step's share of the memory-bandwidth limit (every step
must read all weights and the KV cache once: bytes per step / HBM bandwidth is the floor on its time).
Not in the paper: it checks the speed and exactness of the sampling that §4.2-4.3's rollouts run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import dialogue
import generation


def build(name: str, device: str, dtype: torch.dtype):
    if name == "tiny":              # the tiny world's warmed-up base (tinyworld.load_tiny: cached after its warm-up)
        import tinyworld
        model, tok = tinyworld.load_tiny()
        return model.to(device, dtype).eval(), tok.pad_token_id, len(tok)
    if name == "qwen2.5-0.5b":     # the real architecture and size, random weights (no download needed)
        from transformers import Qwen2Config, Qwen2ForCausalLM
        config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                             tie_word_embeddings=True, rope_theta=1e6)
        torch.manual_seed(0)
        return Qwen2ForCausalLM(config).to(device, dtype).eval(), 0, config.vocab_size
    model, tok = dialogue.load_model(name, device, dtype)
    return model, tok.pad_token_id, len(tok)


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tiny")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--prompt-len", type=int, default=64, help="longest prompt; others are shorter (mixed lengths)")
    p.add_argument("--sample", action="store_true", help="sample at temperature 1 instead of greedy")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (after one untimed warm-up round)")
    p.add_argument("--rollout-shapes", action="store_true",
                   help="round k generates for k fewer prompts, each 16k tokens longer, as a rollout's later turns "
                   "do (every call a new shape: what a compiled forward must compile again)")
    p.add_argument("--skip", nargs="*", default=[], choices=["static", "compile", "batch"],
                   help="leave out Hugging Face's static cache, static cache + torch.compile, or generate_batch")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                   help="default: bfloat16 on CUDA, float32 on a CPU")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype or ("bfloat16" if device == "cuda" else "float32"))
    model, pad, vocab = build(args.model, device, dtype)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, vocab, (int(args.prompt_len * (0.5 + 0.5 * i / args.batch)),), generator=g).tolist()
               for i in range(args.batch)]
    turn = torch.randint(10, vocab, (16,), generator=g).tolist()        # --rollout-shapes: a turn's 16 tokens
    T, temp = args.new_tokens, (1.0 if args.sample else 0.0)
    hf_kw = dict(max_new_tokens=T, min_new_tokens=T, do_sample=args.sample, temperature=1.0 if args.sample else None,
                 top_p=None, top_k=None, pad_token_id=pad, eos_token_id=None)

    def shape(k: int) -> list[list[int]]:
        """Round k's prompts: all of them; with --rollout-shapes, as a rollout's later turns are, k fewer
        (finished dialogues leave) and each 16k tokens longer (the dialogue so far)."""
        if not args.rollout_shapes:
            return prompts
        return [q + turn * k for q in prompts[:max(args.batch - k, 1)]]

    def padded(batch):                            # (B, L) left-padded ids and mask, and L
        L = max(map(len, batch))
        ids = torch.tensor([[pad] * (L - len(q)) + q for q in batch], device=device)
        att = torch.tensor([[0] * (L - len(q)) + [1] * len(q) for q in batch], device=device)
        return ids, att, L

    def ours(batch):
        return generation.generate(model, batch, T, temperature=temp, pad_token_id=pad, seed=0)

    def hf(**extra):
        def run(batch):
            ids, att, L = padded(batch)
            return model.generate(input_ids=ids, attention_mask=att, **hf_kw, **extra)[:, L:].tolist()
        return run

    def hf_compiled(batch):
        model.forward = compiled                  # transformers' documented recipe: compile forward, static cache
        try:
            return hf(cache_implementation="static")(batch)
        finally:
            del model.forward                     # back to the class's forward for the other generators

    def hf_batch(batch):
        from transformers import GenerationConfig
        config = GenerationConfig(**hf_kw)
        out = model.generate_batch(inputs=batch, generation_config=config)
        return [r.generated_tokens for r in out.values()]

    generators = {"hf generate (dynamic cache)": hf()}
    if "static" not in args.skip:
        generators["hf generate (static cache)"] = hf(cache_implementation="static")
    if "compile" not in args.skip:
        compiled = torch.compile(model.forward, fullgraph=True)
        generators["hf generate (static cache + torch.compile)"] = hf_compiled
    if "batch" not in args.skip:
        import logging
        logging.getLogger("ContinuousBatchingLogger").setLevel(logging.CRITICAL)   # its psutil notices, each call
        generators["hf generate_batch (continuous batching)"] = hf_batch
    generators["generation.generate (ours)"] = ours

    first, same, reference = {}, {}, ours(prompts)
    for name, fn in generators.items():           # warm-up round: kernels, allocator, and the compile, timed apart
        out, first[name] = timed(lambda: fn(prompts), device)
        same[name] = sum(a == b for a, b in zip(out, reference))     # greedy: rows equal to ours, token for token
    times, rates = {name: [] for name in generators}, {name: [] for name in generators}
    peaks = {name: 0 for name in generators}
    for k in range(1, args.repeats + 1):
        for name, fn in generators.items():
            out, dt = timed(lambda: fn(shape(k)), device)
            times[name].append(dt)
            rates[name].append(sum(map(len, out)) / dt)                  # tokens/s of this round
            peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() if device == "cuda" else 0)
    L = max(map(len, prompts))
    print(f"model={args.model} device={device} dtype={str(dtype).removeprefix('torch.')} batch={args.batch} "
          f"new_tokens={T} prompts={min(map(len, prompts))}-{L} tokens, "
          f"{'rollout shapes (round k: k rows fewer, 16k tokens longer), ' if args.rollout_shapes else ''}"
          f"{'sampled' if args.sample else 'greedy'}, {args.repeats} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    median = {name: statistics.median(ts) for name, ts in times.items()}
    best_fastest = min(min(ts) for name, ts in times.items() if name.startswith("hf"))
    best_median = min(t for name, t in median.items() if name.startswith("hf"))
    best_total = min(sum(ts) for name, ts in times.items() if name.startswith("hf"))
    print("| generator | fastest round, s | median round, s | all rounds, s | tokens/s (median) | vs best HF, "
          "fastest | vs best HF, median | vs best HF, all rounds | first call, s | rows equal to ours | peak GPU "
          "memory |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        mem = f"{peaks[name] / 2**30:.2f} GiB" if device == "cuda" else "-"
        print(f"| {name} | {min(ts):.2f} | {median[name]:.2f} | {sum(ts):.2f} | {statistics.median(rates[name]):,.0f} "
              f"| {best_fastest / min(ts):.2f}x | {best_median / median[name]:.2f}x | {best_total / sum(ts):.2f}x "
              f"| {first[name]:.1f} | {'-' if args.sample else f'{same[name]}/{args.batch}'} | {mem} |")
    if device == "cuda":
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        kv = model.config.num_hidden_layers * 2 * model.config.num_key_value_heads * \
            (model.config.hidden_size // model.config.num_attention_heads) * 2 * args.batch * (L + T / 2)
        bandwidth = 4.8e12 if "H200" in torch.cuda.get_device_name() else 3.35e12    # HBM bytes/s: H200, H100 SXM
        floor = (weights + kv) / bandwidth
        per_step = median["generation.generate (ours)"] / T
        print(f"decode step: {per_step * 1e3:.2f} ms; memory-bound floor {floor * 1e3:.2f} ms "
              f"({floor / per_step:.0%} of bandwidth limit; {torch.cuda.get_device_name()})")


if __name__ == "__main__":
    main()
