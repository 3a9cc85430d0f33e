"""Tiny random models of the real architectures, with the real chat templates, as local model folders.

The real path (`python sml.py --model <hub id or folder>`) must work on the paper's model (Gemma-3-IT)
and on the other chat models a reader is likely to try (Qwen2.5, Llama-3.x). None can be downloaded
here, so this module builds what a downloaded one looks like, in miniature:

  * the model: the real class (Gemma3ForCausalLM, Gemma3ForConditionalGeneration with a tiny vision
    tower, Qwen2ForCausalLM, LlamaForCausalLM with llama3 rope scaling), random weights, hidden 32,
    2 layers; settings that change the code path are kept (Gemma's sliding-window layers, its final
    logit soft-capping, which the multimodal class keeps in config.text_config, tied or untied heads);
  * the tokenizer: a byte-level BPE trained on the spot with the `tokenizers` trainer, so it merges
    the way real ones do ("\\n\\n", ".\\n\\n" are single tokens), with the template's special tokens as
    special added tokens, bos/eos/pad as in the model's published tokenizer_config.json, and a bos
    added by encode() where the real tokenizer adds one (Gemma, Llama 3);
  * the chat template, verbatim from the model's published tokenizer_config.json (fixtures/chat_templates,
    sources in SOURCES.md).

    python tests/realarch.py      # build every architecture's folder once and print where it is

`model_folder(arch)` saves the folder (save_pretrained: config.json, safetensors, tokenizer files and
chat_template.jinja) once, under $SML_CACHE/realarch or a temporary folder. `build(arch)` returns the
model and the tokenizer in memory.

Deviations from the real models: a vocabulary of about 600 tokens; Gemma's SentencePiece tokenizer is
replaced by the same kind of byte-level BPE with a regex split as the others; `nudge()` shifts two logits
so that a random student ends its turns and sometimes answers, which the end-to-end tests need (a random
model would otherwise almost never stop, nor ever be rewarded).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

TEMPLATES = Path(__file__).parent / "fixtures" / "chat_templates"
ANSWER = "\\boxed{4}"      # an added token: the one answer a nudged random student can give


@dataclass(frozen=True)
class Arch:
    name: str
    model_class: str          # what AutoModelForCausalLM returns for the saved folder
    family: str               # which tokenizer: gemma, qwen or llama3
    template: str             # file in fixtures/chat_templates
    tie: bool = True          # tied input and output embeddings, as the real model


ARCHS = {a.name: a for a in [
    Arch("gemma3-text", "Gemma3ForCausalLM", "gemma", "gemma-3-it.jinja"),                  # gemma-3-1b-it
    Arch("gemma3", "Gemma3ForConditionalGeneration", "gemma", "gemma-3-it.jinja"),          # gemma-3-12b-it
    Arch("qwen2.5", "Qwen2ForCausalLM", "qwen", "qwen2.5-instruct.jinja", tie=False),       # Qwen2.5-7B-Instruct
    Arch("llama3.1", "LlamaForCausalLM", "llama3", "llama-3.1-instruct.jinja", tie=False),  # Llama-3.1-8B-Instruct
    Arch("llama3.2", "LlamaForCausalLM", "llama3", "llama-3.2-instruct.jinja"),             # Llama-3.2-1B-Instruct
]}
QWEN3_TEMPLATE = "qwen3.jinja"      # Qwen3-8B: rewrites earlier turns, so the project must refuse it


def build(arch: str, seed: int = 0, tokenizer=None):
    """(model, tokenizer) of a tiny random `arch`, in eval mode."""
    a = ARCHS[arch]
    tok = tokenizer or build_tokenizer(a.family, a.template)
    torch.manual_seed(seed)
    model = _MODELS[a.model_class](tok, a.tie)
    return model.eval(), tok


def model_folder(arch: str) -> Path:
    """A local model folder of `arch`, nudged (see nudge()), as save_pretrained writes it; built once.

    The nudge makes the student end its turns and sometimes answer, so that in the end-to-end tests the
    teacher is asked to reply and GRPO sees groups with different rewards. The folder's name carries a
    hash of this file and of the template: a change to either builds a new one."""
    a = ARCHS[arch]
    version = hashlib.sha256(Path(__file__).read_bytes() + (TEMPLATES / a.template).read_bytes()).hexdigest()[:8]
    root = Path(os.environ.get("SML_CACHE") or Path(tempfile.gettempdir()) / "sml-cache") / "realarch"
    path = root / f"{arch}-{version}"
    if not (path / "config.json").exists():
        model, tok = build(arch)
        nudge(model, tok)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root))
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(path)          # atomic: a parallel session that got there first keeps its folder
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def nudge(model, tok, p_end: float = 0.3, p_answer: float = 0.12):
    """Make a random model end its turn with probability ~p_end and say ANSWER with ~p_answer per token.

    Hidden dimension 0 of every input embedding is set to one constant, so after the final norm it
    carries a near-constant value h0 at every position; the output rows of the end-of-turn token and of
    ANSWER get extra weight on that dimension, so their logits rise by a near-constant amount."""
    from dialogue import ChatFormat
    end, answer = ChatFormat(tok, check=False).end_of_turn, tok.convert_tokens_to_ids(ANSWER)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    with torch.no_grad():
        emb[:, 0] = 1.0
        if head.data_ptr() != emb.data_ptr():
            head[:, 0] = head[:, 0].mean()
        ids = torch.tensor([tok.encode("Solve: what is 2 + 2? Explain your reasoning.", add_special_tokens=False)])
        h0 = model.get_decoder()(input_ids=ids).last_hidden_state[0, :, 0].mean().item()   # (T,) -> scalar
        V = head.shape[0]
        for token, p in ((end, p_end), (answer, p_answer)):   # softmax odds p / (1 - p_end - p_answer) x V
            head[token, 0] += torch.log(torch.tensor(p * V / (1 - p_end - p_answer))).item() / h0


# ---------------------------------------------------------------------------------------------
# Tokenizers: a byte-level BPE trained here, with the real special tokens and settings.
# ---------------------------------------------------------------------------------------------

# Pre-tokenizer regexes of the real tokenizer.json files: Llama 3's (also used for Gemma), Qwen2's.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class Family:
    specials: list          # special tokens, in id order
    bos: str | None
    eos: str
    pad: str | None
    add_bos: bool           # encode() puts bos first, as the real tokenizer's post-processor does
    split: str              # the pre-tokenizer's regex
    markup: tuple           # (user turn opens, user turn closes and the model's opens, model's closes)


FAMILIES = {
    "gemma": Family(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                     "<end_of_image>", "<image_soft_token>"], "<bos>", "<eos>", "<pad>", True, LLAMA3_SPLIT,
                    ("<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n", "<end_of_turn>\n")),
    "qwen": Family(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", "<|endoftext|>", False,
                   QWEN2_SPLIT, ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n")),
    "llama3": Family(["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>",
                      "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"], "<|begin_of_text|>",
                     "<|eot_id|>", None, True, LLAMA3_SPLIT,
                     ("<|start_header_id|>user<|end_header_id|>\n\n",
                      "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")),
}


def build_tokenizer(family: str, template: str, vocab_size: int = 600):
    """A PreTrainedTokenizerFast like the real one of `family`, with the chat template `template`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    f = FAMILIES[family]
    extra = ["<think>", "</think>"] if template == QWEN3_TEMPLATE else []   # Qwen3's, not special
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(f.split), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=f.specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(f.markup), trainer)
    tok.add_tokens(extra + [ANSWER])
    if f.add_bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{f.bos} $A", pair=f"{f.bos} $A {f.bos} $B",
                                                           special_tokens=[(f.bos, tok.token_to_id(f.bos))])
    names = {"bos_token": f.bos, "eos_token": f.eos, "pad_token": f.pad,
             "unk_token": "<unk>" if family == "gemma" else None}
    return PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=(TEMPLATES / template).read_text(),
                                   model_max_length=8192, **{k: v for k, v in names.items() if v})


def _corpus(markup):
    """Training text: the tasks' wording, dialogue-shaped, with the template's role markup and newlines."""
    import dialogue
    import tasks
    user, to_model, end = markup
    root = Path(__file__).parent / "fixtures"
    problems = tasks.load_omni_math(str(root / "omni_math.jsonl"), "train") + tasks.load_omni_math(
        str(root / "omni_math.jsonl"), "test")
    texts = [dialogue.TEACHER_PROMPT, dialogue.student_instructions(problems[0]),
             "Let me think step by step.\n\nThe answer is \\boxed{12}.\n", "Not quite. Check the sign.\n\n",
             "You are a helpful assistant.\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"]
    texts += [f"{p.statement}\n\n{p.solution}\n\nThe final answer: {p.answer}" for p in problems]
    for _ in range(20):
        for t in texts:
            yield user + t + to_model + t.split("\n")[0] + end


# ---------------------------------------------------------------------------------------------
# Models: the real classes, tiny.
# ---------------------------------------------------------------------------------------------

def _ids(tok):
    return dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id)


def _gemma3_text_config(tok, tie):
    from transformers import Gemma3TextConfig
    # sliding_window 4 with layer 0 sliding: every prompt here is longer than the window.
    # final_logit_softcapping 30 (Gemma 2's value; gemma-3-1b-it's published config has null).
    return Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            num_key_value_heads=1, head_dim=16, sliding_window=4,
                            layer_types=["sliding_attention", "full_attention"], max_position_embeddings=8192,
                            query_pre_attn_scalar=16, final_logit_softcapping=30.0, tie_word_embeddings=tie,
                            **_ids(tok))


def _gemma3_text(tok, tie):
    from transformers import Gemma3ForCausalLM
    return Gemma3ForCausalLM(_gemma3_text_config(tok, tie))


def _gemma3_conditional(tok, tie):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=16, patch_size=8)
    ids = tok.convert_tokens_to_ids
    config = Gemma3Config(text_config=_gemma3_text_config(tok, tie).to_dict(), vision_config=vision.to_dict(),
                          mm_tokens_per_image=4, boi_token_index=ids("<start_of_image>"),
                          eoi_token_index=ids("<end_of_image>"), image_token_index=ids("<image_soft_token>"),
                          tie_word_embeddings=tie)
    return Gemma3ForConditionalGeneration(config)


def _qwen2(tok, tie):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    return Qwen2ForCausalLM(Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                                        tie_word_embeddings=tie, **_ids(tok)))


def _llama(tok, tie):
    from transformers import LlamaConfig, LlamaForCausalLM
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
                                        rope_parameters=rope, tie_word_embeddings=tie, **_ids(tok)))


_MODELS = {"Gemma3ForCausalLM": _gemma3_text, "Gemma3ForConditionalGeneration": _gemma3_conditional,
           "Qwen2ForCausalLM": _qwen2, "LlamaForCausalLM": _llama}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for name in ARCHS:
        print(name, model_folder(name))
