"""Fig. 3 (§6.1): the loss on the correct answer after each teacher turn, on contexts shared by every model.

A model that learns from feedback should find the correct answer more likely after each teacher reply. The
paper plots the student's loss on the reference answer after turn t; this file computes it on one fixed set of
contexts (`fig3_contexts`), so that every model and turn is scored on the same problems, masked on the answer's
own tokens (`answer_tokens`). In the tiny world the contexts are `tinyworld.reference_dialogues` (wrong answers
of the base's kind and the teacher's replies), the answer is written as the step from the teacher's last reply
("52 - 3 = \\boxed{49}"), and the loss is also split by kind of context: after a reply that placed the answer
(an exact distance), and after one that did not.

    python evaluate.py --model tiny --answer-loss          # adds answer_loss_by_turn to eval.json

Deviation from the paper: it averages each model's own dialogues, which drop out once solved, so they compare
different problems per model and turn; here every model is scored on the same contexts (with an LLM teacher:
the base's own first-seed dialogues, shared by every model evaluated after it).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

import dialogue
import grpo
import tinyworld
from infra import distributed
from report import ANSWER_LOSS_KINDS


class AnswerContext(NamedTuple):
    """One of Fig. 3's contexts: a dialogue prefix that ends with teacher turn `turn`; the reply scored there."""
    turn: int             # t = 1..N: the opening is teacher turn 1
    ids: list[int]        # the prefix, ending with the assistant header where the reply would go
    problem: object
    reply: str            # the correct reply
    placed: bool | None   # did the teacher's last message say where the answer is? (None: not known)


def reference_contexts(dialogues, n_turns: int) -> list[AnswerContext]:
    """Every prefix of the reference dialogues that ends with a teacher turn, t = 1..n_turns. The correct reply
    is `\\boxed{gold}`, unless the teacher's message names the form in which a student writes the answer there
    (its "answer_form": the tiny world's worked step, "52 - 3 = \\boxed{49}"); `placed` is the message's
    "placed" key where it has one (the tiny world's reference dialogues). Only student turns that are wrong are
    allowed in a context (the answer must not be in it already), so a reference dialogue contributes its
    prefixes up to its first correct turn. Every model is then scored on exactly these contexts: the same
    problems at every turn, whoever is being evaluated."""
    out = []
    for d in dialogues:
        if d.problem.answer is None:
            continue
        context, t = [], 0
        for (role, seg), m in zip(d.segments, d.messages):
            if role == "student" and m.get("correct"):
                break
            context = context + seg
            if role == "teacher":
                t += 1
                if t > n_turns:
                    break
                reply = m.get("answer_form") or f"\\boxed{{{d.problem.answer}}}"
                out.append(AnswerContext(t, context, d.problem, reply, m.get("placed")))
    return out


def fig3_contexts(teacher, problems, tokenizer, n_turns: int, own_dialogues=None):
    """Fig. 3's contexts, the same for every model: with the tiny world's scripted teacher, its reference
    dialogues of wrong answers for every problem; with an LLM teacher, `own_dialogues` (the first model's
    first-seed dialogues; None if not given yet)."""
    if isinstance(teacher, tinyworld.HintTeacher):
        return reference_contexts(tinyworld.reference_dialogues(problems, tokenizer, n_turns), n_turns)
    return None if own_dialogues is None else reference_contexts(own_dialogues, n_turns)


def answer_tokens(chat, reply: str) -> tuple[list[int], list[int]]:
    """The correct reply as tokens, and a mask that is 1 on the reply's own tokens (found by character
    offsets): the loss is on the answer (and on the step written before it, if any), not on the `\\boxed{`
    and `}` around it or on spaces, which every attempt writes alike. `\\boxed{85}` -> "85";
    `52 - 3 = \\boxed{49}` -> "52-3=49"."""
    start = reply.rindex("\\boxed{")
    wrapper = set(range(start, start + len("\\boxed{"))) | {len(reply) - 1}   # the box's braces close the reply
    enc = chat.tok(reply, add_special_tokens=False, return_offsets_mapping=True)
    own = [i not in wrapper and not reply[i].isspace() for i in range(len(reply))]
    return enc["input_ids"], [int(any(own[a:b])) for a, b in enc["offset_mapping"]]


@torch.no_grad()
def answer_loss(model, tokenizer, contexts: list[AnswerContext], n_turns: int, batch_size: int = 8) -> dict:
    """Fig. 3's eval.json keys. "answer_loss_by_turn": for each teacher turn t = 1..n_turns, -log p(correct
    reply | context), averaged over the reply's own tokens (`answer_tokens`; per token, so long answers don't
    dominate), then over the contexts of turn t (None where there are none).

    Where the contexts say whether the teacher's last message placed the answer (the tiny world's), the same
    average is also taken over each kind alone ("answer_loss_placed", "answer_loss_not_placed"), with
    "answer_placed_share", the share of turn t's contexts that are placed. The curve over all contexts mixes
    the two kinds in proportions that change with t (in the tiny world, the later the turn, the fewer contexts
    follow a reply that did not place the answer), so only a curve of one kind shows whether the loss falls
    because the teacher's turns accumulate."""
    chat = dialogue.ChatFormat(tokenizer, check=False)
    device = next(model.parameters()).device
    examples = []
    for c in distributed.shard(contexts):       # torchrun: this rank's share; the sums are added
        ids, mask = answer_tokens(chat, c.reply)
        examples.append((c, (c.ids + ids, [0] * len(c.ids) + mask)))
    examples.sort(key=lambda e: len(e[1][0]))   # similar lengths in a batch: less padding
    kinds = any(c.placed is not None for c in contexts)   # an LLM teacher's dialogues have none: one curve
    groups = {"answer_loss_by_turn": None} | (ANSWER_LOSS_KINDS if kinds else {})   # None: every context
    totals = torch.zeros(len(groups), 2, n_turns, dtype=torch.float64)      # (group, sum | count, turn)
    for i in range(0, len(examples), batch_size):
        batch = examples[i:i + batch_size]
        ids, mask, attention = grpo.batch_tensors([ex for _, ex in batch], chat.pad_id, device)  # (B, T)
        logp = grpo.masked_logprobs(model, ids, mask, attention)                 # (B, T), 0 off the answer
        nll = -logp.sum(1) / mask.sum(1)                                         # (B,) mean over answer tokens
        for (c, _), value in zip(batch, nll.tolist()):
            for j, kind in enumerate(groups.values()):
                if kind is None or c.placed is kind:
                    totals[j, 0, c.turn - 1] += value
                    totals[j, 1, c.turn - 1] += 1
    # torchrun: every rank's sums and counts added (as a list: all_reduce_sum puts it on NCCL's device)
    totals = torch.tensor(distributed.all_reduce_sum(totals.flatten().tolist()), dtype=torch.float64)
    totals = totals.view(len(groups), 2, n_turns).tolist()     # [group][0: sums, 1: counts][turn]
    out = {key: [s / n if n else None for s, n in zip(*totals[j])] for j, key in enumerate(groups)}
    if kinds:   # the placed contexts' count over every context's
        every, placed = totals[0][1], totals[list(groups).index("answer_loss_placed")][1]
        out["answer_placed_share"] = [p / n if n else None for p, n in zip(placed, every)]
    return out
