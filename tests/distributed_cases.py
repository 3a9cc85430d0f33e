"""What tests/test_distributed.py runs twice, in one process and under 2 ranks (gloo on CPU), to compare.

Every case builds its data by hand (dialogues, examples, contexts) or samples nothing that the split
changes, so that one process and K ranks must agree: GRPO and SFT steps, the NaN guard, evaluation, the
run-folder writers. Run on its own, it writes each rank's results to OUT/rank-R.pt:

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_cases.py OUT
"""
import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402

import dialogue  # noqa: E402
from infra import distributed  # noqa: E402
import answerloss  # noqa: E402
import evaluate  # noqa: E402
import grpo  # noqa: E402
from infra import runfolder  # noqa: E402
import sft  # noqa: E402
import tasks  # noqa: E402
import tinyworld  # noqa: E402
from conftest import random_llama  # noqa: E402
from dialogue import Dialogue  # noqa: E402

# Nine dialogues of one to three student turns; the last is cut by the context (no reward, not trained on).
ANSWERS = [["\\boxed{41}", "\\boxed{42}"], ["\\boxed{40}"], ["\\boxed{4}", "\\boxed{32}", "\\boxed{42}"],
           ["\\boxed{42}"], ["\\boxed{43}"], ["\\boxed{1}", "\\boxed{2}"], ["\\boxed{17}"],
           ["\\boxed{9}", "\\boxed{99}"], ["\\boxed{5}"]]
# Three groups of three: the middle one flat (advantage 0: skipped when beta = 0), one dialogue truncated.
ADVANTAGES = [1.2, -0.6, -0.6, 0.0, 0.0, 0.0, 0.9, -0.9, 0.0]


def run_all(out: Path) -> dict:
    tok = tinyworld.build_tokenizer()
    return {
        # beta = 0: 5 dialogues to learn from, micro-batches of 2: rank 0 runs two, rank 1 one
        "grpo": grpo_step(tok),
        # the KL to a reference and two PPO epochs (ratio clipping against pi_old)
        "grpo_kl_ppo": grpo_step(tok, beta=0.1, ppo_epochs=2),
        # one dialogue to learn from: rank 1 has nothing and still takes part; per-dialogue normalisation
        "grpo_one_learner": grpo_step(tok, advantages=[1.0] + [0.0] * 8, loss_norm="sequence"),
        "nan_on_rank_1": nan_on_rank_1(tok),
        "sft": sft_step(tok, out / "sft"),
        "eval": evaluation(tok),
        "writes": writes(out / "writes"),
    }


def hand_dialogues(tok) -> list[Dialogue]:
    chat = dialogue.ChatFormat(tok)
    ds = []
    for k, answers in enumerate(ANSWERS):
        segments = [("teacher", chat.opening(f"What is {k} + 40?"))]
        for j, a in enumerate(answers):
            if j:
                segments.append(("teacher", chat.teacher_turn("Not quite. The last digit is 2.")))
            segments.append(("student", chat.encode(a) + [chat.end_of_turn]))
        ds.append(Dialogue(problem=None, segments=segments, truncated=k == len(ANSWERS) - 1, group=k // 3))
    return ds


def grpo_step(tok, beta=0.0, ppo_epochs=1, advantages=ADVANTAGES, loss_norm="token") -> dict:
    model = random_llama(tok, seed=11)
    other = random_llama(tok, seed=12) if beta > 0 else None   # a reference unlike the student: a real KL
    reference = (lambda: contextlib.nullcontext(other)) if beta > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = grpo.train_step(model, optimizer, runfolder.Guard(), hand_dialogues(tok), torch.tensor(advantages),
                            tok.pad_token_id, "cpu", reference=reference, beta=beta, ppo_epochs=ppo_epochs,
                            micro_batch=2, loss_norm=loss_norm)
    return {"stats": stats, "weights": {k: v.clone() for k, v in model.state_dict().items()}}


def nan_on_rank_1(tok) -> dict:
    """Rank 1's loss is NaN (with no gradient to show for it), rank 0's is not: both must skip the step."""
    model = random_llama(tok, seed=11)
    before = [p.detach().clone() for p in model.parameters()]
    real = grpo.policy_loss
    if distributed.rank() == 1:
        grpo.policy_loss = lambda *a, **k: torch.tensor(float("nan"), requires_grad=True) * 1
    guard = runfolder.Guard()
    try:
        grpo.train_step(model, torch.optim.AdamW(model.parameters(), lr=1e-3), guard, hand_dialogues(tok),
                        torch.tensor(ADVANTAGES), tok.pad_token_id, "cpu", micro_batch=2)
    finally:
        grpo.policy_loss = real
    return {"skipped": guard.skipped, "unchanged": all(torch.equal(a, b) for a, b in zip(before, model.parameters()))}


def sft_step(tok, out: Path) -> dict:
    """One SFT step on all nine dialogues' student turns (batch 9, micro-batches of 2)."""
    model = random_llama(tok, seed=13)
    examples = [(d.ids, d.student_mask) for d in hand_dialogues(tok)]
    sft.train(model, tok, examples, out, lr=1e-3, batch_size=len(examples), micro_batch=2, progress=False)
    distributed.barrier()                       # rank 0 has written the metrics before anyone reads them
    return {"rows": (out / "metrics.jsonl").read_text().splitlines(),
            "weights": {k: v.clone() for k, v in model.state_dict().items()}}


def evaluation(tok) -> dict:
    """Seven test problems (an odd number: the ranks' shares differ) and Fig. 3's contexts."""
    model = random_llama(tok, seed=14)
    problems = tasks.tiny_math_problems("test", n=7, seed=0)
    teacher = tinyworld.HintTeacher()
    chat = dialogue.ChatFormat(tok)
    contexts = []
    for k, p in enumerate(problems):
        opening = chat.opening(teacher.opening(p))
        reply = f"\\boxed{{{p.answer}}}"
        contexts.append(answerloss.AnswerContext(1, opening, p, reply, placed=False))
        wrong = chat.encode("\\boxed{7}") + [chat.end_of_turn] + chat.teacher_turn("No.")
        # 4 of the 7 placed: each kind split unevenly over the ranks
        contexts.append(answerloss.AnswerContext(2, opening + wrong, p, reply, placed=k % 2 == 0))
    entry, by_seed = evaluate.evaluate(model, tok, problems, teacher, n_turns=2, seeds=[0, 1], progress=False,
                                       sampling=dialogue.Sampling(max_turn_tokens=6, max_dialogue_tokens=128),
                                       answer_contexts=contexts)
    return {"problems": [p.id for p in problems], "entry": entry,
            "dialogues": [[(d.problem.id, d.group, d.turns) for d in ds] for ds in by_seed]}


def writes(out: Path) -> dict:
    """Every rank calls the run folder's writers on the same paths; only rank 0's calls may write."""
    out.mkdir(parents=True, exist_ok=True)
    runfolder.append_metrics(out, {"step": 1, "rank": distributed.rank()})
    runfolder.write_json(out / "config.json", {"rank": distributed.rank()})
    distributed.barrier()
    return {"metrics": (out / "metrics.jsonl").read_text().splitlines(),
            "config": (out / "config.json").read_text()}


if __name__ == "__main__":
    distributed.setup()
    out = Path(sys.argv[1])
    results = run_all(out)
    torch.save(results, out / f"rank-{distributed.rank()}.pt")
    distributed.cleanup()
