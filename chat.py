"""Be the teacher (§4.1): the paper's student-teacher dialogue, with a person in the teacher's place.

    python chat.py tiny                                    # the tiny world's base model (warmed up once, cached)
    python chat.py runs/<run>                              # a run's trained model (seed 0's last checkpoint)
    python chat.py runs/<run> --vs tiny                    # ... beside the base: the same problem, the same replies
    python chat.py smollm2 --problem 3                     # any chat model: 'smollm2', a folder, a hub id

You open with a problem: type it, and then its answer (the teacher's private knowledge: only you and verify.py
see it), or type a number to pick one of the task's held-out problems (the ones evaluate.py tests on). The
student answers; verify.py says right or wrong, as the reward R does; you reply with feedback; and so on, until
the student is right or --turns turns are used. At the teacher> prompt, besides feedback: /hint sends the tiny
world's scripted reply, /new drops the problem, /quit (or Ctrl-D) ends.

Every student turn is dialogue.student_turn, the rollout's own, and every reply dialogue.teacher_turn: the same
chat format (ChatFormat), the same generation (generate, keys and values kept across turns) and the same
verdict (judge). What you see is exactly what the model is trained and evaluated on; with --seed S a student
samples its turns as a rollout seeded S would. `--vs` rolls out a second student beside the first, both on your
replies: watch one use a hint that the other ignores.

The tiny student reads the tiny world's replies only ("52 is 3 too high.", "52 is more than 9 too high."), and
its openings are bare problems (it never learned to read instructions); a real model is told how to answer first,
as the model teacher tells it (dialogue.student_instructions).

Deviations from the paper: the teacher is a person, who may say the answer (the paper's never does); such a
reply is marked as a leak, as rollout marks one. A typed problem is math only: a code problem needs tests.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dialogue
import evaluate
import tasks
import tinyworld
from infra import runfolder
from infra.runfolder import UserError, number

HELP = ("Type a problem (then its answer), or a number from 1 to {n} to pick one of the task's held-out problems "
        "(/list shows ten); Ctrl-D ends.")
TEACHER_HELP = "Reply with feedback; /hint sends the tiny world's reply, /new drops this problem, /quit ends."


@dataclass
class Student:
    """One student model in the chat, and its dialogue on the current problem."""
    name: str
    model: object
    tokenizer: object
    chat: dialogue.ChatFormat
    tiny: bool                         # a tiny-world model: bare openings, replies in the scripted teacher's form
    sampling: dialogue.Sampling
    d: dialogue.Dialogue | None = None
    kept: dict = field(default_factory=dict)   # id(dialogue) -> its keys and values (generation.PrefixCache)

    def open(self, problem: tasks.Problem) -> None:
        """The teacher's first turn u_1^T, as the rollout's teacher would say it to this student."""
        text = problem.statement if self.tiny else dialogue.student_instructions(problem) + problem.statement
        self.d, self.kept = dialogue.Dialogue(problem=problem), {}
        self.d.segments.append(("teacher", self.chat.opening(text)))
        self.d.messages.append({"role": "teacher", "turn": 1, "text": text})


def main(argv=None) -> None:
    args = parse_args(argv)
    students = [load_student(args.model, args)] + ([load_student(args.vs, args)] if args.vs else [])
    if len(students) == 2 and students[0].name == students[1].name:
        students[0].name, students[1].name = "A", "B"
    problems = evaluate.load_eval_tasks(args.task, args.data)[args.task]
    print(f"You are the teacher of {' and '.join(s.name for s in students)} ({args.task}; at most {args.turns} "
          f"student turns; temperature {args.temperature}).")
    if any(s.tiny for s in students):
        print("The tiny student reads replies in its teacher's form: " + (
            '"Test 1 (fail): input \'1\' | expected \'63\' | got \'59\'" (the first failing test).' if args.task == "code"
            else '"52 is 3 too high." or "52 is more than 9 too high.".'))
    print(HELP.format(n=len(problems)))
    first = args.problem
    while True:
        if first is not None:
            problem, first = pick(problems, str(first)) or "again", None
        else:
            problem = ask_problem(problems, args.task)
        if problem is None:
            return
        if problem == "again":
            continue
        if talk(students, problem, args.turns, args.seed) == "quit":
            return
        print(HELP.format(n=len(problems)))


def talk(students: list[Student], problem: tasks.Problem, turns: int, seed: int) -> str | None:
    """One dialogue on `problem`: student turns, verdicts, the person's replies. Returns "quit" to end the chat."""
    for s in students:
        s.open(problem)
    show_teacher(students[0].d.messages[0]["text"])
    for t in range(1, turns + 1):
        for s in students:
            if not s.d.done:
                dialogue.student_turn(s.model, s.tokenizer, s.chat, [s.d], t, s.sampling, seed, s.kept)
                show_student(s, t, max(len(x.name) for x in students) if len(students) > 1 else 0, t == turns)
        going = [s for s in students if not s.d.done]
        if not going or t == turns:
            for s in students:
                outcome = (f"solved at turn {s.d.success_turn}" if s.d.success_turn else
                           "cut by the context" if s.d.truncated else
                           "ended: a turn ran past --max-turn-tokens" if s.d.overlong else f"unsolved after {t} turns")
                print(f"{s.name}: {outcome}.")
            return None
        kind, reply = ask_reply(going)
        if kind in ("new", "quit"):
            return kind if kind == "quit" else None
        for s in going:                  # one reply for every student, or each its own scripted hint (/hint)
            dialogue.teacher_turn(s.d, s.chat, reply if kind == "reply" else reply[s.name], t + 1)
            if s.d.messages[-1]["leak"]:
                print("  (this reply names the answer: the paper's teacher never does; a rollout counts it as a leak)")
    return None


# ---------------------------------------------------------------------------------------------
# The person's side: reading a problem and a reply, each bad input answered with one sentence.
# ---------------------------------------------------------------------------------------------

def read(prompt: str) -> str | None:
    """A line from the person, stripped; None at the end of input (Ctrl-D). Input from a file or a pipe is echoed,
    so that the output reads as the session would in a terminal."""
    try:
        line = input(prompt)
    except EOFError:
        print("\nThe input ended (Ctrl-D): goodbye.")
        return None
    if not sys.stdin.isatty():
        print(line)
    return line.strip()


def ask_problem(problems: list[tasks.Problem], task: str):
    """A picked or typed problem; "again" after a bad line; None to end."""
    line = read("problem> ")
    if line is None or line == "/quit":
        return None
    if not line:
        print("An empty line is no problem. " + HELP.format(n=len(problems)))
        return "again"
    if line == "/list":
        for i, p in enumerate(problems[:10], start=1):
            print(f"  {i:>3}  {p.statement.splitlines()[0]}")
        return "again"
    if line.startswith("/"):
        print(f"{line} is no command here: /list, /quit, a number, or a problem in words.")
        return "again"
    if line.isdigit():
        return pick(problems, line) or "again"
    if task == "code":
        print("A typed code problem has no tests for verify.py to run: pick one of the task's problems by its number.")
        return "again"
    answer = read("its answer (only you and verify.py see it)> ")
    if answer is None:
        return None
    if not answer:
        print("Without its answer verify.py cannot say right or wrong: type the problem again, then its answer.")
        return "again"
    # answered as the task's own problems are (arith: the reply's last number; else a box)
    return tasks.Problem(id="typed", task="math", statement=line, answer=answer, source="chat",
                         answer_format=problems[0].answer_format if problems else "boxed")


def pick(problems: list[tasks.Problem], line: str) -> tasks.Problem | None:
    k = int(line)
    if not 1 <= k <= len(problems):
        print(f"There is no problem {k}: pick a number from 1 to {len(problems)}.")
        return None
    return problems[k - 1]


def ask_reply(going: list[Student]) -> tuple[str, str | dict | None]:
    """The teacher's next move: ("reply", text for every student), ("hints", {name: the scripted reply}),
    ("new", None) or ("quit", None)."""
    while True:
        line = read("teacher> ")
        if line is None or line == "/quit":
            return "quit", None
        if line == "/new":
            return "new", None
        if line == "/hint":
            hints = {s.name: scripted_reply(s) for s in going}
            if None in hints.values():
                print("/hint needs the tiny world's scripted teacher: a tiny-world student and an integer answer; "
                      "type your own reply.")
                continue
            for name, text in hints.items():
                show_teacher(text, name if len(going) > 1 else "")
            return "hints", hints
        if not line:
            print(f"An empty reply says nothing to the student. {TEACHER_HELP}")
            continue
        if line.startswith("/"):
            print(f"{line} is no command. {TEACHER_HELP}")
            continue
        return "reply", line


def scripted_reply(s: Student) -> str | None:
    """What the tiny world's scripted teacher would reply to this student's latest turn (None outside it)."""
    p = s.d.problem
    if not s.tiny or (p.task == "math" and not (p.answer or "").lstrip("-").isdigit()):
        return None
    return tinyworld.scripted_teacher(p.task).reply([s.d])[0]


def show_teacher(text: str, to: str = "") -> None:
    print(f"  teacher{' to ' + to if to else ''}  | " + text.replace("\n", "\n           | "))


def show_student(s: Student, t: int, width: int, last: bool) -> None:
    """The student's turn t and its verdict, and, unless it was the `last`, the tiny world's reply to it; `width`:
    with two students, each turn is named, the names padded to it."""
    m = s.d.messages[-1]
    verdict = {True: "correct", False: "wrong", None: "no answer"}[m.get("correct")]
    if m.get("feedback") and m.get("correct") is False:   # code: what the tests said, the teacher's k_t
        verdict += ": " + m["feedback"].splitlines()[0]
    who = f"{s.name:<{width}} {t}" if width else f"student {t}"
    print(f"  {who}| " + m["text"].replace("\n", "\n" + " " * (len(who) + 2) + "| ") + f"   [{verdict}]")
    hint = None if s.d.done or last else scripted_reply(s)
    if hint:
        print(f"      (the tiny world's teacher would reply: {hint}   /hint sends it)")


# ---------------------------------------------------------------------------------------------
# Models: 'tiny', a run folder, a checkpoint folder, 'smollm2', a GGUF file or a hub id.
# ---------------------------------------------------------------------------------------------

def load_student(name: str, args) -> Student:
    path = resolve(name)
    model, tokenizer = evaluate.load(str(path), args.device)
    chat = dialogue.ChatFormat(tokenizer)                    # refuses a template that is not prefix-preserving
    tiny = getattr(tokenizer, "chat_template", None) == tinyworld.CHAT_TEMPLATE
    sampling = dialogue.Sampling(args.temperature, args.top_p, args.max_turn_tokens or (48 if tiny else 1024),
                                 args.max_dialogue_tokens or (1024 if tiny else 16384))   # evaluate.py's
    return Student(label(name, path), model, tokenizer, chat, tiny, sampling)


def label(name: str, path) -> str:
    """A student's name in the chat: 'tiny', a run's method ('mt-rl'), else its folder's name."""
    run = Path(name) / "config.json"
    if path != name and run.is_file():
        return json.loads(run.read_text()).get("method", Path(name).name)
    return name if name in ("tiny", "smollm2") else Path(str(path).rstrip("/")).name


def resolve(name: str) -> str | Path:
    """A run folder stands for its trained model (seed 0's merged model, else its last checkpoint); a path that
    does not exist is refused at once, not looked up on the hub."""
    if name in ("tiny", "smollm2") or name.endswith(".gguf"):
        return name
    path = Path(name).expanduser()
    if path.exists():
        if (path / "seed-0").is_dir():
            seed = path / "seed-0"
            found = seed / "merged" if (seed / "merged").is_dir() else (
                runfolder.latest_checkpoint(seed / "stage-rl") or runfolder.latest_checkpoint(seed))
            if found is None:
                raise UserError(f"The run {name} has no checkpoint yet: wait for its first one, or pass a "
                                "checkpoint folder.")
            print(f"{name}: its trained model, {found}")
            return found
        return path
    if name.startswith((".", "/", "~")) or name.count("/") != 1 or path.parent.is_dir():
        raise UserError(f"There is no checkpoint at {name}: pass a checkpoint or run folder, 'tiny', 'smollm2' or a "
                        "hub id.")
    return name                                             # a hub id


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="'tiny', a run or checkpoint folder, 'smollm2', a .gguf file or a hub id")
    p.add_argument("--vs", help="a second student, on the same problem and the same replies")
    p.add_argument("--task", choices=["math", "code"], default="math")
    p.add_argument("--data", default="tiny", help="where the problems to pick come from: 'tiny', a dataset file, "
                   "or 'hub' (as evaluate.py's --data)")
    p.add_argument("--problem", type=number(int, 1), help="start with the task's held-out problem N")
    p.add_argument("--turns", type=number(int, 1), default=10, help="student turns per dialogue (evaluation's N)")
    p.add_argument("--temperature", type=number(float, 0), default=1.0, help="0: greedy")
    p.add_argument("--top-p", type=number(float, high=1, above=0), default=1.0)
    p.add_argument("--seed", type=int, default=0, help="the student samples as a rollout with this seed")
    p.add_argument("--max-turn-tokens", type=number(int, 1), help="default: 48 tiny, 1024 otherwise")
    p.add_argument("--max-dialogue-tokens", type=number(int, 1), help="default: 1024 tiny, 16384 otherwise")
    p.add_argument("--device")
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        import readline           # line editing and history at the prompts, where the platform has it
        readline.set_auto_history(True)
    except ImportError:
        pass
    try:
        main()
    except (UserError, tasks.DataError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: goodbye.")
