"""chat.py driven through its standard input, on tiny-world models that memorised a dialogue in the tiny world's
chat format: a model that uses the teacher's reply, and one that repeats its answer. Greedy decoding replays
what a model memorised only if chat.py builds exactly the tokens it was trained on (ChatFormat's segments)."""
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import chat
import dialogue
from conftest import random_llama

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "What is 47 + 5 - 3?"
USES_HINT = ["47 + 5 = \\boxed{52}", "52 is 3 too high.", "52 - 3 = \\boxed{49}"]
IGNORES_HINT = ["47 + 5 = \\boxed{52}", "52 is 3 too high.", "\\boxed{52}"]


def memorise(tok, turns: list[str], path: Path, seed: int) -> Path:
    """A tiny Llama trained until greedy decoding gives the student's turns of one dialogue (student, teacher,
    student), segmented as dialogue.rollout segments it; saved with the tiny world's tokenizer."""
    fmt = dialogue.ChatFormat(tok)
    ids = fmt.opening(PROBLEM)
    mask = [0] * len(ids)
    for i, text in enumerate(turns):
        seg = fmt.encode(text) + [fmt.end_of_turn] if i % 2 == 0 else fmt.teacher_turn(text)
        ids, mask = ids + seg, mask + [int(i % 2 == 0)] * len(seg)
    model = random_llama(tok, seed=seed).train()
    x, m = torch.tensor([ids]), torch.tensor([mask[1:]], dtype=torch.bool)      # (1, T), (1, T-1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(600):
        logits = model(input_ids=x).logits[:, :-1]                                # (1, T-1, V)
        if step % 10 == 0 and (logits.argmax(-1) == x[:, 1:])[m].all():          # every student token replayed
            break
        loss = torch.nn.functional.cross_entropy(logits[m], x[:, 1:][m])
        opt.zero_grad()
        loss.backward()
        opt.step()
    else:
        raise AssertionError("the model did not memorise its dialogue")
    model.eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def students(tmp_path_factory, tok):
    root = tmp_path_factory.mktemp("chat")
    return memorise(tok, USES_HINT, root / "uses-hint", 0), memorise(tok, IGNORES_HINT, root / "ignores-hint", 1)


def run_chat(monkeypatch, capsys, lines: str, *argv) -> str:
    """chat.main in this process, its standard input the given lines and then the end of input (Ctrl-D)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    chat.main([*map(str, argv), "--temperature", "0"])
    return capsys.readouterr().out


def test_a_typed_problem_solved_with_one_reply_in_a_real_process(students):
    uses_hint, _ = students
    typed = f"{PROBLEM}\n49\n\n52 is 3 too high.\n"   # the problem, its answer, an empty reply, then feedback
    r = subprocess.run([sys.executable, "chat.py", str(uses_hint), "--temperature", "0"], input=typed, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    out = r.stdout
    assert "  student 1| 47 + 5 = \\boxed{52}   [wrong]" in out
    assert "(the tiny world's teacher would reply: 52 is 3 too high." in out           # the form it reads
    assert "An empty reply says nothing to the student." in out                        # and the chat went on
    assert "  student 2| 52 - 3 = \\boxed{49}   [correct]" in out and "uses-hint: solved at turn 2." in out
    assert out.rstrip().endswith("The input ended (Ctrl-D): goodbye.")


def test_ctrl_d_in_mid_dialogue_ends_with_one_sentence(monkeypatch, capsys, students):
    out = run_chat(monkeypatch, capsys, f"{PROBLEM}\n49\n", students[0])
    assert "student 1| 47 + 5 = \\boxed{52}   [wrong]" in out and "student 2|" not in out
    assert out.count("The input ended (Ctrl-D): goodbye.") == 1


def test_two_students_get_the_same_reply_and_one_uses_it(monkeypatch, capsys, students):
    out = run_chat(monkeypatch, capsys, f"{PROBLEM}\n49\n52 is 3 too high.\n", students[0], "--vs", students[1],
                   "--turns", "2")
    uses, ignores = (p.name for p in students)
    lines = out.splitlines()
    assert "teacher> 52 is 3 too high." in lines                                    # typed once, for both
    assert f"  {uses:<12} 2| 52 - 3 = \\boxed{{49}}   [correct]" in lines
    assert f"  {ignores} 2| \\boxed{{52}}   [wrong]" in lines
    assert sum(line.startswith("  teacher") for line in lines) == 1                  # the problem
    assert f"{uses}: solved at turn 2." in lines and f"{ignores}: unsolved after 2 turns." in lines


def test_hint_sends_the_scripted_reply_and_a_picked_problem_is_the_eval_sets(monkeypatch, capsys, students):
    out = run_chat(monkeypatch, capsys, "0\n/nope\n/list\n\n1\n/hint\nquit\n", students[0], "--turns", "3")
    assert "There is no problem 0: pick a number from 1 to 200." in out
    assert "/nope is no command here" in out and "An empty line is no problem." in out
    first = chat.evaluate.load_eval_tasks("math", "tiny")["math"][0].statement
    assert f"    1  {first}" in out and f"  teacher  | {first}" in out                   # /list, then the pick
    assert out.count("  teacher  | ") == 2                                             # the opening, the /hint
    assert "teacher> quit\n  student 3|" in out                                       # a word is a reply
    assert "The tiny student reads replies in its teacher's form: \"52 is 3 too high.\"" in out


def test_a_missing_checkpoint_is_one_sentence(tmp_path):
    r = subprocess.run([sys.executable, "chat.py", str(tmp_path / "no-such-run")], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"error: There is no checkpoint at {tmp_path / 'no-such-run'}: pass a "
                                             "checkpoint or run folder, 'tiny', 'smollm2' or a hub id."]
