"""The real-model path on the real architectures and chat templates: Gemma-3 (text-only and as
gemma-3-12b-it loads), Qwen2.5, Llama-3.1 and 3.2; Qwen3's template refused. No network: tiny random
models with the published chat templates (realarch.py, fixtures/chat_templates).
"""
import json
from pathlib import Path

import pytest
import torch

import dialogue
import evaluate
import grpo
from infra import lora
import report
import realarch
from infra import runfolder
import sml
import tasks
from dialogue import ChatFormat
from infra.runfolder import UserError

ARCHS = list(realarch.ARCHS)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small have nothing to split between threads, and on a busy machine two threads mostly
    wait for each other: one thread made this file several times faster on the shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def built():
    """arch -> (random model, tokenizer), built once for the module."""
    return {a: realarch.build(a) for a in ARCHS}


# ---------------------------------------------------------------------------------------------
# The chat template, segment by segment, token by token.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_chat_format_accepts_the_real_template(built, arch):
    _, tok = built[arch]
    chat = ChatFormat(tok)
    end = tok.apply_chat_template([{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}],
                                  tokenize=False)
    assert end.split("A")[-1].startswith(tok.decode([chat.end_of_turn]))   # the token that closes a reply
    assert chat.end_of_turn in chat.stop_ids                                # ... ends a student turn


def test_qwen3_template_is_refused_in_one_sentence(tmp_path):
    from transformers import AutoTokenizer
    realarch.build_tokenizer("qwen", realarch.QWEN3_TEMPLATE).save_pretrained(tmp_path / "qwen3")
    tok = AutoTokenizer.from_pretrained(tmp_path / "qwen3")
    with pytest.raises(UserError, match="not prefix-preserving") as e:
        ChatFormat(tok)
    message = str(e.value)
    assert str(tmp_path / "qwen3") in message and "\n" not in message and message.count(". ") == 0


class ScriptedTeacher:
    """Fixed replies with newlines and punctuation, so the BPE's merges ("\\n\\n", ".\\n\\n") are exercised."""
    replies = ["Not quite.\n\nCheck the sum again.", "Yes: it is even, and smaller than 5."]

    def opening(self, problem):
        return dialogue.student_instructions(problem) + problem.statement

    def reply(self, ds):
        return [self.replies[d.turns - 1] for d in ds]


STUDENT = ["Let me see.\n\nIt is \\boxed{5}.", "Is the answer even?", "Then it is \\boxed{4}."]


def scripted_rollout(monkeypatch, tok, max_turns=3):
    """One dialogue whose student turns are STUDENT, encoded as the tokenizer would (a stand-in for
    a model that samples exactly the canonical tokens), so the whole rendering can be compared id for id."""
    chat = ChatFormat(tok)
    turns = []

    def fake_generate(model, prompts, max_new_tokens, **kw):
        turns.append(len(prompts))
        return [chat.encode(STUDENT[len(turns) - 1]) + [chat.end_of_turn] for _ in prompts]
    with monkeypatch.context() as m:
        m.setattr(dialogue, "generate", fake_generate)
        problem = tasks.load_omni_math(str(FIXTURES / "answer_four.jsonl"), "train")[0]
        [d] = dialogue.rollout(None, tok, [problem], ScriptedTeacher(), max_turns=max_turns, chat=chat)
    return d, chat


def as_messages(d):
    return [{"role": "user" if m["role"] == "teacher" else "assistant", "content": m["text"]} for m in d.messages]


@pytest.mark.parametrize("arch", ARCHS)
def test_segments_equal_the_templates_encoding_of_the_whole_dialogue(built, arch, monkeypatch):
    _, tok = built[arch]
    d, chat = scripted_rollout(monkeypatch, tok)
    assert d.success_turn == 3 and [r for r, _ in d.segments] == ["teacher", "student"] * 3
    messages = as_messages(d)
    whole = tok.apply_chat_template(messages, tokenize=True)["input_ids"]   # what HF would feed the model
    assert d.ids + chat.encode(chat.tail) == whole                          # the template's "\n" after the last turn
    # every prompt the student was given is the template's encoding of the dialogue so far
    starts = [i for i, (r, _) in enumerate(d.segments) if r == "student"]
    for k, i in enumerate(starts):
        prompt = [t for _, seg in d.segments[:i] for t in seg]
        assert prompt == tok.apply_chat_template(messages[:2 * k + 1], tokenize=True,
                                                 add_generation_prompt=True)["input_ids"]
    # the tokenizer merged newlines with other characters here: a char-level tokenizer could not test this
    pieces = [tok.decode([t]) for t in whole]
    assert any("\n" in p and p.strip() and not p.startswith("<") for p in pieces)     # e.g. ".\n\n"


@pytest.mark.parametrize("arch", ARCHS)
def test_student_mask_is_one_exactly_on_sampled_student_tokens(arch):
    """A real rollout of the saved model folder (loaded as sml.py loads it): each run of mask 1 is one
    student turn (its text, then its end-of-turn token); each run of 0 before it is a teacher turn ending
    with the template's role header; the template's <bos> is there once."""
    model, tok = dialogue.load_model(str(realarch.model_folder(arch)), "cpu")
    chat = ChatFormat(tok)
    user = [{"role": "user", "content": "U"}]
    header = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    header = header[len(tok.apply_chat_template(user, tokenize=False)):]
    problems = tasks.load_omni_math(str(FIXTURES / "answer_four.jsonl"), "train")[:2]
    ds = dialogue.rollout(model, tok, problems, ScriptedTeacher(), group_size=2, max_turns=3, seed=1, chat=chat,
                          sampling=dialogue.Sampling(temperature=1.0, max_turn_tokens=10, max_dialogue_tokens=400))
    assert any(d.turns > 1 for d in ds)                                     # teachers replied
    for d in ds:
        ids, mask = d.ids, d.student_mask
        runs, start = [], 0                                                 # (mask value, ids) runs
        for i in range(1, len(ids) + 1):
            if i == len(ids) or mask[i] != mask[start]:
                runs.append((mask[start], ids[start:i]))
                start = i
        assert [v for v, _ in runs] == [0, 1] * d.turns
        teachers = [m["text"] for m in d.messages if m["role"] == "teacher"]
        for (_, said), (_, sampled), student, teacher in zip(runs[::2], runs[1::2], d.student_turns(), teachers):
            text = tok.decode(said)
            assert text.endswith(header) and teacher.strip() in text
            assert sampled[-1] in chat.stop_ids or len(sampled) == 10
            assert tok.decode([t for t in sampled if t not in chat.stop_ids], skip_special_tokens=True).strip() \
                == student["text"]
        if tok.bos_token_id is not None:                                    # (a random student may say it too)
            assert [t for t, m in zip(ids, mask) if not m].count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id


# ---------------------------------------------------------------------------------------------
# Generation and log-probs against Hugging Face's own.
# ---------------------------------------------------------------------------------------------

def hf_greedy(model, prompts, n, pad, stop):
    L = max(map(len, prompts))
    ids = torch.tensor([[pad] * (L - len(p)) + p for p in prompts])                       # (B, L)
    att = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])              # (B, L)
    out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=n, do_sample=False,
                         pad_token_id=pad, eos_token_id=stop)
    cut = [next((j + 1 for j, t in enumerate(row) if t in stop), len(row)) for row in out[:, L:].tolist()]
    return [row[:j] for row, j in zip(out[:, L:].tolist(), cut)]


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_generation_equals_hf_generate(built, arch):
    """Gemma's sliding-window layer (window 4) is shorter than every prompt; rows stop at different steps,
    so the batch and its cache shrink mid-generation."""
    model, tok = built[arch]
    chat = ChatFormat(tok)
    prompts = [chat.opening(t) for t in ["What is 2 + 2?", "Hi", "A longer prompt, with a second clause in it."]]
    free = dialogue.generate(model, prompts, 16, temperature=0, stop_token_ids=chat.stop_ids, pad_token_id=chat.pad_id)
    assert free == hf_greedy(model, prompts, 16, chat.pad_id, chat.stop_ids)
    stop = [free[0][4]]                    # row 0 stops by step 5, the others whenever they say it
    ours = dialogue.generate(model, prompts, 16, temperature=0, stop_token_ids=stop, pad_token_id=chat.pad_id,
                             sync_every=2)
    assert ours == hf_greedy(model, prompts, 16, chat.pad_id, stop) and len(ours[0]) <= 5
    alone = [dialogue.generate(model, [p], 16, temperature=0, stop_token_ids=chat.stop_ids, pad_token_id=chat.pad_id)[0]
             for p in prompts]
    assert alone == free                   # left padding is invisible


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_logprobs_equal_the_models_log_softmax(arch, monkeypatch):
    """On every student position, in several chunks, with and without gradients. The output head is scaled
    so that logits exceed Gemma's soft-cap of 30: Gemma3ForCausalLM caps them (checked to matter here).
    Gemma3ForConditionalGeneration's forward (transformers 5.23) does not apply text_config's cap: the
    log-probs must follow the model's own logits, which the sampler uses, either way."""
    model, tok = realarch.build(arch, seed=3)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(100)
    d, chat = scripted_rollout(monkeypatch, tok, max_turns=2)
    ids, mask, att = grpo.batch_tensors([(d.ids, d.student_mask), (d.ids[:-7], d.student_mask[:-7])],
                                        chat.pad_id, "cpu")                              # (2, T), right-padded
    logits = model(input_ids=ids, attention_mask=att).logits.float()                     # (2, T, V)
    expect = torch.zeros_like(mask)
    expect[:, 1:] = torch.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
    with torch.no_grad():
        assert torch.allclose(grpo.masked_logprobs(model, ids, mask, att, chunk=5), expect, atol=1e-4)
    logp = grpo.masked_logprobs(model, ids, mask, att, chunk=5)                          # checkpointed chunks
    assert torch.allclose(logp, expect, atol=1e-4)
    (-logp.sum()).backward()
    grad = model.get_output_embeddings().weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    if arch == "gemma3-text":
        raw = model.get_output_embeddings()(model.get_decoder()(input_ids=ids, attention_mask=att).last_hidden_state)
        assert (torch.log_softmax(raw.float(), -1) - torch.log_softmax(logits, -1)).abs().max() > 0.1


# ---------------------------------------------------------------------------------------------
# The model teacher and checkpoints.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_model_teacher_view_is_accepted_by_the_template(built, arch, monkeypatch):
    """The teacher's instructions, the problem's reference solution and the student's turns, in a form the
    template accepts (Gemma-3's raised 'Conversation roles must alternate' on two user messages in a row)."""
    model, tok = built[arch]
    d, _ = scripted_rollout(monkeypatch, tok, max_turns=2)
    teacher = dialogue.ModelTeacher(model, tok, max_new_tokens=4)
    prompt = tok.apply_chat_template(teacher.teacher_view(d), tokenize=False, add_generation_prompt=True)
    assert STUDENT[0] in prompt and STUDENT[1] in prompt and d.problem.solution in prompt
    [reply] = teacher.reply([d])
    assert isinstance(reply, str)


@pytest.mark.parametrize("arch", ARCHS)
def test_resume_restores_the_trained_weights(arch, tmp_path):
    """runfolder.load_checkpoint (what --resume runs) puts back every trained weight. gemma-3-12b-it's class is
    saved under its hub names (language_model.model.*), which a plain load with strict=False skipped, silently."""
    model, tok = realarch.build(arch, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([tok.encode("Hello there, student.", add_special_tokens=False)])
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    path = runfolder.save_checkpoint(tmp_path, 1, model, tok, opt, {})
    fresh, _ = realarch.build(arch, seed=2, tokenizer=tok)
    assert runfolder.load_checkpoint(path, fresh, torch.optim.AdamW(fresh.parameters(), lr=1e-2))["step"] == 1
    trained, resumed = model.state_dict(), fresh.state_dict()
    assert [k for k in trained if not torch.equal(trained[k], resumed[k])] == []


# ---------------------------------------------------------------------------------------------
# End to end: sml.py and evaluate.py on a local model folder and the fixture datasets.
# ---------------------------------------------------------------------------------------------

def sml_args(arch, method, out, sharded=False):
    """Tiny sizes: one GRPO step on 2 problems x 4 dialogues of 2 turns; 1 held-out problem."""
    return ["--task", "math", "--method", method, "--model", str(realarch.model_folder(arch)),
            "--data", str(FIXTURES / "answer_four.jsonl"), "--problems", "2", "--batch-problems", "2",
            "--group-size", "4", "--turns", "2", "--eval-turns", "2", "--eval-problems", "1", "--max-turn-tokens", "10",
            "--max-dialogue-tokens", "400", "--device", "cpu", "--out", str(out)] + (
        ["--sharded-data", str(FIXTURES / "lost_in_conversation.json")] if sharded else [])


def spy_on_model_teacher(monkeypatch):
    """Every reply the model teacher gives from now on, and the model it gave it with."""
    replies, models, real = [], [], dialogue.ModelTeacher.reply

    def reply(self, ds):
        out = real(self, ds)
        replies.extend(out)
        models.append(self.model)
        return out
    monkeypatch.setattr(dialogue.ModelTeacher, "reply", reply)
    return replies, models


@pytest.mark.parametrize("arch,rank", [(a, 8) for a in ARCHS] + [("gemma3", 0)])
def test_sml_grpo_checkpoint_and_evaluate_end_to_end(arch, rank, tmp_path, monkeypatch, capsys):
    """GRPO with the frozen student as teacher; the trained model loads in plain transformers and evaluate.py
    evaluates it. The nudged student sometimes answers, so the GRPO step is a real one. With LoRA (the real
    models' default; rank 8 here) the checkpoint holds the adapters in PEFT's layout, the merged model is
    written at the end of the seed, and the teacher is the student itself with its adapters off, exactly the
    base model after training. With full finetuning (rank 0) the checkpoint is the whole model and the base
    stays untouched beside the trained copy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    replies, teachers = spy_on_model_teacher(monkeypatch)
    out = tmp_path / "run"
    sml.main(sml_args(arch, "mt-rl", out, sharded=arch == "gemma3") + ["--lora-rank", str(rank)])
    printed = capsys.readouterr().out
    assert "memory plan:" in printed and "-> fits" in printed                    # the plan, before the first step
    assert ("LoRA rank 8" if rank else "full finetuning") in printed
    assert replies and all(isinstance(r, str) for r in replies)      # the frozen student did teach
    results = json.loads((out / "eval.json").read_text())
    report.validate_eval_json(results)
    tasks_run = set(results["mt-rl"])
    assert ({"math", "math-sharded"} <= tasks_run) if arch == "gemma3" else tasks_run == {"math"}
    # Fig. 3 with an LLM teacher: on the base's own first-seed dialogues, then the same contexts for the student
    assert all(len(results[m]["math"]["answer_loss_by_turn"]) == 2 for m in ("base", "mt-rl"))
    assert results["base"]["math"]["answer_loss_by_turn"][0] > 0
    [row] = [json.loads(l) for l in (out / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    assert row["zero_variance_groups"] < 1 and row["student_tokens"] > 0 and row["grad_norm"] > 0   # a real step

    [ckpt] = (out / "seed-0" / "checkpoints").glob("step-*")
    base = AutoModelForCausalLM.from_pretrained(realarch.model_folder(arch)).eval()
    [teacher] = set(teachers)
    ids = torch.tensor([AutoTokenizer.from_pretrained(ckpt).encode("Solve: what is 2 + 2? Explain.")])
    if rank:
        assert (ckpt / "adapter_config.json").exists() and not (ckpt / "model.safetensors").exists()
        assert lora.adapters(teacher)                                # one copy: the teacher is the student
        with lora.adapters_off(teacher):
            assert torch.equal(teacher(input_ids=ids).logits, base(input_ids=ids).logits)
        trained_folder = out / "seed-0" / "merged"
        trained = AutoModelForCausalLM.from_pretrained(trained_folder).eval()
        torch.testing.assert_close(trained(input_ids=ids).logits, teacher(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    else:
        assert not lora.adapters(teacher) and not (out / "seed-0" / "merged").exists()
        assert torch.equal(teacher(input_ids=ids).logits, base(input_ids=ids).logits)   # the base, untouched
        trained_folder = ckpt
        trained = AutoModelForCausalLM.from_pretrained(trained_folder)
    assert type(trained).__name__ == realarch.ARCHS[arch].model_class
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), base.state_dict().values()))
    template = (realarch.TEMPLATES / realarch.ARCHS[arch].template).read_text()
    assert AutoTokenizer.from_pretrained(trained_folder).chat_template == template

    evaluate.main(["--model", str(trained_folder), "--label", "trained", "--data", str(FIXTURES / "omni_math.jsonl"),
                   "--turns", "2", "--seeds", "1", "--problems", "1", "--answer-loss", "--max-turn-tokens", "10",
                   "--max-dialogue-tokens", "400", "--rollout-batch", "1", "--device", "cpu",
                   "--out", str(tmp_path / "eval")])
    results = json.loads((tmp_path / "eval" / "eval.json").read_text())
    report.validate_eval_json(results)
    entry = results["trained"]["math"]
    assert entry["n_problems"] == 1 and entry["answer_loss_by_turn"][0] > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_sml_filtered_sft_end_to_end(arch, tmp_path):
    out = tmp_path / "run"
    sml.main(sml_args(arch, "mt-sft", out))
    report.validate_eval_json(json.loads((out / "eval.json").read_text()))
    kept = [json.loads(l) for l in (out / "seed-0" / "sft_dataset.jsonl").read_text().splitlines()]
    assert kept and all(r["success_turn"] is not None and sum(r["mask"]) > 0 for r in kept)
    [row] = [json.loads(l) for l in (out / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    assert row["stage"] == "sft" and row["student_tokens"] > 0 and row["grad_norm"] > 0
