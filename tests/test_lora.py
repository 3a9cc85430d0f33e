"""lora.py on tiny random Llama, Qwen2, Gemma-3 (text and multimodal): the base model at step 0,
gradients only in adapters, adapters off = base after training, merged and PEFT checkpoints, resume."""
import pytest
import torch
from safetensors import safe_open

from infra import lora

V = 64


def build(arch: str, dtype=torch.float32):
    """A tiny random model of `arch`, the same weights for the same arch."""
    from transformers import (Gemma3Config, Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma3TextConfig,
                              LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)
    text = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2)
    gemma = dict(text, head_dim=8, sliding_window=4, layer_types=["sliding_attention", "full_attention"])
    torch.manual_seed(0)
    model = {
        "llama": lambda: LlamaForCausalLM(LlamaConfig(**text)),
        "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**text)),
        "gemma3": lambda: Gemma3ForCausalLM(Gemma3TextConfig(**gemma)),
        "gemma3-mm": lambda: Gemma3ForConditionalGeneration(Gemma3Config(
            text_config=gemma, mm_tokens_per_image=4, vision_config=dict(
                hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                image_size=28, patch_size=14))),
    }[arch]()
    return model.to(dtype).eval()


ARCHS = ["llama", "qwen2", "gemma3", "gemma3-mm"]
IDS = torch.randint(0, V - 4, (2, 10), generator=torch.Generator().manual_seed(1))


def logits(model):
    return model(input_ids=IDS).logits


def train_steps(model, params, n=3):
    opt = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(n):
        loss = torch.nn.functional.cross_entropy(logits(model)[:, :-1].reshape(-1, V), IDS[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_zero_is_the_base_model_exactly(arch):
    model = build(arch)
    base = logits(model)
    lora.add_lora(model, rank=4, alpha=8)
    assert torch.equal(logits(model), base)


def test_bf16_base_stays_bf16_and_adapters_are_fp32():
    model = build("llama", torch.bfloat16)
    base = logits(model)
    params = lora.add_lora(model, rank=4)
    assert {p.dtype for p in params} == {torch.float32}
    assert all(m.base_layer.weight.dtype == torch.bfloat16 for m in lora.adapters(model).values())
    out = logits(model)
    assert out.dtype == torch.bfloat16 and torch.equal(out, base)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_linear_matches_the_equation_and_its_gradients(dtype):
    torch.manual_seed(0)
    layer = lora.LoRALinear(torch.nn.Linear(12, 10, bias=True).to(dtype), rank=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 5, 12, dtype=dtype, requires_grad=True)
    g = torch.randn(4, 5, 10, dtype=dtype)
    (layer(x) * g).sum().backward()
    A, B = layer.lora_A.detach().requires_grad_(), layer.lora_B.detach().requires_grad_()
    x_ref = x.detach().requires_grad_()
    W0, b = layer.base_layer.weight, layer.base_layer.bias
    h = x_ref.float() @ W0.float().T + b.float() + 2.0 * (x_ref.float() @ A.T) @ B.T    # alpha / r = 2
    (h * g.float()).sum().backward()
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=5e-2, rtol=2e-2)
    torch.testing.assert_close(layer.lora_A.grad, A.grad, **tol)
    torch.testing.assert_close(layer.lora_B.grad, B.grad, **tol)
    torch.testing.assert_close(x.grad.float(), x_ref.grad.float(), **tol)


@pytest.mark.parametrize("arch", ARCHS)
def test_only_adapters_receive_gradients(arch):
    model = build(arch)
    params = lora.add_lora(model, rank=4)
    logits(model).square().mean().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    adapter_names = {n for n, p in model.named_parameters() if any(p is q for q in params)}
    assert with_grad == adapter_names and len(adapter_names) == 2 * 7 * 2     # A, B x 7 projections x 2 layers
    assert all(not p.requires_grad for n, p in model.named_parameters() if n not in adapter_names)
    assert not any("vision" in n for n in adapter_names)                     # the language model's only


@pytest.mark.parametrize("arch", ARCHS)
def test_adapters_off_is_the_base_model_after_training(arch):
    model = build(arch)
    base = logits(model)
    train_steps(model, lora.add_lora(model, rank=4))
    adapted = logits(model)
    assert not torch.allclose(adapted, base, atol=1e-4)                      # training moved the student
    with lora.adapters_off(model):
        assert torch.equal(logits(model), base)
    assert torch.equal(logits(model), adapted)                               # and they are back on after


def test_reset_adapters_gives_the_base_model_and_seeded_draws():
    model = build("llama")
    base = logits(model)
    train_steps(model, lora.add_lora(model, rank=4))
    lora.reset_adapters(model, seed=7)
    assert torch.equal(logits(model), base)
    A7 = [m.lora_A.clone() for m in lora.adapters(model).values()]
    lora.reset_adapters(model, seed=8)
    A8 = [m.lora_A.clone() for m in lora.adapters(model).values()]
    lora.reset_adapters(model, seed=7)
    assert all(torch.equal(a, m.lora_A) for a, m in zip(A7, lora.adapters(model).values()))
    assert not torch.equal(A7[0], A8[0])
    q0, q1 = A7[0], A7[7]                                                    # layer 0's and layer 1's q_proj
    assert q0.shape == q1.shape and not torch.equal(q0, q1)                  # no two layers draw the same A


def test_add_lora_names_the_targets_and_the_layers_that_exist():
    model = build("llama")
    with pytest.raises(lora.LoRAError) as e:
        lora.add_lora(model, targets=("qkv_proj", "fc1"))
    msg = str(e.value)
    assert "qkv_proj" in msg and "q_proj" in msg and "gate_proj" in msg        # asked for, and what exists
    assert msg.endswith(".") and "\n" not in msg
    lora.add_lora(model, rank=2, targets=("q_proj",))
    assert len(lora.adapters(model)) == 2
    with pytest.raises(lora.LoRAError, match="already has LoRA adapters"):
        lora.add_lora(model)


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_model_equals_the_adapted_one_and_loads_in_plain_transformers(arch, tmp_path):
    from transformers import AutoModelForCausalLM, Gemma3ForConditionalGeneration
    model = build(arch)
    train_steps(model, lora.add_lora(model, rank=4))
    adapted = logits(model)
    lora.save_merged(model, None, tmp_path / "merged")
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any("lora" in k or "base_layer" in k for k in keys)
    cls = Gemma3ForConditionalGeneration if arch == "gemma3-mm" else AutoModelForCausalLM
    plain = cls.from_pretrained(tmp_path / "merged").eval()
    assert not lora.adapters(plain)
    torch.testing.assert_close(logits(plain), adapted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gemma3-mm"])
def test_save_then_load_adapters_into_a_fresh_base_resumes_exactly(arch, tmp_path):
    model = build(arch)
    train_steps(model, lora.add_lora(model, rank=4, alpha=16))
    adapted = logits(model)
    lora.save_adapters(model, tmp_path / "adapters")
    fresh = build(arch)
    params = lora.load_adapters(fresh, tmp_path / "adapters")
    assert torch.equal(logits(fresh), adapted)
    assert {p.data_ptr() for p in params} == {p.data_ptr() for p in fresh.parameters() if p.requires_grad}
    other = build(arch)                                                      # and into existing adapters,
    lora.add_lora(other, rank=4, alpha=1, seed=3)                            # the folder's alpha winning
    lora.load_adapters(other, tmp_path / "adapters")
    assert torch.equal(logits(other), adapted)


def test_load_adapters_refuses_a_folder_for_another_rank(tmp_path):
    model = build("llama")
    lora.add_lora(model, rank=4)
    lora.save_adapters(model, tmp_path / "adapters")
    other = build("llama")
    lora.add_lora(other, rank=8)
    with pytest.raises(lora.LoRAError, match="rank 4"):
        lora.load_adapters(other, tmp_path / "adapters")
    with pytest.raises(lora.LoRAError, match="adapter_config.json"):
        lora.load_adapters(build("llama"), tmp_path / "nowhere")


@pytest.mark.parametrize("arch", ["qwen2", "gemma3-mm"])
def test_peft_loads_the_saved_adapters_to_the_same_logits(arch, tmp_path):
    peft = pytest.importorskip("peft")
    model = build(arch)
    train_steps(model, lora.add_lora(model, rank=4, alpha=8))
    adapted = logits(model)
    lora.save_adapters(model, tmp_path / "adapters")
    peft_model = peft.PeftModel.from_pretrained(build(arch), tmp_path / "adapters").eval()
    n_peft = sum(1 for n, _ in peft_model.named_modules() if n.endswith(".lora_A"))
    assert n_peft == len(lora.adapters(model))                              # no adapter on the vision tower
    torch.testing.assert_close(peft_model(input_ids=IDS).logits, adapted, atol=1e-5, rtol=1e-5)

