"""memory.py: parameters counted from the config equal the model's, the plan's weights, gradients and
AdamW state equal the bytes a real step allocates, the KV cache what transformers keeps, the per-layer
activations what autograd saves; check_fits names the numbers and the flag; the 12B fixture's count."""
import math
from pathlib import Path

import pytest
import torch

import generation
from infra import lora
from infra import memory


def cache_name(model) -> str:
    """The forward's name for the KV cache in the installed transformers (generation.py decides it)."""
    return generation._cache_argument(type(model))


FIXTURE = Path(__file__).parent / "fixtures" / "gemma-3-12b-it-config.json"
TEXT = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)


def config_of(arch: str):
    from transformers import Gemma3Config, Gemma3TextConfig, LlamaConfig, Qwen2Config, Qwen3Config
    gemma = dict(TEXT, head_dim=8, sliding_window=4, layer_types=["sliding_attention", "full_attention"])
    return {
        "llama": lambda: LlamaConfig(**TEXT),
        "llama-untied-bias": lambda: LlamaConfig(**TEXT, tie_word_embeddings=False, attention_bias=True, mlp_bias=True),
        "qwen2": lambda: Qwen2Config(**TEXT),
        "qwen2-tied": lambda: Qwen2Config(**TEXT, tie_word_embeddings=True),
        "qwen3": lambda: Qwen3Config(**TEXT, head_dim=16),
        "gemma3": lambda: Gemma3TextConfig(**gemma),
        "gemma3-mm": lambda: Gemma3Config(text_config=gemma, mm_tokens_per_image=4, vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28,
            patch_size=14)),
        "gemma3-mm-nohead": lambda: Gemma3Config(text_config=gemma, mm_tokens_per_image=4, vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
            patch_size=14, vision_use_head=False)),
    }[arch]()


def model_of(config):
    from transformers import AutoModelForCausalLM, Gemma3ForConditionalGeneration
    torch.manual_seed(0)
    if config.model_type == "gemma3":
        return Gemma3ForConditionalGeneration(config)
    return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("arch", ["llama", "llama-untied-bias", "qwen2", "qwen2-tied", "qwen3", "gemma3",
                                  "gemma3-mm", "gemma3-mm-nohead"])
def test_parameter_count_from_the_config_equals_the_model(arch):
    config = config_of(arch)
    model = model_of(config)
    shapes = memory.parameter_shapes(config)
    assert sum(math.prod(s) for _, s in shapes) == sum(p.numel() for p in model.parameters())
    assert len(shapes) == len(list(model.parameters()))


def test_the_12b_fixture_counts_what_published_figures_say():
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(FIXTURE)
    shapes = memory.parameter_shapes(config)
    text = sum(math.prod(s) for n, s in shapes if not n.startswith(("vision.", "projector.")))
    total = sum(math.prod(s) for _, s in shapes)
    # Keras Hub's gemma3_instruct_12b_text preset states 11,765,788,416 parameters with a 262,144-row
    # vocabulary; transformers' config has 262,208 rows (64 more x hidden 3840).
    assert text - 64 * 3840 == 11_765_788_416
    assert 12.1e9 < total < 12.3e9                                          # "12B" with a 0.4B vision tower


@pytest.mark.parametrize("arch,rank,dtype", [("llama", 0, torch.float32), ("qwen2", 4, torch.float32),
                                             ("gemma3", 4, torch.bfloat16), ("gemma3-mm", 0, torch.bfloat16)])
def test_weights_gradients_and_adamw_state_equal_the_bytes_of_a_real_step(arch, rank, dtype):
    config = config_of(arch)
    model = model_of(config).to(dtype)
    base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    params = lora.add_lora(model, rank=rank) if rank else list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    model(input_ids=torch.randint(0, 60, (2, 8))).logits.float().square().mean().backward()
    grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    opt.step()
    state = [s for p in params for s in opt.state[p].items()]
    moments = sum(t.numel() * t.element_size() for k, t in state if k != "step")
    assert {k for k, _ in state} == {"step", "exp_avg", "exp_avg_sq"}
    assert all(t.dim() == 0 for k, t in state if k == "step")              # the left-out scalar counters

    plan = memory.memory_plan(config, lora_rank=rank, dtype=dtype, micro_batch=1, max_dialogue_tokens=16,
                              rollout_batch=2)
    assert plan["weights"] == plan["weight_copies"] * base_bytes
    assert plan["adapters"] == (sum(p.numel() * p.element_size() for p in params) if rank else 0)
    assert plan["trainable"] == sum(p.numel() for p in params if p.grad is not None)   # text: no vision grads
    assert plan["gradients"] == grad_bytes
    assert plan["optimizer"] == moments
    assert plan["weight_copies"] == (1 if rank else 2)


def test_kv_cache_is_what_transformers_keeps_with_a_sliding_window():
    from transformers import DynamicCache
    config = config_of("gemma3")                                             # window 4: layer 0 slides, layer 1 not
    model = model_of(config).eval()
    B, T = 3, 11
    cache = DynamicCache(config=config)
    with torch.no_grad():
        model(input_ids=torch.randint(0, 60, (B, T)), use_cache=True, **{cache_name(model): cache})
        held = _cache_bytes(cache)                                           # right after the prefill
        model(input_ids=torch.randint(0, 60, (B, 1)), use_cache=True, **{cache_name(model): cache})
        after = _cache_bytes(cache)                                          # after the first new token
    at_prefill = memory.memory_plan(config, dtype=torch.float32, rollout_batch=B, max_dialogue_tokens=T)
    assert held == at_prefill["kv_cache"] + at_prefill["kv_until_first_token"]
    one_more = memory.memory_plan(config, dtype=torch.float32, rollout_batch=B, max_dialogue_tokens=T + 1)
    assert after == one_more["kv_cache"]
    assert at_prefill["kv_until_first_token"] > 0


def _cache_bytes(cache) -> int:
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for layer in cache.layers for t in (layer.keys, layer.values)}
    return sum(storages.values())


@pytest.mark.parametrize("arch,rank,dtype", [("llama", 0, torch.bfloat16), ("qwen3", 8, torch.bfloat16),
                                             ("gemma3", 8, torch.bfloat16), ("gemma3", 0, torch.float32)])
def test_one_layers_activations_extrapolate_to_dimensions_not_measured(arch, rank, dtype):
    config = config_of(arch)
    for key, value in dict(hidden_size=96, intermediate_size=352, num_attention_heads=6, num_key_value_heads=3,
                           head_dim=24).items():                            # none of the miniatures' sizes
        setattr(config, key, value)
    model = model_of(config).to(dtype).train()
    if rank:
        lora.add_lora(model, rank=rank)
    else:
        model.requires_grad_(True)
    B, T = 2, 48
    attention = torch.ones(B, T, dtype=torch.long)
    attention[0, -5:] = 0
    measured = memory._layer_saved_bytes(model, torch.randint(0, 60, (B, T)), attention)
    c = memory._saved_bytes_per_token(config.to_json_string(), rank, tuple(lora.DEFAULT_TARGETS), dtype)
    estimate = B * T * (c[0] * 96 + c[1] * 352 + c[2] * 6 * 24 + c[3] * 3 * 24 + c[4])
    assert measured == pytest.approx(estimate, rel=0.02)


def test_a_lora_kl_reference_keeps_the_starting_adapters_and_a_separate_teacher_is_resident():
    config = config_of("qwen2")
    settings = dict(lora_rank=4, dtype=torch.float32, micro_batch=1, max_dialogue_tokens=16, rollout_batch=2)
    plain, kl = memory.memory_plan(config, **settings), memory.memory_plan(config, beta=0.1, **settings)
    model = model_of(config)
    lora.add_lora(model, rank=4)
    kept = lora.adapter_values(model)                                        # what grpo.reference_policy keeps
    assert kl["adapters"] - plain["adapters"] == sum(t.numel() * t.element_size() for ab in kept.values() for t in ab)
    assert kl["weight_copies"] == plain["weight_copies"] == 1                # and no copy of the base
    teacher = memory.memory_plan(config, teacher_weights=3 * memory.GiB, **settings)
    assert teacher["persistent"] - plain["persistent"] == teacher["total"] - plain["total"] == 3 * memory.GiB
    assert "teacher        3.00 GiB" in memory.format_plan(teacher)
    assert "MiB" in memory.format_plan(plain) and "0.00 GiB" not in memory.format_plan(plain)   # small: in MiB


def test_the_12b_plan_by_hand():
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(FIXTURE)
    on = memory.memory_plan(config, lora_rank=16)
    off = memory.memory_plan(config, lora_rank=16, grad_checkpointing=False)
    full = memory.memory_plan(config, lora_rank=0)
    assert on["activations"] < off["activations"] / 5
    # LoRA rank 16 on 7 projections of 48 layers: r (in + out) each, fp32
    per_layer = 16 * ((3840 + 4096) + 2 * (3840 + 2048) + (4096 + 3840) + 2 * (3840 + 15360) + (15360 + 3840))
    assert on["trainable"] == 48 * per_layer and on["optimizer"] == 2 * 4 * 48 * per_layer
    assert on["weights"] == 2 * on["parameters"] and on["weight_copies"] == 1
    assert full["weights"] == 2 * 2 * full["parameters"]                     # student + resident teacher, bf16
    assert full["gradients"] == 2 * full["trainable"] and full["optimizer"] == 2 * full["gradients"]
    # 8 full-attention layers keep 8192 positions, 40 sliding ones 1024 (the rest until the first token)
    kv_per_position = 2 * 8 * 256 * 2                                        # K and V, 8 kv heads x 256, bf16
    assert on["kv_cache"] == 64 * kv_per_position * (8 * 8192 + 40 * 1024)
    assert on["kv_until_first_token"] == 64 * kv_per_position * 40 * (8192 - 1024)


def test_check_fits_names_the_numbers_and_what_to_change():
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(FIXTURE)
    GiB = memory.GiB
    rollout_bound = memory.memory_plan(config, lora_rank=16)
    with pytest.raises(memory.PlanError) as e:
        memory.check_fits(rollout_bound, 80 * GiB)
    msg = str(e.value)
    assert f"{rollout_bound['total'] / GiB:.1f} GiB" in msg and "80.0 GiB are free" in msg
    assert "--rollout-batch" in msg and "--max-dialogue-tokens" in msg and msg.endswith(".") and "\n" not in msg
    training_bound = memory.memory_plan(config, lora_rank=16, rollout_batch=1, micro_batch=64)
    with pytest.raises(memory.PlanError, match="--micro-batch"):
        memory.check_fits(training_bound, 80 * GiB)
    with pytest.raises(memory.PlanError, match="--lora-rank"):
        memory.check_fits(memory.memory_plan(config, lora_rank=0), 80 * GiB)
    small = memory.memory_plan(config, lora_rank=16, rollout_batch=4, max_dialogue_tokens=2048)
    memory.check_fits(small, 80 * GiB)                                       # fits: no exception
    assert "fits" in memory.format_plan(small, 80 * GiB)


def test_free_bytes_on_the_cpu_reads_memavailable():
    assert memory.free_bytes("cpu") > 0


def test_an_unknown_architecture_is_one_clear_sentence():
    from transformers import GPT2Config
    with pytest.raises(memory.PlanError, match="'gpt2'"):
        memory.memory_plan(GPT2Config())


def test_the_plan_is_close_to_the_peak_a_real_step_and_prefill_allocate():
    """Peak bytes allocated (torch.profiler, CPU, fp32) by grpo.masked_logprobs + backward with gradient
    checkpointing and LoRA, and by generation.generate's prefill of T - 1 tokens and its one new token,
    against the plan's training and rollout."""
    from transformers import LlamaConfig, LlamaForCausalLM
    import grpo
    config = LlamaConfig(vocab_size=1024, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    lora.add_lora(model, rank=8)
    model.activation_checkpointing_enable()
    mb, T, RB = 2, 513, 4
    plan = memory.memory_plan(config, lora_rank=8, dtype=torch.float32, micro_batch=mb, max_dialogue_tokens=T,
                              rollout_batch=RB)
    ids = torch.randint(0, 1024, (mb, T))
    mask, attention = torch.ones(mb, T), torch.ones(mb, T, dtype=torch.long)
    mask[:, 0] = 0                                                           # 1024 student positions: one chunk

    def train():
        logp = grpo.masked_logprobs(model.train(), ids, mask, attention)
        (-(logp * mask).sum() / mask.sum()).backward()

    prompts = torch.randint(0, 1024, (RB, T - 1)).tolist()
    prompts[0] = prompts[0][16:]                                             # left padding, as in a rollout

    def prefill():                                 # generation's own: the call's cache buffer and the prefill
        generation.generate(model.eval(), prompts, 1, temperature=0)

    assert memory.peak_bytes(train) == pytest.approx(plan["training"], rel=0.25)
    assert memory.peak_bytes(prefill) == pytest.approx(plan["rollout"], rel=0.25)



def test_caches_kept_across_turns_are_counted_for_full_attention_models_only():
    """A rollout keeps each live dialogue's keys and values between turns (generation.PrefixCache): all of
    them at full length, on top of the generate call's batch; Gemma 3 (sliding windows) keeps none."""
    from transformers import AutoConfig, LlamaConfig
    llama = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=100)
    base = memory.memory_plan(llama, rollout_batch=4, max_dialogue_tokens=256)
    kept = memory.memory_plan(llama, rollout_batch=4, max_dialogue_tokens=256, kept_dialogues=16)
    assert kept["kv_kept"] == 16 * 256 * 3 * 2 * 2 * 16 * 2                # dialogues x T x layers x K,V x kv x bf16
    assert kept["rollout"] == base["rollout"] + kept["kv_kept"]
    assert "KV kept across turns" in memory.format_plan(kept) and "kept" not in memory.format_plan(base)
    gemma = AutoConfig.from_pretrained(FIXTURE)
    assert memory.memory_plan(gemma, kept_dialogues=64)["kv_kept"] == 0
