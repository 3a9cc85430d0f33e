"""Benchmark: dialogue.generate against Hugging Face `model.generate` on the same model, batch and lengths.

    python -m bench.generate                          # CPU: the tiny model, batch 64, 128 new tokens
    python -m bench.generate --model qwen2.5-0.5b     # GPU: a 0.5B-class Qwen2 config, random weights
    python -m bench.generate --model PATH_OR_ID       # any causal LM

Both sides generate exactly --new-tokens tokens per row (no stop token), greedy or sampled, from the
same left-padded prompts of mixed lengths; tokens/s counts generated tokens only. On CUDA it also
prints peak memory and the decode step's share of the memory-bandwidth limit (every step must read
all weights and the KV cache once: bytes per step / HBM bandwidth is the floor on its time).
Not in the paper: it checks the speed and exactness of the sampling that §4.2-4.3's rollouts run.
"""
from __future__ import annotations

import argparse
import time

import torch

import dialogue


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tiny")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--prompt-len", type=int, default=64, help="longest prompt; others are shorter (mixed lengths)")
    p.add_argument("--sample", action="store_true", help="sample at temperature 1 instead of greedy")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                   help="default: bfloat16 on CUDA, float32 on a CPU")
    args = p.parse_args()
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

    def ours():
        return dialogue.generate(model, prompts, T, temperature=temp, pad_token_id=pad, seed=0)

    def theirs():
        return model.generate(input_ids=ids, attention_mask=att, max_new_tokens=T, min_new_tokens=T,
                              do_sample=args.sample, temperature=None if not args.sample else 1.0, top_p=None,
                              top_k=None, pad_token_id=pad, eos_token_id=None)

    rows = []
    for name, fn in (("hf generate", theirs), ("dialogue.generate", ours)):
        fn()                                                     # warm-up (kernels, allocator)
        times, peak = [], 0
        for _ in range(args.repeats):
            _, dt = timed(fn, device)
            times.append(dt)
            peak = max(peak, torch.cuda.max_memory_allocated() if device == "cuda" else 0)
        best = min(times)
        rows.append((name, best, args.batch * T / best, peak))
    if not args.sample:
        assert [o for o in ours()] == theirs()[:, L:].tolist(), "greedy outputs differ"
    print(f"model={args.model} device={device} dtype={str(dtype).removeprefix('torch.')} batch={args.batch} "
          f"new_tokens={T} "
          f"prompts={min(map(len, prompts))}-{L} tokens, {'sampled' if args.sample else 'greedy (outputs equal)'}, "
          f"best of {args.repeats}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| generator | seconds | tokens/s | vs HF | peak GPU memory |")
    print("|---|---|---|---|---|")
    for name, dt, tps, peak in rows:
        mem = f"{peak / 2**30:.2f} GiB" if device == "cuda" else "-"
        print(f"| {name} | {dt:.2f} | {tps:,.0f} | {tps / rows[0][2]:.2f}x | {mem} |")
    if device == "cuda":
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        kv = model.config.num_hidden_layers * 2 * model.config.num_key_value_heads * \
            (model.config.hidden_size // model.config.num_attention_heads) * 2 * args.batch * (L + T / 2)
        bandwidth = 4.8e12    # H200 HBM3e, bytes/s
        floor = (weights + kv) / bandwidth
        per_step = rows[1][1] / T
        print(f"decode step: {per_step * 1e3:.2f} ms; memory-bound floor {floor * 1e3:.2f} ms "
              f"({floor / per_step:.0%} of bandwidth limit)")


if __name__ == "__main__":
    main()
