"""Benchmark: generation.generate against every Hugging Face way to generate, on the same model, batch and lengths.

    python -m bench.generate                          # CPU: the tiny model, batch 64, 128 new tokens
    python -m bench.generate --model smollm2 --batch 32 --new-tokens 64
    python -m bench.generate --model qwen2.5-0.5b     # GPU: a 0.5B-class Qwen2 config, random weights
    python -m bench.generate --model PATH_OR_ID       # any causal LM

The Hugging Face rows: `model.generate` with its dynamic cache (the default), with a static cache
(`cache_implementation="static"`), with a static cache and `torch.compile(model.forward)` (the recipe
transformers documents; compiling is timed apart), and continuous batching (`model.generate_batch`,
paged attention). Every generator makes exactly --new-tokens tokens per row (no stop token) from the same
prompts of mixed lengths; under greedy decoding the table counts the rows that equal ours token for token
(float32 rounding can flip a near tie where a cache's sums run in another order). Tokens/s counts generated
tokens only.
The generators take turns, round after round, so a slow spell of a shared machine hits all of them; the
table gives each one's fastest and median round, and its speed against the best Hugging Face row by each.
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
    model, tok = dialogue.load_model(name, device)
    return model.to(dtype), tok.pad_token_id, len(tok)


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
    L = max(map(len, prompts))
    ids = torch.tensor([[pad] * (L - len(q)) + q for q in prompts], device=device)
    att = torch.tensor([[0] * (L - len(q)) + [1] * len(q) for q in prompts], device=device)
    T, temp = args.new_tokens, (1.0 if args.sample else 0.0)
    hf_kw = dict(input_ids=ids, attention_mask=att, max_new_tokens=T, min_new_tokens=T, do_sample=args.sample,
                 temperature=1.0 if args.sample else None, top_p=None, top_k=None, pad_token_id=pad, eos_token_id=None)

    def ours():
        return generation.generate(model, prompts, T, temperature=temp, pad_token_id=pad, seed=0)

    def hf(**extra):
        return lambda: model.generate(**hf_kw, **extra)[:, L:].tolist()

    def hf_compiled():
        model.forward = compiled                  # transformers' documented recipe: compile forward, static cache
        try:
            return model.generate(**hf_kw, cache_implementation="static")[:, L:].tolist()
        finally:
            del model.forward                     # back to the class's forward for the other generators

    def hf_batch():
        from transformers import GenerationConfig
        config = GenerationConfig(max_new_tokens=T, min_new_tokens=T, do_sample=args.sample, pad_token_id=pad,
                                  eos_token_id=None, temperature=1.0 if args.sample else None, top_p=None, top_k=None)
        out = model.generate_batch(inputs=prompts, generation_config=config)
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

    first, same, reference = {}, {}, ours()
    for name, fn in generators.items():           # warm-up round: kernels, allocator, and the compile, timed apart
        out, first[name] = timed(fn, device)
        same[name] = sum(a == b for a, b in zip(out, reference))     # greedy: rows equal to ours, token for token
    times, peaks = {name: [] for name in generators}, {name: 0 for name in generators}
    for _ in range(args.repeats):
        for name, fn in generators.items():
            _, dt = timed(fn, device)
            times[name].append(dt)
            peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() if device == "cuda" else 0)
    print(f"model={args.model} device={device} dtype={str(dtype).removeprefix('torch.')} batch={args.batch} "
          f"new_tokens={T} prompts={min(map(len, prompts))}-{L} tokens, "
          f"{'sampled' if args.sample else 'greedy'}, {args.repeats} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    median = {name: statistics.median(ts) for name, ts in times.items()}
    best_fastest = min(min(ts) for name, ts in times.items() if name.startswith("hf"))
    best_median = min(t for name, t in median.items() if name.startswith("hf"))
    print("| generator | fastest round, s | median round, s | tokens/s (median) | vs best HF, fastest | "
          "vs best HF, median | first call, s | rows equal to ours | peak GPU memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        mem = f"{peaks[name] / 2**30:.2f} GiB" if device == "cuda" else "-"
        print(f"| {name} | {min(ts):.2f} | {median[name]:.2f} | {args.batch * T / median[name]:,.0f} "
              f"| {best_fastest / min(ts):.2f}x | {best_median / median[name]:.2f}x | {first[name]:.1f} "
              f"| {'-' if args.sample else f'{same[name]}/{args.batch}'} | {mem} |")
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
