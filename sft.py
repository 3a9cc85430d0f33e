"""Offline SML: filtered SFT on successful dialogues (Eq. 1, §4.3), and single-turn SFT (§5.3).

Filtered SFT ("MT-SFT"): roll out the current student with its teacher, keep the dialogues whose
trajectory succeeded (G(tau) = 1), and train one epoch on the student's turns of those dialogues
(masked cross-entropy: the teacher's turns and the template's role headers carry no loss). The
dataset is written to the run folder (sft_dataset.jsonl: token ids, mask and readable text).
Single-turn SFT ("ST-SFT"): (problem -> reference solution) pairs, the solution as the student turn.

    python sml.py --task math --method mt-sft
    python sml.py --task math --method st-sft

Loss normalisation: token-mean over all student tokens of a batch, as in grpo.py. An epoch is every
example once: the last batch of an epoch is smaller when the batch size does not divide the data.
Under torchrun (infra/distributed.py) each rank rolls out its share of the problems and every rank gets all
the kept dialogues; each rank then backpropagates its share of every batch, divided by the whole
batch's token count, and the gradients are summed over ranks: one process's step.
Deviation: one iteration of generate-filter-train, as in the paper (§2); the rollout uses the same
group size as GRPO (g dialogues per problem), so both methods see the same generation budget.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

import dialogue
from infra import distributed
from infra import runfolder
from grpo import batch_tensors, masked_logprobs


def sft_loss(model, ids, mask, attention, n_tokens: float):
    """Negative log-likelihood of the student tokens, summed, over the batch's student-token count."""
    logp = masked_logprobs(model, ids, mask, attention)                     # (B, T)
    return -(logp * mask).sum() / n_tokens


def filter_successful(dialogues: list[dialogue.Dialogue]) -> list[dialogue.Dialogue]:
    """Eq. 1 with the trajectory reward: keep tau with G(tau) = 1 (solved within N turns, not truncated)."""
    return [d for d in dialogues if d.success_turn is not None and not d.truncated]


def collect(student, tokenizer, teacher, problems, out: Path, *, group_size: int = 8, max_turns: int = 4,
            sampling: dialogue.Sampling = dialogue.Sampling(), chunk: int = 32, progress: bool = True,
            name: str = "sft_dataset.jsonl", on_incorrect=None, seed: int = 0) -> list:
    """Roll out every problem g times, keep the successful dialogues, write them to out/<name>.

    A dataset already in the run folder is reused (a resumed run does not generate it again).
    `on_incorrect` is Q-priming's hook (qprime.py) that replaces wrong attempts with questions. Each chunk
    of problems is sampled with its own seed, derived from the training seed `seed`.
    """
    from tqdm.auto import tqdm
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    if path.exists():
        return [(r["ids"], r["mask"]) for r in map(json.loads, path.read_text().splitlines())]
    kept, seen = [], 0
    mine = distributed.shard(problems)             # torchrun: this rank's problems, sampled with its own seed
    for i in tqdm(range(0, len(mine), chunk), desc=f"collecting {name}", disable=not progress):
        ds = dialogue.rollout(student, tokenizer, mine[i:i + chunk], teacher, group_size=group_size,
                              max_turns=max_turns, sampling=sampling, on_incorrect=on_incorrect,
                              seed=distributed.rank_seed(runfolder.derive_seed(seed, "collection", i)))
        seen += len(ds)
        kept += filter_successful(ds)
    kept = [d for part in distributed.all_gather(kept) for d in part]   # every rank trains on all of them
    seen = int(distributed.all_reduce_sum(seen))
    rows = [{**d.to_json(), "ids": d.ids, "mask": d.student_mask} for d in kept]
    runfolder.write_jsonl(path, rows)
    print(f"filtered SFT data: kept {len(kept)} of {seen} dialogues (G = 1) -> {path}")
    return [(r["ids"], r["mask"]) for r in rows]


def single_turn_examples(problems, tokenizer, opening) -> list[tuple[list[int], list[int]]]:
    """(problem, reference solution) pairs in the chat template; the solution is the student's turn.
    `opening(problem)` is what the student is shown first: the teacher's opening (teacher.opening)."""
    chat = dialogue.ChatFormat(tokenizer)
    examples = []
    for p in problems:
        prompt = chat.opening(opening(p))
        answer = chat.encode(p.solution) + [chat.end_of_turn]
        examples.append((prompt + answer, [0] * len(prompt) + [1] * len(answer)))
    return examples


def train(model, tokenizer, examples, out: Path, *, epochs: int = 1, lr: float = 1e-5, batch_size: int = 32,
          micro_batch: int = 16, seed: int = 0, save_every: int = 50, resume: bool = False,
          progress: bool = True, max_nan_steps: int = 5, tag: str = "sft"):
    """One epoch (by default) of masked cross-entropy on `examples` [(ids, mask)], checkpointed and resumable."""
    from tqdm.auto import tqdm
    out.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    distributed.broadcast_parameters(trainable)     # torchrun: every rank starts from rank 0's model
    steps_per_epoch = max(1, math.ceil(len(examples) / batch_size))
    n_steps = epochs * steps_per_epoch
    guard = runfolder.Guard(max_nan_steps)
    start = (runfolder.resume(out, model, optimizer) or {"step": 0})["step"] if resume else 0
    runfolder.truncate_metrics(out, start)
    if not examples:                   # nothing to learn from; still a whole, resumable stage
        print("SFT: no examples (no successful dialogues): the model is left as it was")
        runfolder.save_checkpoint(out, 0, model, tokenizer, optimizer, {"method": tag})
        runfolder.atomic_write(out / "finished", "0")
        return model
    bar = tqdm(range(start, n_steps), desc=tag, initial=start, total=n_steps, disable=not progress)
    for step in bar:
        t0 = time.time()
        epoch = step // steps_per_epoch
        order = runfolder.data_order(len(examples), runfolder.derive_seed(seed, "sft_epoch", epoch))
        k = step % steps_per_epoch
        batch = [examples[i] for i in order[k * batch_size:(k + 1) * batch_size]]
        n_tokens = sum(sum(m) for _, m in batch)            # the whole batch's, on every rank
        mine = distributed.shard(batch)                      # torchrun: this rank's share of the batch
        model.train()
        total = 0.0
        for j in range(0, len(mine), micro_batch):
            ids, mask, attention = batch_tensors(mine[j:j + micro_batch], pad, device)
            loss = sft_loss(model, ids, mask, attention, n_tokens)
            loss.backward()
            total += loss.item()
        distributed.all_reduce_grads(model.parameters())    # K ranks: one process's gradient on the batch
        total = distributed.all_reduce_sum(total)
        norm = guard.step(model, optimizer, total)
        model.eval()
        runfolder.append_metrics(out, {"step": step + 1, "stage": tag, "loss": total, "grad_norm": norm,
                                       "examples": len(batch), "student_tokens": n_tokens,
                                       "skipped_steps": guard.skipped, "seconds_train": time.time() - t0})
        bar.set_postfix(loss=f"{total:.3f}")
        if (step + 1) % save_every == 0 or step + 1 == n_steps:
            runfolder.save_checkpoint(out, step + 1, model, tokenizer, optimizer, {"method": tag})
    runfolder.atomic_write(out / "finished", str(n_steps))
    return model
