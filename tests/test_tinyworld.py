"""tinyworld.py: the char tokenizer, the corpus (encoded exactly like a rollout), the scripted teachers (never
leak, uptake by hand), Fig. 3's reference dialogues, and the warm-up is deterministic given the seed."""
import collections
import random
import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import dialogue
import answerloss
import qprime
import tasks
import tinyworld
import verify
from dialogue import Dialogue


def test_char_tokenizer_round_trips_and_saves(tok, tmp_path):
    text = "What is 37 + 5?\n\\boxed{42} ok"
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) == len(text) and tok.decode(ids) == text           # one token per character
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert again.apply_chat_template(msgs, tokenize=False) == "<|bos|><|user|>Q<|end|><|assistant|>A<|end|>"
    assert again.encode(text, add_special_tokens=False) == ids


def test_every_corpus_kind_is_a_masked_chat(tok):
    chat = dialogue.ChatFormat(tok)
    rng = random.Random(0)
    for kind in list(tinyworld.MIX):
        for _ in range(20):
            ids, mask = tinyworld.corpus_sample(rng, chat, {kind: 1.0})
            assert len(ids) == len(mask) and ids[:2] == chat.opening("x")[:2]
            student = [i for i, m in zip(ids, mask) if m]
            assert student[-1] == chat.end_of_turn and sum(mask) < len(ids)


def _replay(monkeypatch, tok, texts):
    """dialogue.generate replaced by a student that says texts[t-1] at turn t."""
    chat = dialogue.ChatFormat(tok)
    turn = iter(texts)
    monkeypatch.setattr(dialogue, "generate", lambda model, prompts, n, **kw:
                        [tok.encode(next(turn), add_special_tokens=False) + [chat.end_of_turn] for _ in prompts])


@pytest.mark.parametrize("task", ["math", "code"])
def test_corpus_dialogues_encode_exactly_like_the_rollout(monkeypatch, tok, task):
    """The warm-up's dialogues, replayed through dialogue.rollout with the scripted teacher: the same teacher
    replies and the same token ids, so the base is trained on exactly what it will see."""
    chat = dialogue.ChatFormat(tok)
    rng = random.Random(1)
    problems = tasks.tiny_problems(task, "train", n=6 if task == "math" else 2, seed=2)
    for p in problems:
        students, teachers = tinyworld._dialogue_turns(p, rng)
        ids, mask = tinyworld._encode(chat, p.statement, students, teachers)
        _replay(monkeypatch, tok, students)
        d = dialogue.rollout(None, tok, [p], tinyworld.scripted_teacher(task), max_turns=len(students))[0]
        assert [m["text"] for m in d.messages if m["role"] == "teacher"][1:] == teachers
        assert d.ids == ids and d.student_mask == mask


def test_warm_up_feedback_is_what_the_sandbox_says():
    """The corpus writes the code teacher's replies without running programs: they must match check_code."""
    for p in tasks.tiny_code_problems("train", n=3, seed=5):
        for constant in (p.meta["constant"], p.meta["first_step"], 7):
            program = verify.extract_program(tasks.tiny_program(constant))
            assert tinyworld.tiny_feedback(p, constant) == verify.check_code(program, p.tests, p.func_name).feedback


def test_math_teacher_says_how_far_off_when_it_is_one_step():
    hint = tinyworld.hint
    assert hint(84, "\\boxed{85}") == ("85 is 1 too high.", (84, 84))
    assert hint(84, "80 + 7 = \\boxed{87}") == ("87 is 3 too high.", (84, 84))      # the last boxed number counts
    assert hint(84, "\\boxed{75}") == ("75 is 9 too low.", (84, 84))
    assert hint(84, "\\boxed{74}") == ("74 is more than 9 too low.", None)        # 10: a step closer, not onto it
    assert hint(84, "How far off is 87?") == ("87 is 3 too high.", (84, 84))      # a question: the same reply,
    assert hint(84, "How far off is 60?") == (                                    # but beyond one step it adds a
        "60 is more than 9 too low, and 78 is 6 too low.", (84, 84))              # number one step away
    assert hint(84, "How far off is 99?") == ("99 is more than 9 too high, and 90 is 6 too high.", (84, 84))
    assert hint(3, "How far off is 15?") == ("15 is more than 9 too high.", None)   # "6 is 3 too high" would tell
    assert hint(84, "how far off is 84?") == ("That one is exactly right.", (84, 84))
    assert hint(3, "\\boxed{6}") == ("That is 3 too high.", (3, 3))                 # "6 is 3 too high" would tell
    assert hint(84, "What is the answer?")[1] is None and hint(84, "I think so.")[0].startswith("Please give")


def test_the_bases_use_of_a_reply_is_one_written_step_onto_the_answer():
    """The corpus's P_USE turns: the step the student writes moves the number the teacher named by the distance it
    gave, and lands on the answer; a reply with no one-step distance gives it nothing to compute."""
    for gold in (3, 20, 57, 89):
        for x in [v for v in range(gold - 9, gold + 10) if v != gold]:
            for text in (f"\\boxed{{{x}}}", f"How far off is {x}?"):
                reply, where = tinyworld.hint(gold, text)
                value, work = tinyworld._use(reply, x)
                assert where == (gold, gold) and value == gold
                assert work == f"{x} {'-' if x > gold else '+'} {abs(x - gold)}" and eval(work) == gold
        far, where = tinyworld.hint(gold, f"\\boxed{{{gold + 30}}}")    # "more than 9 too high": 9 closer
        assert where is None and tinyworld._use(far, gold + 30) == (gold + 21, f"{gold + 30} - 9")
    for gold, x in ((20, 45), (57, 45), (57, 27), (89, 59)):     # a question's reply beyond one step: the step
        reply, where = tinyworld.hint(gold, f"How far off is {x}?")   # from the number it adds
        value, work = tinyworld._use(reply, x)
        assert where == (gold, gold) and value == gold and eval(work) == gold
        assert re.fullmatch(rf"{x} is more than 9 too (high|low), and {work.split()[0]} is \d too \1\.", reply)
        assert abs(int(work.split()[0]) - x) % 9 == 0                      # where 9-steps from x would arrive


def test_the_corpus_writes_the_first_step_then_uses_repeats_or_guesses():
    """Turn 1 is the first step written out; a later turn is the step from the teacher's last reply, a bare number
    (its last number again, or a guess), or a question: the habits the docstring names, and nothing else. A later
    turn never restates the first step's work: v8's corpus did, and its base answered the first reply with its
    first step again (uptake 0.03 right after it)."""
    rng = random.Random(0)
    for p in rng.sample(tasks.tiny_math_problems("train"), 200):
        students, teachers = tinyworld._dialogue_turns(p, rng)
        m = p.meta
        first = f"{m['a']} {m['op']} {m['b']} = \\boxed{{{m['first_step']}}}"
        assert students[0] in (first, f"How far off is {m['first_step']}?")
        for t, text in enumerate(students[1:], start=1):
            if not re.search(r" = \\boxed", text):                     # a bare number or a question
                assert re.fullmatch(r"\\boxed\{-?\d+\}|How far off is -?\d+\?", text), text
                continue
            n = int(re.match(r"-?\d+", text).group())                 # the steps from the last reply, computed
            value, work = tinyworld._use(teachers[t - 1], n)             # right, onto the answer or 9 closer
            assert text == f"{work} = \\boxed{{{value}}}" and re.match(rf"({n}|That) is ", teachers[t - 1])
            assert value == tinyworld._gold(p) or "more than 9" in teachers[t - 1], (students, teachers)


def test_the_last_shard_is_the_teachers_correction_and_the_sharded_corpus_uses_it_like_one():
    """Table 1's bridge: the lazy user's last shard is word for word what the math teacher says to the first number
    ("37 is 5 too low."), so that using it is the step SML trains; the sharded corpus takes that step (P_USE) or
    answers with a number, and asks only before the last shard."""
    rng, steps = random.Random(0), 0
    for p in rng.sample(tasks.tiny_math_problems("train", sharded=True), 300):
        a, gold = p.meta["a"], tinyworld._gold(p)
        assert p.shards[-1] == tinyworld.hint(gold, f"\\boxed{{{a}}}")[0]
        value, work = tinyworld._use(p.shards[-1], a)
        assert value == gold and work == f"{a} {p.meta['op']} {p.meta['b']}"
        students, teachers = tinyworld._sharded_turns(p, rng)
        assert teachers == p.shards[1:] and len(students) == len(p.shards)
        assert all(re.fullmatch(r"\\boxed\{-?\d+\}|What are the numbers\?|What is the second number\?", s)
                   for s in students[:-1]), students
        last = students[-1]
        steps += last == f"{work} = \\boxed{{{gold}}}"
        assert last == f"{work} = \\boxed{{{gold}}}" or re.fullmatch(r"\\boxed\{-?\d+\}", last), students
    assert 0.05 < steps / 300 < 0.2     # P_USE = 0.1: as seldom as a teacher's correction is used


def test_the_corpus_teaches_the_step_from_a_reply_apart_from_the_dialogues(tok):
    """The "copy" kind: a teacher's reply as the opening and the one step it gives, always right; it is the
    skill of using feedback, written outside any dialogue, so the base's habit in dialogues stays P_USE. Three
    kinds of reply: "52 is 3 too high." (onto the answer), "52 is more than 9 too high." (9 closer) and a
    question's "52 is more than 9 too high, and 34 is 7 too high." (from the number it adds, onto the answer)."""
    chat, rng, kinds = dialogue.ChatFormat(tok), random.Random(0), collections.Counter()
    for _ in range(200):
        ids, mask = tinyworld.corpus_sample(rng, chat, mix={"copy": 1.0})
        said = re.fullmatch(r"<\|bos\|><\|user\|>(?:-?\d+ is more than 9 too \w+, and )?(\d+) is (more than )?(\d) too "
                            r"(high|low)\.<\|end\|><\|assistant\|>(\d+) ([+-]) (\d) = \\boxed\{(-?\d+)\}<\|end\|>",
                            tok.decode(ids))
        assert said, tok.decode(ids)
        n, more, d, side, n2, op, d2, value = said.groups()
        assert (n2, d2, op) == (n, d, "-" if side == "high" else "+") and int(value) == eval(f"{n} {op} {d}")
        assert tok.decode([i for i, m in zip(ids, mask) if m]).startswith(f"{n} {op} {d} = ")   # trained on the step
        kinds["far" if more else "asked" if ", and" in tok.decode(ids) else "near"] += 1
    assert 70 < kinds["near"] < 130 and 10 < kinds["far"] < 50 and 45 < kinds["asked"] < 95, kinds   # ~50/15/35%
    assert (tinyworld.COPY_FAR, tinyworld.COPY_ASKED) == (0.5, 0.7)
    assert tinyworld.MIX["copy"] == 0.10 and tinyworld.P_USE == 0.1


def test_the_question_prompt_is_q_primings_fields_without_its_instruction(tok):
    """The tiny student reads Q-priming's prompt (qprime.QUESTION_PROMPT) with its fields filled in, less the
    instruction line; the corpus's "question" kind is that prompt -> "How far off is N?", N its attempt."""
    p = tasks.tiny_problems("math", "test", n=1, seed=5)[0]
    full = qprime.QUESTION_PROMPT.format(problem=p.statement, attempt="\\boxed{52}",
                                         private_knowledge=f"the answer is {p.answer}")
    tiny = tinyworld.question_prompt(p, "\\boxed{52}")
    assert full.startswith(tiny + "\n") and "Ask the teacher" in full and "Ask" not in tiny
    assert p.statement in tiny and "\\boxed{52}" in tiny and f"the answer is {p.answer}" in tiny
    ids, mask = tinyworld.corpus_sample(random.Random(1), dialogue.ChatFormat(tok), mix={"question": 1.0})
    text = tok.decode(ids)
    asked = re.search(r"Your attempt: \\boxed\{(\d+)\}\nWhat the teacher knows: the answer is \d+<\|end\|>"
                      r"<\|assistant\|>How far off is (\d+)\?<\|end\|>$", text)
    assert asked and asked.group(1) == asked.group(2), text
    assert tok.decode([i for i, m in zip(ids, mask) if m]).startswith("How far off is ")


def test_math_teacher_never_states_the_answer():
    """Every reply the math teacher can give, to every test problem: answers and questions far and near."""
    for p in tasks.tiny_math_problems("test"):
        gold = int(p.answer)
        for x in [*range(gold - 15, gold + 16), 0, 2 * gold, -gold, 10 * gold]:
            for text in (f"\\boxed{{{x}}}", f"How far off is {x}?"):
                if text != f"\\boxed{{{gold}}}":
                    assert not verify.mentions_answer(tinyworld.hint(gold, text)[0], p.answer), (p.id, text)


def _dialogue(problem, turns, teacher):
    """A hand-made dialogue: student texts, with the scripted teacher's reply after each but the last."""
    d = Dialogue(problem=problem)
    d.messages.append({"role": "teacher", "turn": 1, "text": problem.statement})
    for t, text in enumerate(turns, start=1):
        d.messages.append({"role": "student", "turn": t, "text": text, **dialogue.judge(problem, text)})
        if t < len(turns):
            d.messages.append({"role": "teacher", "turn": t + 1, "text": teacher.reply([d])[0]})
    return d


def test_uptake_by_hand():
    teacher = tinyworld.HintTeacher()
    p = tasks.Problem(id="p", task="math", statement="What is 80 + 7 - 3?", answer="84", source="tiny")
    took = _dialogue(p, ["80 + 7 = \\boxed{87}", "\\boxed{83}", "83 + 1 = \\boxed{84}"], teacher)   # 87 -> 83: out; 84: in
    ignored = _dialogue(p, ["\\boxed{87}", "\\boxed{87}", "\\boxed{90}"], teacher)     # anchored, then off: 0 of 2
    asked = _dialogue(p, ["How far off is 87?", "\\boxed{84}"], teacher)               # "87 is 3 too high": in
    # a question after a reply is no case; after "more than 9" the answer's place is not said, so 99 is no case either
    asked_twice = _dialogue(p, ["\\boxed{99}", "How far off is 85?", "\\boxed{83}"], teacher)
    assert teacher.uptake([took]) == (0.5, 2)
    assert teacher.uptake([ignored]) == (0.0, 2)
    assert teacher.uptake([asked, asked_twice]) == (0.5, 2)
    assert teacher.uptake([took, ignored, asked]) == (0.4, 5)
    assert teacher.uptake([_dialogue(p, ["\\boxed{84}"], teacher)]) == (None, 0)


def test_code_uptake_by_hand():
    teacher = tinyworld.TestFeedbackTeacher()
    p = tasks.tiny_code_problems("test", n=1, seed=0)[0]
    c = p.meta["constant"]
    fixed = _dialogue(p, [tasks.tiny_program(c + 2), tasks.tiny_program(c)], teacher)
    stuck = _dialogue(p, [tasks.tiny_program(c + 2), tasks.tiny_program(c + 2), "no program", p.solution], teacher)
    assert teacher.uptake([fixed]) == (1.0, 1)
    assert teacher.uptake([stuck]) == (0.0, 1)      # after "no program" the reply names no failing test


def test_reference_dialogues_are_wrong_answers_and_the_teachers_replies(tok):
    chat = dialogue.ChatFormat(tok)
    problems = tasks.tiny_math_problems("test", n=30, seed=3)
    ds = tinyworld.reference_dialogues(problems, tok, n_turns=5)
    assert [d.problem for d in ds] == problems
    for d in ds:
        gold, turns = int(d.problem.answer), d.student_turns()
        assert len(turns) == 5 and all(tinyworld._integer(m["text"]) != gold for m in turns)
        m = d.problem.meta                                                            # the base's first step
        assert turns[0]["text"] == f"{m['a']} {m['op']} {m['b']} = \\boxed{{{m['first_step']}}}"
        replies = [m["text"] for m in d.messages if m["role"] == "teacher"][1:]
        assert replies == [tinyworld.hint(gold, m["text"])[0] for m in turns[:-1]]
        expected = chat.opening(d.problem.statement)
        for m, reply in zip(turns, replies + [None]):
            expected = expected + chat.encode(m["text"]) + [chat.end_of_turn]
            expected = expected + (chat.teacher_turn(reply) if reply else [])
        assert d.ids == expected
    contexts = answerloss.reference_contexts(ds, 5)
    assert sorted(c.turn for c in contexts) == sorted(list(range(1, 6)) * 30)        # every problem at every turn
    # Fig. 3 scores the correct reply in the form this student writes: the whole sum after the opening, then
    # the step from the teacher's last reply ("52 is 3 too high." -> "52 - 3 = \\boxed{49}")
    for d in ds:
        m, gold = d.problem.meta, d.problem.answer
        teacher = [msg for msg in d.messages if msg["role"] == "teacher"]
        assert teacher[0]["answer_form"] == f"{m['a']} {m['op']} {m['b']} {m['op2']} {m['c']} = \\boxed{{{gold}}}"
        assert teacher[0]["placed"] is False                                         # the opening places nothing
        for msg in teacher[1:]:
            if re.fullmatch(r"\d+ is more than 9 too (high|low)\.", msg["text"]):      # no step reaches the answer
                assert msg["answer_form"] == f"\\boxed{{{gold}}}" and msg["placed"] is False
                continue
            assert msg["placed"] is True
            n, dist, side = re.fullmatch(r"(\d+) is (\d) too (high|low)\.", msg["text"]).groups()
            assert msg["answer_form"] == f"{n} {'-' if side == 'high' else '+'} {dist} = \\boxed{{{gold}}}"
            assert eval(msg["answer_form"].split(" =")[0]) == int(gold)
    far = [msg for d in ds for msg in d.messages if "more than 9" in msg["text"]]
    assert 0 < len(far) < 30 * 4 / 2                                                 # far first steps, some repeats
    teacher = [msg for d in ds for msg in d.messages if msg["role"] == "teacher"]
    assert [(c.reply, c.placed) for c in contexts] == [(msg["answer_form"], msg["placed"]) for msg in teacher]
    again = tinyworld.reference_dialogues(problems, tok, n_turns=5)
    assert [d.ids for d in again] == [d.ids for d in ds]                              # the same for every model


def test_warm_up_is_deterministic_given_the_seed(tmp_path):
    tinyworld.warm_up(tmp_path / "a", seed=3, steps=4, progress=False)
    tinyworld.warm_up(tmp_path / "b", seed=3, steps=4, progress=False)
    tinyworld.warm_up(tmp_path / "c", seed=4, steps=4, progress=False)
    a, b, c = (AutoModelForCausalLM.from_pretrained(tmp_path / k) for k in "abc")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    assert not list(tmp_path.glob("*.tmp"))                              # written atomically, nothing left over
