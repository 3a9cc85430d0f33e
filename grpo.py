"""Online SML: GRPO on whole dialogues with discounted trajectory rewards (Eq. 2-3, §4.3, §5.4).

Each step rolls out B problems x g dialogues (g = 8, N = 4 turns), gives each dialogue the reward
r = gamma^(t-1) if the student's first correct answer is at turn t (gamma = 0.7) and 0 if it never
is, normalises rewards within each problem's group (Eq. 3), and takes a policy-gradient step on the
student's tokens only. beta = 0 (no KL) as in the paper.

    python sml.py --task math --method mt-rl       # this file's loop, run from the recipe
    python grpo.py                                  # a few steps on the tiny world, printing metrics

GRPO's details, one by one:
  1. All student tokens of a dialogue share its advantage: no turn-level credit, as in the paper.
  2. Advantage = (r - group mean) / (group std + eps), Bessel-corrected, over the members that have a
     reward. A flat group (all rewards equal) gets advantage 0; the fraction of flat groups is logged.
  3. A dialogue cut by the context limit has no reward: it leaves the loss and its group's statistics
     (not scored 0). A turn that runs past its token cap was never ended: it scores 0 and is trained on.
  4. --loss-norm token (default): the sum over student tokens / the student tokens of all dialogues that
     have a reward, flat groups included, so a mostly flat batch takes a small step. sequence: the original
     GRPO's mean of per-dialogue means, which favours long wrong answers (Dr. GRPO's point).
  5. beta = 0: a flat group adds exactly 0, so it is not run through the model (its tokens still count in
     4's denominator). beta > 0: the k3 KL to the stage's starting policy on every dialogue with a reward.
  6. One optimiser step per batch is on-policy: ratio 1. --ppo-epochs > 1 reuses the batch, ratio clipped.
  7. Linear learning-rate warm-up; a step whose loss or gradient is NaN/inf is skipped and counted.
Deviations: single-turn baselines (N = 1) use the same code with max_turns = 1; the paper's optimiser
settings are not given, ours are AdamW with --lr and gradient clipping at 1.0.
"""
from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import dialogue
from infra import lora
from infra import distributed
from infra import runfolder


def trajectory_reward(success_turn: int | None, gamma: float = 0.7) -> float:
    """G(tau), discounted over turns: gamma^(t-1) for a first correct answer at turn t, else 0."""
    return 0.0 if success_turn is None else gamma ** (success_turn - 1)


def group_advantages(rewards: torch.Tensor, group_size: int, valid: torch.Tensor | None = None,
                     eps: float = 1e-6):
    """Eq. 3 within each group of `group_size` consecutive dialogues, over the members that have a reward
    (`valid`; default all). Returns (advantages, fraction of flat groups); members without a reward get 0."""
    r = rewards.view(-1, group_size)                                                  # (n_groups, g)
    v = torch.ones_like(r, dtype=torch.bool) if valid is None else valid.view(-1, group_size)
    n = v.sum(dim=1, keepdim=True)                                                    # (n_groups, 1)
    mean = (r * v).sum(dim=1, keepdim=True) / n.clamp(min=1)                         # (n_groups, 1)
    std = (((r - mean) ** 2 * v).sum(dim=1, keepdim=True) / (n - 1).clamp(min=1)).sqrt()
    top = torch.where(v, r, -torch.inf).amax(dim=1, keepdim=True)
    bottom = torch.where(v, r, torch.inf).amin(dim=1, keepdim=True)
    flat = (top == bottom) | (n < 2)                                                  # (n_groups, 1) no signal
    adv = torch.where(flat | ~v, torch.zeros_like(r), (r - mean) / (std + eps))       # (n_groups, g)
    return adv.view(-1), flat.float().mean().item()


def policy_loss(logp, mask, advantages, old_logp=None, ref_logp=None, clip_eps: float = 0.2, beta: float = 0.0,
                n_tokens: float | None = None, norm: str = "token", n_dialogues: int | None = None):
    """The GRPO objective (Eq. 2) as a loss on student tokens.

    logp, old_logp, ref_logp, mask: (B, T); advantages: (B,). norm="token": summed over the micro-batch and
    divided by `n_tokens`, the student-token count of the whole batch, so micro-batches accumulate to the
    batch's token-mean. norm="sequence": each dialogue's mean over its own tokens, summed, over `n_dialogues`.
    """
    A = advantages[:, None]                                                 # (B, 1)
    if old_logp is None:                                                    # on-policy: ratio == 1
        pg = -A * logp                                                      # (B, T)
    else:
        ratio = torch.exp(logp - old_logp)                                  # (B, T)
        pg = -torch.min(ratio * A, ratio.clamp(1 - clip_eps, 1 + clip_eps) * A)  # (B, T)
    if beta > 0 and ref_logp is not None:
        d = ref_logp - logp                                                 # (B, T)
        pg = pg + beta * (torch.exp(d) - d - 1)                             # k3 estimator of KL(pi || ref)
    if norm == "sequence":
        per_dialogue = (pg * mask).sum(1) / mask.sum(1).clamp(min=1)         # (B,)
        return per_dialogue.sum() / (n_dialogues if n_dialogues is not None else len(per_dialogue))
    n = n_tokens if n_tokens is not None else mask.sum().clamp(min=1)
    return (pg * mask).sum() / n


# ---------------------------------------------------------------------------------------------
# The loop: one epoch over the training problems.
# ---------------------------------------------------------------------------------------------

def train(student, tokenizer, teacher, problems, out: Path, *, batch_problems: int = 8, group_size: int = 8,
          max_turns: int = 4, gamma: float = 0.7, lr: float = 1e-5, beta: float = 0.0, clip_eps: float = 0.2,
          ppo_epochs: int = 1, micro_batch: int = 16, sampling: dialogue.Sampling = dialogue.Sampling(),
          seed: int = 0, save_every: int = 50, warmup_steps: int = 10, loss_norm: str = "token",
          max_steps: int | None = None, resume: bool = False, progress: bool = True, max_nan_steps: int = 5):
    """Train `student` in place with GRPO for one epoch over `problems`; log to out/metrics.jsonl.
    `sampling`: how the rollouts sample the student and how long they may grow (dialogue.Sampling)."""
    from tqdm.auto import tqdm
    out.mkdir(parents=True, exist_ok=True)
    device = next(student.parameters()).device
    chat = dialogue.ChatFormat(tokenizer)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    distributed.broadcast_parameters(trainable)     # torchrun: every rank starts from rank 0's student
    reference = reference_policy(student) if beta > 0 else None   # after the broadcast: the stage's start
    order = runfolder.data_order(len(problems), seed)
    n_steps = len(problems) // batch_problems
    if max_steps is not None:
        n_steps = min(n_steps, max_steps)
    guard = runfolder.Guard(max_nan_steps)        # skips a NaN/inf step; max_nan_steps in a row stop the run
    start = (runfolder.resume(out, student, optimizer) or {"step": 0})["step"] if resume else 0
    runfolder.truncate_metrics(out, start)
    bar = tqdm(range(start, n_steps), desc="GRPO", initial=start, total=n_steps, disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        batch = [problems[i] for i in order[step * batch_problems:(step + 1) * batch_problems]]
        for g in optimizer.param_groups:   # linear warm-up: Adam's first steps are large and noisy
            g["lr"] = lr * min(1.0, (step + 1) / max(1, warmup_steps))
        t0 = time.time()
        student.eval()
        # torchrun: each rank rolls out its share of the batch's problems with its own seed, then every
        # rank gets the whole batch back, in order, for the rewards, advantages and metrics below.
        # Memory: the rollout keeps no activations (inference_mode) and generates in chunks of at most
        # sampling.max_batch_tokens positions; infra/memory.py plans it and the training pass together.
        dialogues = dialogue.rollout(student, tokenizer, distributed.shard(batch), teacher,
                                     group_size=group_size, max_turns=max_turns, sampling=sampling, chat=chat,
                                     seed=distributed.rank_seed(runfolder.derive_seed(seed, "grpo_step", step)))
        dialogues = distributed.gather(dialogues, unit=group_size)
        t_rollout = time.time() - t0
        rewards = torch.tensor([trajectory_reward(d.success_turn, gamma) for d in dialogues])  # (B*g,)
        scored = torch.tensor([not d.truncated for d in dialogues])                            # (B*g,)
        advantages, flat = group_advantages(rewards, group_size, valid=scored)                 # (B*g,)
        stats = train_step(student, optimizer, guard, dialogues, advantages, chat.pad_id, device,
                           reference=reference, beta=beta, clip_eps=clip_eps, ppo_epochs=ppo_epochs,
                           micro_batch=micro_batch, loss_norm=loss_norm)
        row = {"step": step + 1, "problems": [p.id for p in batch],
               "reward": rewards[scored].mean().item() if scored.any() else 0.0,
               **success_by_turn(dialogues, max_turns), "zero_variance_groups": flat,
               **dialogue_stats(dialogues), **stats, "skipped_steps": guard.skipped,
               "seconds_rollout": t_rollout, "seconds_train": time.time() - t0 - t_rollout}
        if hasattr(teacher, "uptake"):   # a scripted teacher can tell whether its feedback was taken up
            row["feedback_uptake"], row["feedback_uptake_n"] = teacher.uptake(dialogues)
        runfolder.append_metrics(out, row)
        bar.set_postfix(reward=f"{row['reward']:.2f}", solved=f"{row[f'solved_by_turn_{max_turns}']:.2f}",
                        flat=f"{flat:.2f}", loss=f"{row['loss']:.3f}", ent=f"{row['entropy']:.2f}")
        if (step + 1) % save_every == 0 or step + 1 == n_steps:
            runfolder.save_checkpoint(out, step + 1, student, tokenizer, optimizer, {"method": "grpo"})
    runfolder.atomic_write(out / "finished", str(n_steps))     # --resume skips a stage that has this marker
    student.eval()
    return student


def reference_policy(student):
    """Detail 5's KL reference, the policy this stage starts from, frozen: a function that returns a context
    in which it yields a model computing that policy. A LoRA student needs no copy of the base."""
    if lora.adapters(student):   # keep the adapters' starting values (MBs) and swap them in for the
        start = lora.adapter_values(student)   # reference pass; fresh adapters make it the base exactly
        return lambda: lora.adapters_as(student, start)
    frozen = copy.deepcopy(student).eval().requires_grad_(False)
    return lambda: contextlib.nullcontext(frozen)


def train_step(model, optimizer, guard, dialogues, advantages, pad_id, device, reference=None, beta=0.0,
               clip_eps=0.2, ppo_epochs=1, micro_batch=16, loss_norm: str = "token") -> dict:
    """One (or ppo_epochs) optimiser step(s) on a batch of dialogues; gradient accumulation over micro-batches.

    The loss is over the dialogues that have a reward (not cut by the context), and so is its denominator
    (detail 4). With beta = 0 a zero-advantage dialogue adds exactly 0, so it is skipped (detail 5).
    `reference` is what reference_policy returns.
    Under torchrun every rank holds the whole batch and backpropagates its share of the dialogues; their
    gradients and losses are summed (distributed.py), so the step is the one of one process on the batch."""
    scored = [i for i, d in enumerate(dialogues) if not d.truncated]
    n_tokens = sum(sum(dialogues[i].student_mask) for i in scored)
    stats = {"loss": 0.0, "grad_norm": 0.0, "entropy": float("nan"), "student_tokens": n_tokens,
             "distinct_replies": distinct_replies(dialogues)}
    train_on = scored if beta > 0 else [i for i in scored if advantages[i] != 0]
    if not train_on or n_tokens == 0:              # every group flat and no KL: nothing to learn from
        return stats
    mine = distributed.shard(train_on)             # torchrun: this rank's share (may be none at all)
    micro = [mine[i:i + micro_batch] for i in range(0, len(mine), micro_batch)]
    batches = [batch_tensors([(dialogues[i].ids, dialogues[i].student_mask) for i in mb], pad_id, device)
               for mb in micro]                    # padded once, reused by every pass below
    old = ref = [None] * len(micro)
    with torch.no_grad():                          # pi_old for the ratio, pi_ref for the KL: only if used
        if ppo_epochs > 1:
            old = [masked_logprobs(model, *b) for b in batches]
        if reference is not None and beta > 0:
            with reference() as reference_model:
                ref = [masked_logprobs(reference_model, *b) for b in batches]
    model.train()
    ent_sum, ent_tokens = 0.0, 0.0
    for epoch in range(ppo_epochs):
        total = 0.0
        for k, (mb, (ids, mask, attention)) in enumerate(zip(micro, batches)):
            logp, ent = masked_logprobs(model, ids, mask, attention, with_entropy=True)   # (b, T), (b, T)
            loss = policy_loss(logp, mask, advantages[mb].to(device), old_logp=old[k], ref_logp=ref[k],
                               clip_eps=clip_eps, beta=beta, n_tokens=n_tokens, norm=loss_norm,
                               n_dialogues=len(scored))
            loss.backward()
            total += loss.item()
            if epoch == 0:
                ent_sum, ent_tokens = ent_sum + (ent * mask).sum().item(), ent_tokens + mask.sum().item()
        distributed.all_reduce_grads(model.parameters())   # K ranks: one process's gradient on the whole batch
        total = distributed.all_reduce_sum(total)           # ... and its loss: the NaN guard decides alike
        stats["grad_norm"] = guard.step(model, optimizer, total)
        stats["loss"] = total
    ent_sum, ent_tokens = distributed.all_reduce_sum([ent_sum, ent_tokens])
    stats["entropy"] = ent_sum / max(1.0, ent_tokens)
    model.eval()
    return stats


# ---------------------------------------------------------------------------------------------
# Log-probs of the student's tokens, in chunks (also used by sft.py and evaluate.py).
# ---------------------------------------------------------------------------------------------

def masked_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor, chunk: int = 1024,
                    with_entropy: bool = False):
    """log p(token_i | tokens_<i) at the positions where mask[:, i] == 1, else 0. ids, mask, attention: (B, T).

    Returns logp (B, T) and, if asked, the policy's entropy at those positions (B, T). Only student
    positions ever reach the vocabulary projection, `chunk` positions at a time, and each chunk is
    recomputed in the backward pass (activation checkpointing) instead of keeping its logits.
    """
    # No KV cache here, and with --grad-checkpointing each decoder layer is recomputed in the backward
    # pass instead of storing its activations.
    hidden = model.get_decoder()(input_ids=ids, attention_mask=attention,
                                 use_cache=False).last_hidden_state         # (B, T, H); nothing reuses a cache
    target = mask[:, 1:].bool()                                             # (B, T-1) next token: student's
    h = hidden[:, :-1][target]                                              # (n, H)
    y = ids[:, 1:][target]                                                  # (n,)
    head, cap = model.get_output_embeddings(), getattr(model.config, "final_logit_softcapping", None)
    logps, ents = [], []
    for i in range(0, h.shape[0], chunk):   # full fp32 logits of 8 x 2048 tokens x 152k words would be ~10 GB
        args = (h[i:i + chunk], y[i:i + chunk], head.weight, cap)
        lp, ent = (checkpoint(_chunk_logprobs, *args, use_reentrant=False) if torch.is_grad_enabled()
                   else _chunk_logprobs(*args))
        logps.append(lp)
        ents.append(ent)
    logp = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)   # (B, T)
    logp[:, 1:][target] = torch.cat(logps) if logps else logp.new_zeros(0)
    if not with_entropy:
        return logp
    entropy = torch.zeros_like(logp)
    entropy[:, 1:][target] = torch.cat(ents).detach() if ents else logp.new_zeros(0)
    return logp, entropy


def _chunk_logprobs(h, y, weight, cap):
    logits = F.linear(h, weight).float()                                    # (n, V)
    if cap:                                                                 # Gemma's final logit soft-capping
        logits = torch.tanh(logits / cap) * cap
    logz = torch.logsumexp(logits, dim=-1)                                  # (n,)
    lp = logits.gather(-1, y[:, None]).squeeze(-1) - logz                   # (n,)
    ent = logz - (torch.softmax(logits, dim=-1) * logits).sum(-1)           # (n,)
    return lp, ent


def batch_tensors(examples: list[tuple[list[int], list[int]]], pad_id: int, device):
    """Right-pad (ids, mask) pairs into (B, T) tensors: ids, loss mask, attention mask. Padding is known
    by position, never inferred from token ids, so pad == eos cannot hide a real end token."""
    T = max(len(ids) for ids, _ in examples)
    ids = torch.tensor([i + [pad_id] * (T - len(i)) for i, _ in examples], device=device)
    mask = torch.tensor([m + [0] * (T - len(m)) for _, m in examples], dtype=torch.float32, device=device)
    attention = torch.tensor([[1] * len(i) + [0] * (T - len(i)) for i, _ in examples], device=device)
    return ids, mask, attention


# ---------------------------------------------------------------------------------------------
# What a step logs besides its loss.
# ---------------------------------------------------------------------------------------------

def success_by_turn(dialogues, max_turns: int) -> dict:
    n = max(1, len(dialogues))
    return {f"solved_by_turn_{t}": sum(d.success_turn is not None and d.success_turn <= t
                                       for d in dialogues) / n
            for t in range(1, max_turns + 1)}


def dialogue_stats(dialogues) -> dict:
    """Teacher leaks (per teacher reply), dialogues cut by the context, and turns that never ended."""
    replies = sum(sum(m["role"] == "teacher" for m in d.messages) - 1 for d in dialogues)
    return {"teacher_leak_rate": sum(d.leaks for d in dialogues) / max(1, replies),
            "truncated": sum(d.truncated for d in dialogues), "overlong": sum(d.overlong for d in dialogues)}


def distinct_replies(dialogues) -> float:
    """A diversity signal, since beta = 0 can collapse into degenerate text: distinct first replies /
    dialogues. Collapse drives it towards 1/g."""
    firsts = [d.student_turns()[0]["text"] for d in dialogues if d.student_turns()]
    return len(set(firsts)) / max(1, len(firsts))


if __name__ == "__main__":
    import tasks
    import tinyworld
    student, tok = tinyworld.load_tiny()
    out = Path("runs/grpo-demo")
    train(student, tok, tinyworld.scripted_teacher("math"), tasks.tiny_math_problems("train", n=64), out,
          lr=1e-3, sampling=dialogue.Sampling(max_turn_tokens=32, max_dialogue_tokens=512), max_steps=8)
    print(open(out / "metrics.jsonl").read().splitlines()[-1])
