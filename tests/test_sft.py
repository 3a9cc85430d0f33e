"""sft.py: the mask covers exactly the student's tokens, filtering keeps only successes, training lowers loss."""
import json

import torch

import dialogue
import sft
import tasks
import tinyworld
from conftest import random_llama


def test_single_turn_examples_mask_exactly_the_solution(tok):
    p = tasks.tiny_math_problems("train", n=1, seed=0)[0]
    (ids, mask), = sft.single_turn_examples([p], tok, tinyworld.HintTeacher().opening)
    student = [i for i, m in zip(ids, mask) if m]
    assert tok.decode(student) == p.solution + "<|end|>"
    assert tok.decode([i for i, m in zip(ids, mask) if not m]) == f"<|bos|><|user|>{p.statement}<|end|><|assistant|>"


def test_filtered_sft_keeps_only_successful_untruncated_dialogues(tok, monkeypatch, tmp_path):
    problems = tasks.tiny_math_problems("train", n=2, seed=0)
    chat = dialogue.ChatFormat(tok)
    script = {problems[0].statement: f"\\boxed{{{problems[0].answer}}}", problems[1].statement: "\\boxed{1}"}

    def fake_generate(model, prompts, n, **kw):
        outs = []
        for prompt in prompts:
            text = tok.decode(prompt)
            reply = next(v for k, v in script.items() if k in text)
            outs.append(tok.encode(reply, add_special_tokens=False) + [chat.end_of_turn])
        return outs
    monkeypatch.setattr(dialogue, "generate", fake_generate)
    examples = sft.collect(None, tok, tinyworld.HintTeacher(), problems, tmp_path, group_size=2, max_turns=2,
                           progress=False)
    rows = [json.loads(l) for l in open(tmp_path / "sft_dataset.jsonl")]
    assert len(examples) == 2 and all(r["problem_id"] == problems[0].id and r["success_turn"] == 1 for r in rows)
    for ids, mask in examples:     # the mask is 1 exactly on the student's (generated) tokens
        assert tok.decode([i for i, m in zip(ids, mask) if m]) == script[problems[0].statement] + "<|end|>"
    # a second call reuses the dataset in the run folder (resume) instead of rolling out again
    monkeypatch.setattr(dialogue, "generate", None)
    assert sft.collect(None, tok, tinyworld.HintTeacher(), problems, tmp_path, group_size=2, progress=False) == examples


def test_sft_training_lowers_the_loss_on_its_data(tok, tmp_path):
    model = random_llama(tok, seed=7)
    examples = sft.single_turn_examples(tasks.tiny_math_problems("train", n=8, seed=1), tok,
                                          tinyworld.HintTeacher().opening)
    from grpo import batch_tensors

    def loss():
        with torch.no_grad():
            ids, mask, att = batch_tensors(examples, tok.pad_token_id, "cpu")
            return sft.sft_loss(model, ids, mask, att, mask.sum()).item()
    before = loss()
    sft.train(model, tok, examples, tmp_path, epochs=20, lr=3e-3, batch_size=8, progress=False, save_every=1000)
    assert loss() < before - 1.0
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, 21)) and (tmp_path / "checkpoints" / "step-000020").exists()


def test_collect_seeds_every_chunk_from_the_callers_seed(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(dialogue, "rollout", lambda *a, seed, **k: seen.append(seed) or [])
    problems = tasks.tiny_math_problems("train", n=5, seed=0)
    sft.collect(None, None, None, problems, tmp_path / "a", chunk=2, seed=1, progress=False)
    sft.collect(None, None, None, problems, tmp_path / "b", chunk=2, seed=2, progress=False)
    # runfolder.derive_seed(seed, "collection", i): different training seeds, different samples
    assert seen == [1_000_003, 1_000_005, 1_000_007, 2_000_006, 2_000_008, 2_000_010]


def test_an_epoch_trains_on_every_example(tok, tmp_path):
    """40 examples in batches of 32: two steps, 32 + 8, none left out."""
    model = random_llama(tok, seed=3)
    examples = sft.single_turn_examples(tasks.tiny_math_problems("train", n=40, seed=2), tok,
                                        tinyworld.HintTeacher().opening)
    sft.train(model, tok, examples, tmp_path, batch_size=32, micro_batch=16, lr=1e-4, progress=False)
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["examples"] for r in rows] == [32, 8]
    assert sum(r["student_tokens"] for r in rows) == sum(sum(m) for _, m in examples)
