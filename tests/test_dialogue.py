"""dialogue.py: generation equals Hugging Face's, segments and masks are exact, the rollout loop's rules."""
from pathlib import Path

import pytest
import torch

import dialogue
import tasks
import tinyworld
from dialogue import ChatFormat, Sampling, ShardTeacher, generate, rollout
from infra.runfolder import UserError
from tinyworld import HintTeacher


def _prompts(tok):
    texts = ["What is 12 + 30?", "Hi", "A longer prompt, with more characters in it."]
    return [tok.encode(t, add_special_tokens=False) for t in texts]


def _hf_greedy(model, prompts, n, pad, stop=None):
    L = max(map(len, prompts))
    ids = torch.tensor([[pad] * (L - len(p)) + p for p in prompts])
    att = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=n, do_sample=False,
                         pad_token_id=pad, eos_token_id=stop)
    return out[:, L:].tolist()


def test_greedy_equals_hf_generate(tok, model):
    prompts, pad = _prompts(tok), tok.pad_token_id
    ours = generate(model, prompts, 24, temperature=0, pad_token_id=pad)
    theirs = _hf_greedy(model, prompts, 24, pad)
    assert ours == theirs
    assert all(len(o) == 24 for o in ours)
    # and each prompt alone gives what it gives in the batch (left padding is invisible)
    for p, o in zip(prompts, ours):
        assert generate(model, [p], 24, temperature=0, pad_token_id=pad)[0] == o


def test_greedy_with_stops_equals_hf_and_compaction(tok, model):
    prompts, pad = _prompts(tok), tok.pad_token_id
    free = generate(model, prompts, 30, temperature=0, pad_token_id=pad)
    stop = free[0][5]                     # row 0 stops at step 6; others whenever they emit it
    ours = generate(model, prompts, 30, temperature=0, stop_token_ids=[stop], pad_token_id=pad, sync_every=2)
    theirs = _hf_greedy(model, prompts, 30, pad, stop=stop)
    assert ours[0][-1] == stop and len(ours[0]) <= 6
    for o, t in zip(ours, theirs):        # HF pads after the stop; ours ends at it
        assert t[:len(o)] == o
        assert o[-1] == stop or len(o) == 30


def test_per_row_budgets_and_seeded_sampling(tok, model):
    prompts, pad = _prompts(tok), tok.pad_token_id
    out = generate(model, prompts, [3, 7, 1], temperature=1.0, pad_token_id=pad, seed=5)
    assert [len(o) for o in out] == [3, 7, 1]
    again = generate(model, prompts, [3, 7, 1], temperature=1.0, pad_token_id=pad, seed=5)
    assert out == again
    # a nucleus so small that only the top token survives is greedy
    nucleus = generate(model, prompts, 10, temperature=1.0, top_p=1e-6, pad_token_id=pad, seed=1)
    assert nucleus == generate(model, prompts, 10, temperature=0, pad_token_id=pad)


def test_chat_format_segments_equal_template(tok):
    chat = ChatFormat(tok)
    assert chat.stop_ids == [tok.eos_token_id]
    ids = chat.opening("Q?") + tok.encode("\\boxed{1}", add_special_tokens=False) + [chat.end_of_turn] \
        + chat.teacher_turn("No.")
    msgs = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "\\boxed{1}"},
            {"role": "user", "content": "No."}]
    assert tok.decode(ids) == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def test_chat_format_rejects_bad_templates(tok):
    import copy
    bad = copy.deepcopy(tok)
    # rewrites history: only the last assistant message is kept, like a template that strips old reasoning
    bad.chat_template = ("{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
                         "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endif %}{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    with pytest.raises(UserError, match="prefix-preserving"):
        ChatFormat(bad)
    bad.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    with pytest.raises(UserError, match="special token"):
        ChatFormat(bad)
    bad.chat_template = None
    with pytest.raises(UserError, match="no chat template"):
        ChatFormat(bad)


def test_rollout_segments_masks_and_kept_ids(tok, model):
    chat = ChatFormat(tok)
    problems = tasks.tiny_math_problems("test", n=2, seed=0)
    ds = rollout(model, tok, problems, HintTeacher(), group_size=2, max_turns=3, seed=3, chat=chat,
                 sampling=Sampling(temperature=1.0, max_turn_tokens=12, max_dialogue_tokens=400))
    assert len(ds) == 4 and [d.group for d in ds] == [0, 0, 1, 1]
    for d in ds:
        ids, mask = d.ids, d.student_mask
        assert len(ids) == len(mask)
        for role, seg in d.segments:   # the mask is 1 exactly on student segments, 0 on every teacher token
            assert role in ("teacher", "student")
        teacher_tokens = [i for (r, s) in d.segments if r == "teacher" for i in s]
        assert sum(mask) == len(ids) - len(teacher_tokens)
        assert d.segments[0][0] == "teacher" and d.segments[0][1] == chat.opening(d.problem.statement)
        # the role header of the student's turn is in the teacher segment before it, never under the mask
        for (r0, s0), (r1, s1) in zip(d.segments, d.segments[1:]):
            if r1 == "student":
                assert r0 == "teacher" and s0[-1] == tok.convert_tokens_to_ids("<|assistant|>")
    # the student's tokens are exactly the sampled ones (never decoded and re-encoded)
    first = generate(model, [chat.opening(p.statement) for p in problems for _ in range(2)], 12,
                     temperature=1.0, stop_token_ids=chat.stop_ids, pad_token_id=chat.pad_id, seed=3 * 1000 + 1)
    assert [d.segments[1][1] for d in ds] == first


def _scripted(monkeypatch, tok, replies_by_turn):
    """Replace the student model: at turn t every active dialogue says replies_by_turn[t-1][row]."""
    chat = ChatFormat(tok)
    calls = []

    def fake_generate(model, prompts, max_new_tokens, **kw):
        t = len(calls)
        calls.append(len(prompts))
        outs = []
        for i, _ in enumerate(prompts):
            ids = tok.encode(replies_by_turn[t][i], add_special_tokens=False) + [chat.end_of_turn]
            n = max_new_tokens[i] if isinstance(max_new_tokens, list) else max_new_tokens
            outs.append(ids[:n])
        return outs
    monkeypatch.setattr(dialogue, "generate", fake_generate)
    return calls


def test_rollout_ends_at_first_success_and_teacher_hints(monkeypatch, tok):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="tiny")
    calls = _scripted(monkeypatch, tok, [["\\boxed{84}", "\\boxed{85}"], ["\\boxed{85}"], ["x"]])
    ds = rollout(None, tok, [p], HintTeacher(), group_size=2, max_turns=4)
    assert calls == [2, 1]                       # the solved dialogue is not generated for again
    assert ds[0].success_turn == 2 and ds[1].success_turn == 1
    assert ds[0].messages[2] == {"role": "teacher", "turn": 2, "text": "84 is 1 too low.",
                                 "leak": False}
    assert [m["correct"] for m in ds[0].student_turns()] == [False, True]


def test_rollout_unsolved_after_n_turns_and_truncation(monkeypatch, tok):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="tiny")
    _scripted(monkeypatch, tok, [["\\boxed{84}", "x" * 300]] + [["\\boxed{75}"]] * 3)
    ds = rollout(None, tok, [p], HintTeacher(), group_size=2, max_turns=4, sampling=Sampling(max_dialogue_tokens=200))
    assert ds[0].success_turn is None and ds[0].turns == 4 and not ds[0].truncated
    assert ds[0].messages[-1]["role"] == "student"          # no teacher reply after the last turn
    assert ds[1].truncated and ds[1].turns == 1 and len(ds[1].ids) <= 200


def test_a_turn_past_its_cap_is_overlong_not_truncated(monkeypatch, tok):
    """Out of context: truncated (reward unknown). Out of turn tokens with context to spare: over-long
    (the student never ended its turn; scored 0 and trained on)."""
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="tiny")
    _scripted(monkeypatch, tok, [["\\boxed{85} and so on " * 10, "\\boxed{84}"]] + [["\\boxed{85}"]] * 3)
    ds = rollout(None, tok, [p], HintTeacher(), group_size=2, max_turns=4, sampling=Sampling(max_turn_tokens=20))
    assert ds[0].overlong and not ds[0].truncated and ds[0].done
    assert ds[0].success_turn is None and ds[0].turns == 1        # a correct answer inside an unended turn
    assert len(ds[0].segments[-1][1]) == 20
    assert ds[1].success_turn == 2 and not ds[1].overlong
    assert "(over-long turn)" in ds[0].render() and ds[0].to_json()["overlong"] is True


def test_rollout_counts_teacher_leaks(monkeypatch, tok):
    class Leaky(HintTeacher):
        def reply(self, dialogues):
            return ["It is 85." for _ in dialogues]
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="tiny")
    _scripted(monkeypatch, tok, [["\\boxed{84}"], ["\\boxed{84}"], ["\\boxed{84}"]])
    d = rollout(None, tok, [p], Leaky(), max_turns=3)[0]
    assert d.leaks == 2 and all(m.get("leak") for m in d.messages[1:] if m["role"] == "teacher")


def test_shard_teacher_reveals_one_shard_per_turn_then_stops(monkeypatch, tok):
    p = tasks.tiny_math_problems("test", n=1, seed=0, sharded=True)[0]
    _scripted(monkeypatch, tok, [["What are the numbers?"], ["\\boxed{1}"], ["\\boxed{2}"], ["\\boxed{3}"]])
    d = rollout(None, tok, [p], ShardTeacher(instructions=False), max_turns=10)[0]
    teacher = [m["text"] for m in d.messages if m["role"] == "teacher"]
    told = ShardTeacher().opening(p)                 # a real model is told how to answer, then the first shard
    assert told.startswith(dialogue.student_instructions(p)) and told.endswith(p.shards[0])
    assert teacher == p.shards                    # one shard per turn, in order, and nothing after the last
    assert d.turns == len(p.shards) and d.success_turn is None


def test_unreachable_model_is_one_clear_sentence(tmp_path):
    with pytest.raises(UserError) as e:
        dialogue.load_model(str(tmp_path / "no-such-model"), "cpu")
    msg = str(e.value)
    assert "no-such-model" in msg and "\n" not in msg and msg.endswith(".")


def test_saved_tiny_model_loads_back_through_load_model(tok, model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    m, t = dialogue.load_model(str(tmp_path / "m"), "cpu")
    assert t.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "<|bos|><|user|>x<|end|>"
    assert generate(m, [[5, 6, 7]], 5, temperature=0) == generate(model, [[5, 6, 7]], 5, temperature=0)


def test_auto_dtype_is_bf16_only_for_16_bit_models_on_a_cpu_with_native_bf16(tok, model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path / "fp32")                               # the tiny world: stored in fp32
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")            # a released model: stored in 16 bits
    model.float()
    for folder in ("fp32", "bf16"):
        tok.save_pretrained(tmp_path / folder)
    for native, want in ((True, {"fp32": torch.float32, "bf16": torch.bfloat16}),
                         (False, {"fp32": torch.float32, "bf16": torch.float32})):
        monkeypatch.setattr(dialogue, "native_bf16", lambda: native)
        for folder, dtype in want.items():
            assert dialogue.load_model(str(tmp_path / folder), "cpu")[0].dtype == dtype, (native, folder)
    assert dialogue.load_model(str(tmp_path / "bf16"), "cpu", torch.float32)[0].dtype == torch.float32  # --dtype
    assert dialogue.default_dtype("cuda", torch.float32) == torch.bfloat16


def test_native_bf16_agrees_with_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("reads Linux's /proc/cpuinfo")
    flags = set(cpuinfo.read_text().split())
    assert dialogue.native_bf16() == bool({"avx512_bf16", "amx_tile"} & flags)


def test_code_dialogue_runs_tests_in_the_sandbox_and_relays_feedback(monkeypatch, tok):
    p = tasks.Problem(id="c", task="code", statement="Write add(a, b).", func_name=None,
                      tests=[{"assert": "assert add(1, 2) == 3"}, {"assert": "assert add(2, 2) == 4"}])
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    right = "```python\ndef add(a, b):\n    return a + b\n```"
    _scripted(monkeypatch, tok, [[wrong], [right]])
    d = rollout(None, tok, [p], tinyworld.TestFeedbackTeacher(), max_turns=3)[0]
    assert d.success_turn == 2 and d.student_turns()[0]["correct"] is False
    hint = d.messages[2]["text"]
    assert "add(1, 2)" in hint and "-1" in hint          # the failing test and what the program returned
    assert d.messages[0]["text"].endswith("Write add(a, b).")


def test_brief_test_feedback_teacher_relays_the_first_failing_test(monkeypatch, tok):
    p = tasks.tiny_code_problems("test", n=1, seed=0)[0]
    c = p.meta["constant"]
    _scripted(monkeypatch, tok, [[tasks.tiny_program(c + 1)], ["no program here"], [p.solution]])
    d = rollout(None, tok, [p], tinyworld.scripted_teacher("code"), max_turns=4)[0]
    assert d.success_turn == 3 and [m["correct"] for m in d.student_turns()] == [False, None, True]
    assert d.messages[2]["text"] == f"Test 1 (fail): input '1' | expected '{c + 1}' | got '{c + 2}'"
    assert "python block" in d.messages[4]["text"] and d.leaks == 0      # test outputs are k_t, not a leak


def test_judge_all_runs_programs_in_parallel_and_remembers_them():
    p = tasks.tiny_code_problems("test", n=1, seed=1)[0]
    c = p.meta["constant"]
    texts = [tasks.tiny_program(c + k % 3) for k in range(12)]          # 3 distinct programs
    dialogue._run_tests.cache_clear()
    verdicts = dialogue.judge_all([p] * 12, texts)
    assert verdicts == [dialogue.judge(p, t) for t in texts]
    assert [v["correct"] for v in verdicts[:3]] == [True, False, False]
    assert dialogue._run_tests.cache_info().currsize == 3               # each distinct program ran once
    math = tasks.tiny_math_problems("test", n=1)[0]
    assert dialogue.judge_all([math], [f"\\boxed{{{math.answer}}}"])[0]["correct"] is True


def test_prefix_check_compares_token_ids_not_only_text():
    """A tokenizer that merges ':' with the student's first letter renders the same text segment by segment
    as whole, but encodes it into other tokens: the trained sequence would differ from the sampled one."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(["<|end|>", "<|pad|>"] + chars + [":F"])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[(":", "F")]))
    core.add_special_tokens(["<|end|>", "<|pad|>"])
    merging = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|end|>", pad_token="<|pad|>",
        chat_template="{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}<|end|>{% endfor %}"
                      "{% if add_generation_prompt %}assistant:{% endif %}")
    with pytest.raises(UserError, match="into other tokens"):
        ChatFormat(merging)


STRICT = ("{{ bos_token }}{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_model_teacher_view_alternates_roles_as_gemma_requires(monkeypatch, tok, model):
    """Gemma-3's template raises unless user and assistant alternate from the user: the teacher's instructions
    open the student's first message instead of standing in a user message of their own."""
    import copy
    strict = copy.deepcopy(tok)
    strict.chat_template = STRICT
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", solution="40 + 45 = 85")
    _scripted(monkeypatch, strict, [["\\boxed{84}"], ["\\boxed{75}"], ["\\boxed{85}"]])
    monkeypatch.undo()
    teacher = dialogue.ModelTeacher(model, strict, max_new_tokens=4)
    d = dialogue.Dialogue(problem=p, messages=[
        {"role": "teacher", "text": p.statement}, {"role": "student", "turn": 1, "text": "\\boxed{84}"},
        {"role": "teacher", "text": "Check the units."}, {"role": "student", "turn": 2, "text": "\\boxed{75}"}])
    view = teacher.teacher_view(d)
    assert [m["role"] for m in view] == ["user", "assistant", "user"]
    assert "Reference solution: 40 + 45 = 85" in view[0]["content"] and view[0]["content"].endswith("\\boxed{84}")
    assert len(teacher.reply([d])) == 1                                  # the template accepts it


def test_code_is_judged_on_every_test_and_the_teacher_hears_the_public_ones():
    """`return 4` for "double x" passes the public test 2 -> 4 that the teacher relays, not the private 5 -> 10."""
    p = tasks.Problem(id="d", task="code", statement="Write double(x).", func_name="double",
                      tests=[{"input": "2", "output": "4", "testtype": "functional", "public": True},
                             {"input": "5", "output": "10", "testtype": "functional", "public": False}])
    dialogue._run_tests.cache_clear()
    hacked = dialogue.judge(p, "```python\ndef double(x):\n    return 4\n```")
    assert hacked["correct"] is False
    assert "hidden tests" in hacked["feedback"] and "10" not in hacked["feedback"] and "5" not in hacked["feedback"]
    assert dialogue.judge(p, "```python\ndef double(x):\n    return 2 * x\n```")["correct"] is True


def test_code_private_knowledge_is_the_latest_feedback_after_an_injected_question():
    """Q-priming puts a question where a program was: the LLM teacher still knows the tests' last results."""
    p = tasks.Problem(id="c", task="code", statement="Write f(x).")
    d = dialogue.Dialogue(problem=p, messages=[
        {"role": "teacher", "text": p.statement},
        {"role": "student", "turn": 1, "text": "```python\n...```", "feedback": "Test 1 (fail): got '43'"},
        {"role": "teacher", "text": "Look at test 1."},
        {"role": "student", "turn": 2, "text": "What should f(0) be?", "injected": True, "correct": None}])
    assert "Test 1 (fail): got '43'" in dialogue.private_knowledge(d)


def test_a_truncated_weights_file_is_one_sentence(tok, model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserError, match="Could not load the model"):
        dialogue.load_model(str(tmp_path / "m"), "cpu")


def test_a_model_teachers_leaked_reply_is_withheld_and_ends_the_dialogue_cut(monkeypatch, tok):
    class LeakyModel(HintTeacher):
        withhold_leaks = True                     # what dialogue.ModelTeacher does
        def reply(self, dialogues):
            return ["It is 85." for _ in dialogues]
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="tiny")
    _scripted(monkeypatch, tok, [["\\boxed{84}"], ["\\boxed{85}"]])
    d = rollout(None, tok, [p], LeakyModel(), max_turns=3)[0]
    assert d.leaks == 1 and d.truncated and d.turns == 1 and d.success_turn is None   # no copied answer
    assert d.messages[-1]["withheld"] and [r for r, _ in d.segments] == ["teacher", "student"]  # never delivered
    assert "withheld" in d.render()
    assert dialogue.ModelTeacher.withhold_leaks and not getattr(ShardTeacher(), "withhold_leaks", False)


def test_verifier_teacher_says_how_far_off_and_the_weak_one_only_that_it_is_wrong():
    p = tasks.arith_problems("test", n=1)[0]
    gold = int(p.answer)
    strong, weak = dialogue.named_teacher("verifier"), dialogue.named_teacher("verdict")
    assert dialogue.named_teacher("auto") is None
    turn = dialogue.judge(p, f"So it is {gold + 3}.")
    assert turn["correct"] is False
    assert strong.say(p, turn) == f"Not quite: {gold + 3} is 3 too high."
    assert strong.say(p, dialogue.judge(p, f"= {gold - 12}")) == f"Not quite: {gold - 12} is 12 too low."
    assert weak.say(p, turn) == "That is not correct. Try again."
    assert "could not find" in strong.say(p, dialogue.judge(p, "I do not know."))
    assert not any(dialogue.verify.mentions_answer(t.say(p, turn), p.answer) for t in (strong, weak))
    assert strong.opening(p).endswith(p.statement) and "End with the answer" in strong.opening(p)


def test_closer_uptake_counts_next_answers_that_move_towards_the_gold(monkeypatch, tok):
    p = tasks.Problem(id="p", task="math", statement="What is 40 + 45?", answer="85", source="arith",
                      answer_format="number")
    # 80 -> 83 (closer) -> 90 (farther) -> no number -> 85 (not counted: the turn before gave no number)
    _scripted(monkeypatch, tok, [["80"], ["83"], ["90"], ["hmm"], ["85"]])
    d = rollout(None, tok, [p], dialogue.named_teacher("verifier"), max_turns=5)[0]
    assert d.success_turn == 5 and d.messages[2]["text"] == "Not quite: 80 is 5 too low."
    assert dialogue.closer_uptake([d]) == (0.5, 2)
    assert dialogue.named_teacher("verifier").uptake([d]) == (0.5, 2)
