"""Benchmark: one GRPO step with full finetuning against LoRA, with and without gradient checkpointing.

    python -m bench.train                        # CPU: a small random Qwen2-architecture model (6M parameters)
    python -m bench.train --hidden 896 --layers 24 --vocab 151936 --heads 14 --kv-heads 2 --intermediate 4864
                                                 # the Qwen2.5-0.5B architecture, random weights (for a GPU)
    python -m bench.train --hidden 576 --intermediate 1536 --layers 30 --heads 9 --kv-heads 3 --vocab 49152 \
        --settings lora+checkpointing --dtype bfloat16   # SmolLM2-135M's shape, as sml.py trains it on a CPU

One step is what grpo.train does per batch: the rollout (dialogue.generate on B x g prompts, every row
generating exactly --new-tokens, no stop token) and grpo.train_step (forward and backward in micro-batches,
then the AdamW step) on the generated dialogues with advantages of +1 and -1. Every setting has the same
model, weights and batch; its first step is a warm-up (it also allocates AdamW's state), its time the median
of the next --repeats, the settings taking turns so that a busy machine slows each alike. Peak memory is
what torch allocated at the phase's peak: on the CPU, the largest sum of bytes allocated and not yet freed
(torch.profiler's allocator events, in a profiled run of its own) plus what was resident before it
(weights, adapters, optimiser state); on CUDA, max_memory_allocated. Beside it, the memory plan
(infra/memory.py) of the same settings, with one copy of the weights (sml.py's full finetuning keeps a second,
the base): resident part + rollout, resident part + training. The plan's log-prob head assumes every position
of a micro-batch is a student's; here only the generated ones are, so its training figure is an upper bound.
Not in the paper: it measures the cost of one step of grpo.py (Eq. 2-3).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

import dialogue
import grpo
from infra import lora
from infra import memory
from infra import runfolder

MiB = 2 ** 20


SETTINGS = ["full", "full+checkpointing", "lora", "lora+checkpointing"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--dialogues", type=int, default=8, help="B x g dialogues per step")
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=SETTINGS,
                   help="which of the four to run (a real model's sml.py run is lora+checkpointing)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                   help="default: bfloat16 on CUDA, float32 on a CPU")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype or ("bfloat16" if device == "cuda" else "float32"))
    from transformers import Qwen2Config, Qwen2ForCausalLM
    config = Qwen2Config(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.kv_heads, tie_word_embeddings=True)
    torch.manual_seed(0)
    base = Qwen2ForCausalLM(config).to(device, dtype).eval()
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, args.vocab, (args.dialogues, args.prompt_tokens), generator=g).tolist()
    T = args.prompt_tokens + args.new_tokens
    print(f"model: Qwen2 architecture, {sum(p.numel() for p in base.parameters()) / 1e6:.1f}M parameters, "
          f"{str(dtype).removeprefix('torch.')}, {device}, {torch.get_num_threads()} threads; a step: "
          f"{args.dialogues} dialogues x ({args.prompt_tokens} prompt + {args.new_tokens} generated) tokens, "
          f"micro-batch {args.micro_batch}, torch {torch.__version__}")
    print("| setting | trainable | rollout s | train s | peak MiB, rollout | peak MiB, train | plan MiB, rollout "
          "| plan MiB, train |")
    print("|---|---|---|---|---|---|---|---|")
    settings = [(args.lora_rank if name.startswith("lora") else 0, name.endswith("+checkpointing"))
                for name in args.settings]
    runs = [Run(base, rank, checkpointing, prompts, args, device) for rank, checkpointing in settings]
    for _ in range(args.repeats):          # round robin: a busy machine slows every setting alike
        for run in runs:
            run.step()
    for run in runs:
        plan = memory.memory_plan(config, lora_rank=run.rank, dtype=dtype, micro_batch=args.micro_batch,
                                  max_dialogue_tokens=T, rollout_batch=args.dialogues,
                                  grad_checkpointing=run.checkpointing)
        resident = plan["persistent"] - plan["weights"] + plan["weights"] // plan["weight_copies"]   # 1 copy
        rollout_peak, train_peak = run.peaks()
        print(f"| {'LoRA r' + str(run.rank) if run.rank else 'full'}, checkpointing "
              f"{'on' if run.checkpointing else 'off'} | {run.trainable / 1e6:.2f}M "
              f"| {statistics.median(run.rollout_s):.2f} | {statistics.median(run.train_s):.2f} "
              f"| {rollout_peak / MiB:.0f} | {train_peak / MiB:.0f} | {(resident + plan['rollout']) / MiB:.0f} "
              f"| {(resident + plan['training']) / MiB:.0f} |")


class Run:
    """One setting: its own copy of the model, optimiser and batch; step() times a GRPO step."""

    def __init__(self, base, rank, checkpointing, prompts, args, device):
        self.rank, self.checkpointing, self.prompts, self.args, self.device = rank, checkpointing, prompts, args, device
        self.model = copy.deepcopy(base)
        params = lora.add_lora(self.model, rank=rank) if rank else list(self.model.parameters())
        if checkpointing:
            self.model.activation_checkpointing_enable()
        self.trainable = sum(p.numel() for p in params)
        self.optimizer, self.guard = torch.optim.AdamW(params, lr=1e-5), runfolder.Guard()
        self.rollout_s, self.train_s = [], []
        self.train(self.rollout())                         # warm-up; allocates AdamW's state

    def rollout(self):
        self.model.eval()
        return dialogue.generate(self.model, self.prompts, self.args.new_tokens, temperature=1.0, seed=0)

    def train(self, outs):
        ds = [dialogue.Dialogue(problem=None, segments=[("teacher", p), ("student", o)])
              for p, o in zip(self.prompts, outs)]
        advantages = torch.tensor([1.0, -1.0] * (len(ds) // 2) + [1.0] * (len(ds) % 2))
        grpo.train_step(self.model, self.optimizer, self.guard, ds, advantages, 0, self.device,
                        micro_batch=self.args.micro_batch)

    def step(self):
        t0 = _now(self.device)
        outs = self.rollout()
        t1 = _now(self.device)
        self.train(outs)
        self.rollout_s.append(t1 - t0)
        self.train_s.append(_now(self.device) - t1)

    def peaks(self) -> tuple[int, int]:
        """Peak bytes of a rollout and of a training step, each in a profiled run of its own."""
        tensors = [*self.model.parameters(), *self.model.buffers()] + \
            [v for state in self.optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        resident = sum(t.numel() * t.element_size() for t in tensors)
        outs = self.rollout()
        return _peak(self.rollout, self.device, resident), _peak(lambda: self.train(outs), self.device, resident)


def _now(device) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _peak(fn, device, resident: int) -> int:
    """Peak bytes allocated while fn runs, `resident` (weights, adapters, optimiser state) included."""
    return resident + memory.peak_bytes(fn, device)


if __name__ == "__main__":
    main()
