"""Will it fit? A GPU memory plan computed from the model's config alone, before the first step.

Training alternates two phases on one copy of the student; what stays resident through both is

    weights x copies + LoRA adapters + AdamW state                                      (persistent)

and on top of it the larger of

    rollout:  KV cache of rollout_batch dialogues, max_dialogue_tokens each, + the prefill's extras
              (see below); rollout_batch is what one generate call holds: all B problems x g dialogues
              of a step, or fewer (sml.py's --rollout-batch, by default the largest that fits);
              + the KV caches kept across turns (kept_dialogues, see below)
    training: gradients + one micro-batch's stored activations + the larger of the chunked log-prob
              head (grpo.masked_logprobs, run backward first) and one recomputed layer

Each figure is counted from the config (no weights are downloaded, so a 12B plan runs on a laptop):
  * parameters: exactly, tensor by tensor (embeddings, tied or not; attention with GQA and head_dim;
    MLP; norms; for Gemma3ForConditionalGeneration's config, the SigLIP vision tower and projector);
  * gradients: one per trainable parameter, in its dtype (fp32 adapters, or the model dtype); a vision
    tower gets none from text, so full finetuning counts the language model's parameters;
  * optimiser: what torch.optim.AdamW allocates: exp_avg and exp_avg_sq shaped and typed like each
    trainable parameter (its per-tensor `step` counter is a 4-byte CPU scalar, left out);
  * KV cache: rollout_batch x tokens x 2 (K and V) x kv heads x head_dim x dtype bytes per layer, where
    a sliding-window layer (Gemma 3: 5 of every 6) keeps at most its window;
  * KV kept across turns: a rollout keeps each live dialogue's keys and values between its turns
    (generation.PrefixCache), kept_dialogues x tokens at full length (all B x g dialogues, and as many
    again for a model teacher's views); a generate call moves its rows into its batch, but copies them
    back out before its batch is freed, so the kept caches and the batch's are counted together. A model
    with sliding-window layers keeps none (it prefills each turn whole);
  * prefill: dialogue.generate prefills a rollout batch in one forward pass: one layer's
    temporaries for rollout_batch x tokens positions (the MLP's three I-wide tensors dominate), the
    boolean attention masks (B x T x T per attention type), and the full-length K/V that transformers'
    sliding-window cache layers keep alive (a view) until the first decoded token;
  * activations: with gradient checkpointing, each layer's input (N x H) stays stored and one layer at
    a time is recomputed; without, every layer's saved tensors stay. What one layer saves for backward
    per position is counted, not guessed: autograd's saved tensors are measured
    (torch.autograd.graph.saved_tensors_hooks) on six random one-layer miniatures of the same
    architecture, LoRA and dtype, and fitted linearly in H, I, q heads x head_dim, kv heads x head_dim;
  * log-prob head: a chunk of 1024 positions x vocab x fp32, of which 3 copies are alive at the peak of
    its recomputed backward (4 with Gemma's logit soft-capping), measured with torch.profiler.

Run on its own (defaults: the paper's Gemma-3-12B setting as this project runs it: LoRA rank 16 on all
projections, bf16, B = 8 problems x g = 8 dialogues, N = 4 turns of 1024 tokens -> 8192, micro-batch 4):

    python -m infra.memory tests/fixtures/gemma-3-12b-it-config.json --free-gib 78      # as sml.py plans it
    python -m infra.memory tests/fixtures/gemma-3-12b-it-config.json --lora-rank 0      # full finetuning

Deviations, or where it is an estimate: the per-layer activations are measured with the CPU's attention
kernels (flash-style, no T x T scores), assumed to save what CUDA's kernels save (not checked on a GPU);
the prefill's temporaries are a formula, not a measurement (tests/test_memory.py holds the training and
rollout figures to within 25% of the peaks torch.profiler records on a small model, CPU, fp32); the CUDA
context, kernel workspaces and allocator fragmentation are not in the plan: leave a margin free (the
automatic rollout batch leaves 10%). The log-prob head assumes every position of a micro-batch is a
student's: an upper bound. The rollout is planned at max_dialogue_tokens; sml.py's evaluation dialogues
may be twice as long, and fill a generate call's positions with half as many, but their B x T x T masks
double (for the 12B plan, inside that margin). A separate teacher's batch KV cache is not counted (it
generates after the student, with the same cap on positions); its views kept across turns are, when the
caller counts them in kept_dialogues.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import sys

import torch

from infra.lora import DEFAULT_TARGETS

GiB = 2 ** 30
SUPPORTED = ("llama", "qwen2", "qwen3", "gemma3_text", "gemma3")
QK_NORM = ("qwen3", "gemma3_text")             # per-head RMSNorm on queries and keys
SANDWICH_NORMS = ("gemma3_text",)              # 4 norms per layer (pre and post attention and MLP), not 2


class PlanError(RuntimeError):
    """No plan for this architecture, or a plan that needs more memory than is free: one sentence that
    says what to change."""


def memory_plan(config, *, lora_rank: int | None = 16, lora_targets=DEFAULT_TARGETS, dtype=torch.bfloat16,
                micro_batch: int = 4, max_dialogue_tokens: int = 8192, rollout_batch: int = 64,
                grad_checkpointing: bool = True, beta: float = 0.0, logprob_chunk: int = 1024,
                teacher_weights: int = 0, kept_dialogues: int = 0) -> dict:
    """Bytes each part of a run needs, from a transformers config (AutoConfig) alone. lora_rank None or
    0 means full finetuning, where sml.py keeps the base resident (the teacher, and each seed's starting
    point) beside the student's copy (2 copies of the weights) and grpo.py adds a frozen reference copy when
    beta > 0; with LoRA all three are one copy (lora.adapters_off), and beta > 0 keeps the adapters' starting
    values as the reference (grpo.reference_policy). rollout_batch: dialogues per generate call at the full
    context (dialogue.generate's max_batch_tokens = rollout_batch x max_dialogue_tokens). teacher_weights:
    the bytes of a separate teacher model (--teacher), resident beside the student. kept_dialogues: the
    dialogues whose KV caches live across turns (dialogue.rollout's reuse_cache; 0: none kept)."""
    text = config.get_text_config()
    if text.model_type not in SUPPORTED:
        raise PlanError(f"memory_plan knows the architectures {', '.join(SUPPORTED)}, not {text.model_type!r}; "
                      "plan by hand or add its parameter layout to memory.py.")
    d = dtype.itemsize                                                   # bytes per model element
    shapes = parameter_shapes(config)
    n_params = sum(math.prod(s) for _, s in shapes)
    use_lora = bool(lora_rank)
    if use_lora:
        adapted = [s for n, s in shapes if n.startswith("decoder.") and n.endswith(".weight")
                   and any(n.removesuffix(".weight").endswith("." + t) for t in lora_targets)]
        trainable = sum(lora_rank * (i + o) for o, i in adapted)        # A: (r, in), B: (out, r)
        trainable_bytes = 4 * trainable                                  # fp32 adapters
        copies = 1
    else:       # text reaches no vision tower: no gradient there, so AdamW keeps no state for it either
        trainable = sum(math.prod(s) for n, s in shapes if not n.startswith(("vision.", "projector.")))
        trainable_bytes = trainable * d
        copies = 2 + (beta > 0)

    H, I, L = text.hidden_size, text.intermediate_size, text.num_hidden_layers
    hd = getattr(text, "head_dim", None) or H // text.num_attention_heads
    qd, kvd = text.num_attention_heads * hd, text.num_key_value_heads * hd
    T = max_dialogue_tokens
    windows = _kept_tokens_per_layer(text, T)                           # tokens each layer's cache keeps
    kv_per_token = 2 * kvd * d                                           # K and V, one layer, one position
    n_types = len(set(getattr(text, "layer_types", None) or ["full_attention"]))

    kv_cache = rollout_batch * kv_per_token * sum(windows)
    kv_until_first_token = rollout_batch * kv_per_token * sum(T - w for w in windows)   # sliding layers' views
    sliding = any(w < T for w in windows) or "sliding_attention" in (getattr(text, "layer_types", None) or [])
    kv_kept = 0 if sliding else kept_dialogues * kv_per_token * T * L   # generation.reuses_cache: full layers only
    N_roll = rollout_batch * T                                           # positions in the prefill
    # one layer's largest temporaries: the residual stream and its normed copy, then either attention
    # (q, k, v, their GQA repeats, output) or the MLP (3 I-wide); a LoRA projection adds its fp32 input
    # copy and fp32 update (in and out wide) for the MLP's up_proj or down_proj
    layer_temporaries = max(2 * H + 3 * I, 2 * H + 4 * qd + 2 * kvd) * d \
        + ((4 * (H + I) if d != 4 else 4 * max(H, I)) if use_lora else 0)
    prefill = N_roll * layer_temporaries + n_types * rollout_batch * T * T      # + boolean masks (B, 1, T, T)

    # Training: the log-prob head runs backward first, while every stored activation is alive; then the
    # decoder's backward recomputes one checkpointed layer at a time. So the peak is stored + the larger.
    N = micro_batch * T                                                  # positions in a micro-batch
    coef = _saved_bytes_per_token(text.to_json_string(), lora_rank or 0, tuple(lora_targets), dtype)
    one_layer = int(N * (coef[0] * H + coef[1] * I + coef[2] * qd + coef[3] * kvd + coef[4]))
    stored = (L * N * H * d if grad_checkpointing else L * one_layer) \
        + 2 * N * H * d + n_types * micro_batch * T * T                  # decoder output and gathered; masks
    recompute = one_layer if grad_checkpointing else 0
    softcap = getattr(text, "final_logit_softcapping", None)
    head = min(logprob_chunk, N) * text.vocab_size * 4 * (4 if softcap else 3)

    plan = {
        "model_type": config.model_type, "parameters": n_params, "trainable": trainable,
        "lora_rank": lora_rank or 0, "lora_targets": list(lora_targets) if use_lora else [], "dtype": str(dtype),
        "micro_batch": micro_batch, "max_dialogue_tokens": T, "rollout_batch": rollout_batch,
        "grad_checkpointing": grad_checkpointing, "weight_copies": copies,
        "weights": copies * n_params * d, "teacher_weights": teacher_weights,
        "adapters": trainable_bytes * (1 + (beta > 0)) if use_lora else 0,
        "gradients": trainable_bytes,
        "optimizer": 2 * trainable_bytes,                                # AdamW: exp_avg, exp_avg_sq
        "kv_cache": kv_cache, "kv_until_first_token": kv_until_first_token, "prefill": prefill,
        "kv_kept": kv_kept, "kept_dialogues": kept_dialogues if kv_kept else 0,
        "activations": stored, "recompute": recompute, "logprob_head": head,
    }
    plan["persistent"] = plan["weights"] + teacher_weights + plan["adapters"] + plan["optimizer"]
    plan["rollout"] = kv_cache + kv_kept + kv_until_first_token + prefill
    plan["training"] = plan["gradients"] + stored + max(head, recompute)
    plan["total"] = plan["persistent"] + max(plan["rollout"], plan["training"])
    return plan


def largest_rollout_batch(config, most: int, free: int, **plan_kw) -> int:
    """The most dialogues per generate call, up to `most`, whose plan fits in 90% of `free` bytes, the rest
    left for what the plan does not count (CUDA context, kernel workspaces, fragmentation); 1 if none does
    (check_fits then says why)."""
    fits = lambda n: memory_plan(config, rollout_batch=n, **plan_kw)["total"] <= 0.9 * free     # noqa: E731
    return next((n for n in range(most, 1, -1) if fits(n)), 1)


def format_plan(plan: dict, free_bytes: int | None = None) -> str:
    """A few readable lines, in GiB (2^30 bytes), or MiB for a plan under 1 GiB (the tiny world's)."""
    unit, scale = ("GiB", GiB) if plan["total"] >= GiB else ("MiB", 2 ** 20)
    g = lambda b: f"{b / scale:6.2f} {unit}"                              # noqa: E731
    f = lambda b: f"{b / scale:.2f}"                                      # noqa: E731
    n = plan["parameters"]
    size = f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"
    what = (f"LoRA rank {plan['lora_rank']} on {', '.join(plan['lora_targets'])}" if plan["lora_rank"]
            else "full finetuning")
    lines = [
        f"memory plan: {plan['model_type']}, {size} parameters, {what}, "
        f"{plan['dtype'].removeprefix('torch.')}; {plan['trainable'] / 1e6:,.1f}M trainable",
        f"  weights      {g(plan['weights'])}  ({plan['weight_copies']} x {size})",
        *([f"  teacher      {g(plan['teacher_weights'])}  (a separate model)"] if plan["teacher_weights"] else []),
        f"  adapters     {g(plan['adapters'])}",
        f"  optimizer    {g(plan['optimizer'])}  (AdamW exp_avg + exp_avg_sq)",
        f"  rollout      {g(plan['rollout'])}  = KV cache {f(plan['kv_cache'])} (+ "
        f"{f(plan['kv_until_first_token'])} held until the first token) + prefill temporaries "
        f"{f(plan['prefill'])}  ({plan['rollout_batch']} dialogues x {plan['max_dialogue_tokens']} tokens)"
        + (f" + KV kept across turns {f(plan['kv_kept'])} ({plan['kept_dialogues']} dialogues)"
           if plan["kv_kept"] else ""),
        f"  training     {g(plan['training'])}  = gradients {f(plan['gradients'])} + activations "
        f"{f(plan['activations'])} + the larger of log-prob head {f(plan['logprob_head'])} and "
        f"a recomputed layer {f(plan['recompute'])}  (micro-batch "
        f"{plan['micro_batch']} x {plan['max_dialogue_tokens']} tokens, gradient checkpointing "
        f"{'on' if plan['grad_checkpointing'] else 'off'})",
        f"  peak         {g(plan['total'])}  = persistent {f(plan['persistent'])} + the larger of "
        f"rollout and training",
    ]
    if free_bytes is not None:
        fits = "fits" if plan["total"] <= free_bytes else "does NOT fit"
        lines.append(f"  free         {g(free_bytes)}  -> {fits}")
    return "\n".join(lines)


def check_fits(plan: dict, free_bytes: int):
    """Raise PlanError, one sentence with the numbers and the flag to change, if the plan's peak exceeds
    `free_bytes`."""
    if plan["total"] <= free_bytes:
        return
    resident = _human(plan["persistent"])
    if plan["persistent"] > free_bytes:
        part = f"the weights and optimiser state alone take {resident}"
        hint = ("train LoRA adapters (--lora-rank 16)" if not plan["lora_rank"]
                else "use a smaller model or a GPU with more memory")
    elif plan["rollout"] >= plan["training"]:
        part = (f"the rollout of {plan['rollout_batch']} dialogues x {plan['max_dialogue_tokens']} tokens takes "
                f"{_human(plan['rollout'])} on top of {resident} of weights and optimiser state")
        hint = ("lower --rollout-batch (dialogues per generate call) or" if plan["rollout_batch"] > 1 else "lower") \
            + " --max-dialogue-tokens"
    else:
        part = (f"training on micro-batches of {plan['micro_batch']} x {plan['max_dialogue_tokens']} tokens takes "
                f"{_human(plan['training'])} on top of {resident} of weights and optimiser state")
        hint = "lower --micro-batch or --max-dialogue-tokens" + (
            "" if plan["lora_rank"] else ", or train LoRA adapters (--lora-rank 16)")
    raise PlanError(f"This run needs about {_human(plan['total'])} of memory but {_human(free_bytes)} are free: "
                    f"{part}; {hint}.")


def _human(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB / 10 else f"{n / 2 ** 20:.1f} MiB"


def free_bytes(device) -> int:
    """Free memory where the model will live: torch.cuda.mem_get_info on CUDA, MemAvailable on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    return kib * 1024



def peak_bytes(fn, device="cpu") -> int:
    """What the plan is checked against: the peak of bytes allocated while fn runs, above what was allocated
    when it started (torch.cuda's counters on a GPU; on the CPU the profiler's allocation events, in
    order)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for e in sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start):
        live += e.self_cpu_memory_usage
        peak = max(peak, live)
    return peak

# ---- counting parameters ----------------------------------------------------------------------------

def parameter_shapes(config) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter tensor the model built from `config` has. Names are ours (not
    transformers'): 'decoder.' for the language model's layers, 'vision.' / 'projector.' for Gemma 3's."""
    text = config.get_text_config()
    H, I, V = text.hidden_size, text.intermediate_size, text.vocab_size
    hd = getattr(text, "head_dim", None) or H // text.num_attention_heads
    qd, kvd = text.num_attention_heads * hd, text.num_key_value_heads * hd
    qkv_bias = text.model_type == "qwen2" or getattr(text, "attention_bias", False)
    o_bias = text.model_type != "qwen2" and getattr(text, "attention_bias", False)
    mlp_bias = getattr(text, "mlp_bias", False)
    shapes = [("embed_tokens.weight", (V, H))]
    for i in range(text.num_hidden_layers):
        p = f"decoder.layers.{i}."
        for name, out, inp, bias in [("q_proj", qd, H, qkv_bias), ("k_proj", kvd, H, qkv_bias),
                                     ("v_proj", kvd, H, qkv_bias), ("o_proj", H, qd, o_bias),
                                     ("gate_proj", I, H, mlp_bias), ("up_proj", I, H, mlp_bias),
                                     ("down_proj", H, I, mlp_bias)]:
            shapes.append((f"{p}{name}.weight", (out, inp)))
            if bias:
                shapes.append((f"{p}{name}.bias", (out,)))
        if text.model_type in QK_NORM:
            shapes += [(f"{p}q_norm.weight", (hd,)), (f"{p}k_norm.weight", (hd,))]
        shapes += [(f"{p}norm{j}.weight", (H,)) for j in range(4 if text.model_type in SANDWICH_NORMS else 2)]
    shapes.append(("norm.weight", (H,)))
    if not getattr(config, "tie_word_embeddings", text.tie_word_embeddings):
        shapes.append(("lm_head.weight", (V, H)))
    if getattr(config, "vision_config", None) is not None:
        shapes += _siglip_shapes(config.vision_config)
        vH = config.vision_config.hidden_size
        shapes += [("projector.mm_input_projection_weight", (vH, H)), ("projector.mm_soft_emb_norm.weight", (vH,))]
    return shapes


def _siglip_shapes(v) -> list[tuple[str, tuple[int, ...]]]:
    """Gemma 3's SigLIP vision tower: patch embedding, position embedding, encoder layers with biased
    projections and LayerNorms, the final LayerNorm, and the attention-pooling head if vision_use_head."""
    H, I = v.hidden_size, v.intermediate_size
    linear = lambda name, o, i: [(f"{name}.weight", (o, i)), (f"{name}.bias", (o,))]        # noqa: E731
    layernorm = lambda name: [(f"{name}.weight", (H,)), (f"{name}.bias", (H,))]           # noqa: E731
    shapes = [("vision.patch_embedding.weight", (H, v.num_channels, v.patch_size, v.patch_size)),
              ("vision.patch_embedding.bias", (H,)),
              ("vision.position_embedding.weight", ((v.image_size // v.patch_size) ** 2, H))]
    for i in range(v.num_hidden_layers):
        p = f"vision.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes += linear(p + name, H, H)
        shapes += linear(p + "fc1", I, H) + linear(p + "fc2", H, I) + layernorm(p + "ln1") + layernorm(p + "ln2")
    shapes += layernorm("vision.post_layernorm")
    if getattr(v, "vision_use_head", True):
        shapes += [("vision.head.probe", (1, 1, H)), ("vision.head.in_proj_weight", (3 * H, H)),
                   ("vision.head.in_proj_bias", (3 * H,))]
        shapes += linear("vision.head.out_proj", H, H) + layernorm("vision.head.layernorm")
        shapes += linear("vision.head.fc1", I, H) + linear("vision.head.fc2", H, I)
    return shapes


# ---- counting activations ---------------------------------------------------------------------------

def _kept_tokens_per_layer(text, T: int) -> list[int]:
    layer_types = getattr(text, "layer_types", None) or ["full_attention"] * text.num_hidden_layers
    window = getattr(text, "sliding_window", None) or T
    return [min(T, window) if kind == "sliding_attention" else T for kind in layer_types]


@functools.lru_cache(maxsize=64)
def _saved_bytes_per_token(text_config_json: str, lora_rank: int, lora_targets: tuple, dtype) -> list[float]:
    """Bytes one decoder layer saves for backward per position, as c_H H + c_I I + c_q qd + c_kv kvd + c_1,
    fitted on six random one-layer miniatures of the architecture (each dimension varied in turn), with
    right padding so the attention mask path is the training one. The layer's input, parameters and
    boolean masks are left out (counted elsewhere)."""
    from transformers import AutoConfig
    text = AutoConfig.for_model(**json.loads(text_config_json))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                   # the miniatures are tiny: a thread pool would only add waiting
    try:
        with torch.random.fork_rng(devices=[]):          # the caller's random stream stays as it was
            torch.manual_seed(0)
            rows, saved = _measure_miniatures(text, lora_rank, lora_targets, dtype)
    finally:
        torch.set_num_threads(threads)
    solution = torch.linalg.lstsq(torch.tensor(rows, dtype=torch.float64),
                                  torch.tensor(saved, dtype=torch.float64)[:, None]).solution
    return solution[:, 0].tolist()


def _measure_miniatures(text, lora_rank, lora_targets, dtype):
    from transformers import AutoModelForCausalLM
    from infra import lora
    rows, saved = [], []
    for H, I, heads, kv_heads, hd in [(64, 128, 4, 2, 16), (128, 128, 4, 2, 16), (64, 256, 4, 2, 16),
                                      (64, 128, 8, 2, 16), (64, 128, 4, 4, 16), (64, 128, 4, 2, 32)]:
        small = copy.deepcopy(text)
        small.hidden_size, small.intermediate_size, small.num_hidden_layers = H, I, 1
        small.num_attention_heads, small.num_key_value_heads, small.head_dim = heads, kv_heads, hd
        small.vocab_size = 128
        if getattr(small, "layer_types", None):
            small.layer_types = ["full_attention"]
        model = AutoModelForCausalLM.from_config(small).to(dtype).train()
        if lora_rank:
            lora.add_lora(model, rank=lora_rank, targets=lora_targets)
        else:
            model.requires_grad_(True)
        B, T = 2, 32
        ids = torch.randint(0, 128, (B, T))
        attention = torch.ones(B, T, dtype=torch.long)
        attention[1, -4:] = 0                                           # right padding, as in training
        saved.append(_layer_saved_bytes(model, ids, attention) / (B * T))
        rows.append([H, I, heads * hd, kv_heads * hd, 1])
    return rows, saved


def _layer_saved_bytes(model, ids, attention) -> int:
    """Bytes of distinct storages autograd saves inside the first decoder layer's forward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen, layer_input = {}, []

    def pack(t):
        if t.dtype != torch.bool and t.layout == torch.strided:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)

    def enter(module, args, kwargs):
        layer_input.append((args[0] if args else kwargs["hidden_states"]).untyped_storage().data_ptr())
        hooks.__enter__()

    def leave(module, args, kwargs, out):
        hooks.__exit__(None, None, None)

    layer = model.get_decoder().layers[0]
    handles = [layer.register_forward_pre_hook(enter, with_kwargs=True),
               layer.register_forward_hook(leave, with_kwargs=True)]
    try:
        model(input_ids=ids, attention_mask=attention)
    finally:
        for h in handles:
            h.remove()
    return sum(b for ptr, b in seen.items() if ptr not in params and ptr not in layer_input)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", help="a config.json, a model folder, or a hub id already in the local cache")
    p.add_argument("--lora-rank", type=int, default=16, help="0: full finetuning")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.add_argument("--problems", type=int, default=8, help="B, problems per rollout batch")
    p.add_argument("--group-size", type=int, default=8, help="g, dialogues per problem")
    p.add_argument("--max-dialogue-tokens", type=int, default=8192)
    p.add_argument("--rollout-batch", type=int, default=None,
                   help="dialogues per generate call (default, as sml.py: the most, up to B x g, that fit --free-gib)")
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--no-grad-checkpointing", action="store_true")
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--free-gib", type=float, default=None, help="compare with this much free memory")
    args = p.parse_args(argv)
    from transformers import AutoConfig
    try:
        config = AutoConfig.from_pretrained(args.config)
    except (OSError, ValueError) as e:
        sys.exit(f"Could not read a model config from {args.config!r} ({str(e).splitlines()[0][:100]}); "
                 "pass a config.json or a model folder.")
    settings = dict(lora_rank=args.lora_rank, dtype=getattr(torch, args.dtype), micro_batch=args.micro_batch,
                    max_dialogue_tokens=args.max_dialogue_tokens, grad_checkpointing=not args.no_grad_checkpointing,
                    beta=args.beta)
    free = int(args.free_gib * GiB) if args.free_gib else None
    most = args.problems * args.group_size
    rollout_batch = args.rollout_batch or (largest_rollout_batch(config, most, free, **settings) if free else most)
    plan = memory_plan(config, rollout_batch=rollout_batch, **settings)
    print(format_plan(plan, free))
    if free is not None:
        try:
            check_fits(plan, free)
        except PlanError as e:
            print(e)
            sys.exit(1)


if __name__ == "__main__":
    main()
