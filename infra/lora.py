"""Low-rank adapters (LoRA, Hu et al. 2021) in plain PyTorch: train a 12B student on one GPU.

A frozen linear layer W0 (out x in) gets a trainable low-rank update (LoRA paper, Eq. 3, with the
alpha / r scale of its Section 4.1):

    h = W0 x + (alpha / r) * B A dropout(x)        A: (r x in), B: (out x r), r << min(in, out)

A starts random (kaiming-uniform with a = sqrt(5), as PEFT does) and B at zero, so at step 0 the
adapted model computes exactly the base model. Only A and B train; every other parameter is frozen.
Two things follow that this project relies on:
  * one copy of the weights serves three roles: the student (adapters on), the teacher, which by
    default is the frozen starting policy (`adapters_off`), and GRPO's KL reference when beta > 0 (the
    adapters' values at the start of the stage, `adapter_values` / `adapters_as`: off, for fresh ones);
  * each training seed starts from fresh adapters (`reset_adapters`), not from a deep copy of the model.

Defaults: rank r = 16, alpha = 32 (scale alpha / r = 2), dropout 0, adapters on the attention and MLP
projections of the decoder (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, matched by module
name suffix). Dropout is 0 because on-policy RL scores the sampled tokens under the same policy that
sampled them; a dropout mask in the loss pass would score them under a different, random one.

Checkpoints: `save_adapters` writes the folder layout PEFT reads (adapter_config.json +
adapter_model.safetensors with PEFT's key names), so `PeftModel.from_pretrained(base, folder)` loads it,
and `load_adapters` reads it back (`read_adapters`, then `apply_adapters`: runfolder.py resumes so).
`save_merged` writes W0 + (alpha / r) B A as a plain save_pretrained folder that transformers (and
evaluate.py) load with no adapter code at all.

Run on its own (a tiny random Llama: parameter counts, the step-0 equality, adapters off after a step):

    python -m infra.lora

The SML paper does not say how its 12B student was finetuned; LoRA is this project's choice so that
the paper's setting fits one GPU (memory.py). Deviations from PEFT: no bias training, no DoRA/rsLoRA,
one adapter per model; the adapted model's own `save_pretrained` would write wrapped key names
(`...q_proj.base_layer.weight`), so checkpoints go through `save_adapters` / `save_merged` instead.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."          # PEFT's name for the wrapped model in adapter state dicts


class LoRAError(ValueError):
    """A LoRA set-up the user can fix (no matching targets, an adapter folder that doesn't fit the model)."""


class LoRALinear(nn.Module):
    """h = W0 x + (alpha / r) * B A dropout(x), W0 frozen in its own dtype, A and B trained in fp32."""

    def __init__(self, base_layer: nn.Linear, rank: int, alpha: float, dropout: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.base_layer = base_layer.requires_grad_(False)
        self.rank, self.alpha, self.scaling, self.dropout_p = rank, alpha, alpha / rank, dropout
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # fp32 adapters whatever the base dtype: an AdamW step of size ~lr on a bf16 weight is rounded
        # away once |weight| > ~256 lr (8 bits of mantissa), and B starts at 0 and grows by such steps.
        device = base_layer.weight.device
        self.lora_A = nn.Parameter(torch.empty(rank, base_layer.in_features, device=device))   # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base_layer.out_features, rank, device=device))  # (out, r)
        self.enabled = True
        self.reset(generator)

    def forward(self, x):
        h = self.base_layer(x)                                          # (..., out) in the base dtype
        if not self.enabled:
            return h                                                    # exactly W0 x: the base model
        # The low-rank path runs in fp32 and is rounded once, when added: in bf16, x A^T and then
        # (x A^T) B^T would each round, and the update is small next to W0 x. The scale multiplies the
        # r-wide tensor, and the in-place add sums in fp32 and rounds into h, so no other out-wide copy
        # is made (linear layers keep their input for backward, never their output, so h is free to change).
        x32 = self.dropout(x.to(self.lora_A.dtype))                     # (..., in) fp32
        delta = F.linear(F.linear(x32, self.lora_A) * self.scaling, self.lora_B)   # (..., out) fp32
        return h.add_(delta)

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None):
        """Fresh adapter: A ~ kaiming-uniform(a = sqrt 5) (PEFT's default), B = 0, so B A = 0.
        Drawn on the CPU, so a seed gives the same A on any device."""
        A = torch.empty(self.lora_A.shape)
        nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
        self.lora_A.copy_(A)
        self.lora_B.zero_()

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """W0 + (alpha / r) B A in the base dtype (summed in fp32, rounded once)."""
        W0 = self.base_layer.weight                                     # (out, in)
        return (W0.float() + self.scaling * (self.lora_B @ self.lora_A)).to(W0.dtype)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, enabled={self.enabled}"


def add_lora(model: nn.Module, rank: int = 16, alpha: float = 32.0, dropout: float = 0.0,
             targets=DEFAULT_TARGETS, seed: int = 0) -> list[nn.Parameter]:
    """Wrap the decoder's linear layers whose names end in one of `targets` with LoRALinear, freeze
    every other parameter, and return the adapter parameters (A, B of each wrapped layer) for the
    optimiser. Only the language model's decoder is searched (`model.get_decoder()`), so the vision
    tower of Gemma3ForConditionalGeneration, which has q_proj/k_proj/v_proj of its own, stays as it is.
    The A matrices are drawn from `seed`, not from the global random stream.
    """
    if adapters(model):
        raise LoRAError("add_lora: this model already has LoRA adapters; call reset_adapters(model, seed) "
                        "for fresh ones instead of adding a second set.")
    if rank < 1:
        raise LoRAError(f"add_lora: the LoRA rank must be at least 1 (got {rank}); pass --lora-rank 8 or 16.")
    decoder_names = _decoder_linears(model)
    names = [n for n in decoder_names if any(n == t or n.endswith("." + t) for t in targets)]
    if not names:
        seen = sorted({n.rsplit(".", 1)[-1] for n in decoder_names})
        raise LoRAError(f"add_lora: no linear layer of {type(model).__name__}'s decoder is named like the "
                        f"targets {', '.join(targets)}; its linear layers are named "
                        f"{', '.join(seen[:8]) or '(none)'}: pass some of those as targets.")
    return _wrap(model, names, rank, alpha, dropout, seed)


def adapters(model: nn.Module) -> dict[str, LoRALinear]:
    """{module path: LoRALinear} of every adapted layer, in model order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


@contextmanager
def adapters_off(model: nn.Module):
    """Within this block the model computes exactly its base model (the teacher, the KL reference)."""
    layers = list(adapters(model).values())
    was = [m.enabled for m in layers]
    for m in layers:
        m.enabled = False
    try:
        yield model
    finally:
        for m, e in zip(layers, was):
            m.enabled = e


def adapter_values(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module path: (A, B)}, copies of the adapters' current values (a few MB next to the base)."""
    return {n: (m.lora_A.detach().clone(), m.lora_B.detach().clone()) for n, m in adapters(model).items()}


@contextmanager
def adapters_as(model: nn.Module, values: dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """Within this block the adapters hold `values` (from adapter_values), and their own afterwards: GRPO's
    KL reference when a stage starts from trained adapters (SFT, then RL) rather than from the base."""
    own = adapter_values(model)
    layers = adapters(model)
    with torch.no_grad():
        for n, (A, B) in values.items():
            layers[n].lora_A.copy_(A)
            layers[n].lora_B.copy_(B)
    try:
        yield model
    finally:
        with torch.no_grad():
            for n, (A, B) in own.items():
                layers[n].lora_A.copy_(A)
                layers[n].lora_B.copy_(B)


def reset_adapters(model: nn.Module, seed: int):
    """Fresh adapters for a new training seed: A drawn from `seed`, B = 0 (the model is its base again).
    An optimiser built over the old adapters keeps its moments: build a new one."""
    generator = torch.Generator().manual_seed(seed)
    for m in adapters(model).values():                 # one stream, so no two layers draw the same A
        m.reset(generator)


# ---- checkpoints ------------------------------------------------------------------------------------

def save_adapters(model: nn.Module, path) -> Path:
    """Write the adapters as PEFT does: adapter_config.json + adapter_model.safetensors, with keys
    `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight`. Written to a temporary folder and
    renamed, so an interrupted save leaves the previous folder whole."""
    from safetensors.torch import save_file
    layers = adapters(model)
    if not layers:
        raise LoRAError("save_adapters: the model has no LoRA adapters; call add_lora first, or use "
                        "model.save_pretrained for a fully finetuned model.")
    first = next(iter(layers.values()))
    decoder = _decoder_prefix(model)
    suffixes = sorted({n.rsplit(".", 1)[-1] for n in layers})
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM",
        "base_model_name_or_path": getattr(model, "name_or_path", None) or None,
        "r": first.rank, "lora_alpha": first.alpha,
        "lora_dropout": first.dropout_p,
        # a regex (PEFT full-matches it against module paths) that names the decoder's layers only:
        # a plain suffix list would also put adapters on a vision tower's q_proj/k_proj/v_proj
        "target_modules": (re.escape(decoder) + r"\." if decoder else "") + r".*\.(" + "|".join(suffixes) + ")",
        "bias": "none", "fan_in_fan_out": False, "init_lora_weights": True, "inference_mode": True,
        "modules_to_save": None, "use_rslora": False, "use_dora": False,
    }
    tensors = {}
    for n, m in layers.items():
        tensors[f"{PEFT_PREFIX}{n}.lora_A.weight"] = m.lora_A.detach().cpu().contiguous()   # (r, in)
        tensors[f"{PEFT_PREFIX}{n}.lora_B.weight"] = m.lora_B.detach().cpu().contiguous()   # (out, r)
    path = Path(path)
    tmp = _fresh_tmp(path)
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    return _swap_in(tmp, path)


def load_adapters(model: nn.Module, path) -> list[nn.Parameter]:
    """Read a folder written by `save_adapters` (or by PEFT) into `model`: into its adapters if it has
    them (resume), else onto a fresh base model, wrapping exactly the layers the folder names. Returns the
    adapter parameters."""
    return apply_adapters(model, *read_adapters(path), where=str(path))


def read_adapters(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(adapter_config.json, tensors by PEFT key) of an adapter folder, read whole before anything is
    applied."""
    from safetensors.torch import load_file
    path = Path(path)
    if not (path / "adapter_config.json").exists() or not (path / "adapter_model.safetensors").exists():
        raise LoRAError(f"load_adapters: {str(path)!r} has no adapter_config.json and adapter_model.safetensors; "
                        "pass a folder written by save_adapters.")
    return json.loads((path / "adapter_config.json").read_text()), load_file(str(path / "adapter_model.safetensors"))


def apply_adapters(model: nn.Module, config: dict, tensors: dict[str, torch.Tensor],
                   where: str = "the checkpoint") -> list[nn.Parameter]:
    """Copy what read_adapters returned into `model`'s adapters (wrapping a fresh base first)."""
    wanted = {}                                                         # module path -> (A, B)
    for key, t in tensors.items():
        name, _, which = key.removeprefix(PEFT_PREFIX).rpartition(".lora_")
        wanted.setdefault(name, {})[which.split(".")[0]] = t
    layers = adapters(model)
    if not layers:
        names = [n for n, _ in model.named_modules() if n in wanted]
        if len(names) == len(wanted):
            _wrap(model, names, config["r"], config["lora_alpha"], config.get("lora_dropout", 0.0), seed=0)
            layers = adapters(model)
    if set(layers) != set(wanted):
        missing = sorted(set(wanted) ^ set(layers))[:3]
        raise LoRAError(f"load_adapters: the adapters in {where!r} are for other layers than this model's "
                        f"(e.g. {', '.join(missing)}); load them into the base model they were trained on.")
    for name, m in layers.items():                      # every shape checked before the first copy
        A, B = wanted[name]["A"], wanted[name]["B"]
        if A.shape != m.lora_A.shape or B.shape != m.lora_B.shape:
            raise LoRAError(f"load_adapters: {name} in {where!r} has rank {A.shape[0]} and shape "
                            f"{tuple(B.shape)}x{tuple(A.shape)}, the model's adapter {tuple(m.lora_B.shape)}x"
                            f"{tuple(m.lora_A.shape)}; add_lora with the folder's rank, or load into a fresh base.")
    with torch.no_grad():
        for name, m in layers.items():
            m.lora_A.copy_(wanted[name]["A"])
            m.lora_B.copy_(wanted[name]["B"])
            m.alpha, m.scaling = config["lora_alpha"], config["lora_alpha"] / m.rank   # the folder's scale
    return [p for m in layers.values() for p in (m.lora_A, m.lora_B)]


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base model's state dict with each adapted weight replaced by W0 + (alpha / r) B A (base dtype,
    on the CPU so that merging a 12B model costs no GPU memory) and no LoRA keys: the finetuned model
    as plain transformers knows it."""
    state = model.state_dict()
    for name, m in adapters(model).items():
        del state[f"{name}.lora_A"], state[f"{name}.lora_B"]
        state[f"{name}.weight"] = m.merged_weight().cpu()
        del state[f"{name}.base_layer.weight"]
        if m.base_layer.bias is not None:
            state[f"{name}.bias"] = state.pop(f"{name}.base_layer.bias")
    return state


def save_merged(model: nn.Module, tokenizer, path) -> Path:
    """Write the merged model (and tokenizer) in save_pretrained format, loadable by plain transformers;
    to a temporary folder first, then renamed."""
    path = Path(path)
    tmp = _fresh_tmp(path)
    model.save_pretrained(tmp, state_dict=merged_state_dict(model))
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    return _swap_in(tmp, path)


# ---- helpers ----------------------------------------------------------------------------------------

def _wrap(model, names, rank, alpha, dropout, seed) -> list[nn.Parameter]:
    model.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    params = []
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = getattr(parent, child)
        if not isinstance(base, nn.Linear):
            raise LoRAError(f"load_adapters: {name} is a {type(base).__name__}, not a linear layer, in "
                            f"{type(model).__name__}; load the adapters into the base model they were trained on.")
        layer = LoRALinear(base, rank, alpha, dropout, generator)
        setattr(parent, child, layer)
        params += [layer.lora_A, layer.lora_B]
    return params


def _decoder_prefix(model) -> str:
    """Module path of the language model's decoder ('model', 'model.language_model', ...)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    return next(n for n, m in model.named_modules() if m is decoder)


def _decoder_linears(model) -> list[str]:
    prefix = _decoder_prefix(model)
    decoder = model.get_submodule(prefix) if prefix else model
    return [f"{prefix}.{n}" if prefix else n for n, m in decoder.named_modules()
            if isinstance(m, nn.Linear) and not isinstance(m, LoRALinear)]


def _fresh_tmp(path: Path) -> Path:
    tmp = path.with_name(f".tmp-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _swap_in(tmp: Path, path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def _demo():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 128, (2, 12))                                                 # (B, T)
    base_logits = model(ids).logits                                                      # (B, T, V)
    params = add_lora(model)
    n_all = sum(p.numel() for p in model.parameters())
    n_lora = sum(p.numel() for p in params)
    print(f"parameters: {n_all:,} of which trainable LoRA {n_lora:,} ({100 * n_lora / n_all:.1f}%) "
          f"in {len(adapters(model))} adapted layers")
    print("step 0, adapted == base exactly:", torch.equal(model(ids).logits, base_logits))
    opt = torch.optim.AdamW(params, lr=1e-2)
    model(ids).logits.logsumexp(-1).mean().backward()
    opt.step()
    print("after a step, adapted == base:", torch.equal(model(ids).logits, base_logits))
    with adapters_off(model):
        print("after a step, adapters off == base exactly:", torch.equal(model(ids).logits, base_logits))


if __name__ == "__main__":
    _demo()
