"""Data parallelism on torch.distributed: `torchrun --nproc-per-node K sml.py ...` runs the recipe on K GPUs.

One GRPO step is B problems x g dialogues of rollouts, then a backward pass over them. Both are
independent per problem, so K processes ("ranks", one per GPU, each with a whole copy of the student)
split the work:
  * rollouts: rank r rolls out problems r, r + K, r + 2K, ... of the step's batch (`shard`), the same
    batch as one process with the same seed, sampling with its own seed (`rank_seed`). A problem's g
    dialogues stay on one rank. The dialogues (token ids, a few MB) are then gathered to every rank
    (`gather`), so that rewards, advantages (Eq. 3), the loss's denominator and the metrics are
    computed on the whole batch exactly as one process computes them.
  * training: each rank backpropagates its share of the batch's dialogues, divided by the whole
    batch's count (student tokens, or dialogues), then the gradients of the trainable parameters are
    summed over ranks (`all_reduce_grads`): K ranks get the gradient one process gets on the same
    dialogues, and clip and step identically. With LoRA only the adapters require grad, so only they
    are summed. The NaN guard sees the summed loss and gradients, so every rank skips the same steps.
  * evaluation: the test problems are split the same way and the dialogues gathered, so every problem
    is scored exactly once, in order; Fig. 3's contexts are split and their sums added (`all_reduce_sum`).
  * files: rank 0 alone writes the run folder (runfolder.py's writers do nothing on the other ranks);
    every rank reads checkpoints on resume. Only rank 0 prints.
What scales with K: rollouts and backward passes (each rank does 1/K of them). What does not: every
rank holds the whole model, its optimiser state and the teacher (memory per GPU is one process's), and
the gathers and the gradient sum add communication each step.

Why not DistributedDataParallel: DDP hooks its gradient reducer into the wrapped model's forward, but
the loss here never calls it (grpo.masked_logprobs runs the decoder, then the output head in chunks),
and ranks may run different numbers of micro-batches (flat groups are skipped when beta = 0), which DDP
would wait on forever. One bucketed all-reduce after the micro-batches is what DDP does, minus
overlapping it with the backward pass.

Deviation from one process: the step's batch is the same, but each rank samples with its own seed, so a
K-rank run is another sample of the same training process, not a replica of the one-process run (the
one-process run is unchanged: rank 0's seed is the seed). A resume under another K is allowed.

Launched without torchrun (no RANK / WORLD_SIZE in the environment), nothing here initialises a process
group and every function is the identity of one process. Nothing else in the project imports
torch.distributed. Backend: NCCL on CUDA (rank r on cuda:LOCAL_RANK), gloo on CPU.

    torchrun --nproc-per-node 2 sml.py --task math          # two processes (CPU: gloo; GPUs: NCCL)
    python -m pytest -q tests/test_distributed.py           # 1 vs 2 ranks on CPU
"""
from __future__ import annotations

import datetime
import os
import sys
import traceback

import torch
import torch.distributed as dist

RANK_SEED_STRIDE = 1_000_000_007   # rank r samples with seed + r * this: far from every seed a run derives


def setup(device: str | None = None) -> str | None:
    """Join torchrun's process group. Returns this rank's device: cuda:LOCAL_RANK (NCCL), or "cpu" (gloo) on a
    machine without CUDA or when `device` asks for the CPU. Launched as one process: None, and nothing is
    done."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return None
    # transformers imports torch.distributed.fsdp lazily, when it first builds a tokenizer or a model;
    # imported while the group is up, that module keeps a hold on the group that destroy_process_group does
    # not release, so gloo's worker threads outlive it, and one that frees a finished collective's tensors
    # while Python exits takes the GIL of a dying interpreter: "terminate called without an active exception",
    # an occasional abort in 2-rank CPU runs, and torchrun then stops every rank. Imported before the group
    # exists, it holds none.
    import torch.distributed.fsdp  # noqa: F401
    local_rank = int(os.environ["LOCAL_RANK"])
    timeout = datetime.timedelta(hours=1)   # rank 0 may work alone for minutes (a warm-up, a download)
    if torch.cuda.is_available() and (device is None or device.startswith("cuda")):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device(device), timeout=timeout)
    else:
        device = "cpu"
        dist.init_process_group("gloo", timeout=timeout)
    if dist.get_rank() != 0:   # one rank speaks: the others' lines and progress bars would repeat its own,
        terminal = sys.stderr  # but a crash of theirs still shows its traceback
        sys.stdout = sys.stderr = open(os.devnull, "w")
        sys.excepthook = lambda *exc: traceback.print_exception(*exc, file=terminal)
    return device


def cleanup():
    if active():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier():
    if active():
        dist.barrier()


def rank_seed(seed: int) -> int:
    """This rank's sampling seed: rank 0 keeps `seed` (one process is unchanged), the others differ."""
    return seed + rank() * RANK_SEED_STRIDE


# ---------------------------------------------------------------------------------------------
# Splitting the work and putting it back together.
# ---------------------------------------------------------------------------------------------

def shard(items: list) -> list:
    """This rank's share: items r, r + K, r + 2K, ... (sizes differ by at most one)."""
    return items[rank()::world()]


def gather(mine: list, unit: int = 1) -> list:
    """Every rank gets the whole list back in the original order, from each rank's results for its
    `shard`, `unit` results per item (e.g. a problem's g dialogues)."""
    if world() == 1:
        return mine
    parts = all_gather(mine)
    units = [[part[i:i + unit] for i in range(0, len(part), unit)] for part in parts]
    K = len(units)
    return [x for u in range(sum(map(len, units))) for x in units[u % K][u // K]]


def all_gather(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (any picklable object)."""
    if world() == 1:
        return [obj]
    out = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(x):
    """The sum over ranks of a number, a list of numbers (one collective) or a tensor (in place)."""
    if world() == 1:
        return x
    if isinstance(x, torch.Tensor):
        dist.all_reduce(x)
        return x
    t = torch.tensor(x, dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return t.tolist()


def on_main(fn, then_all: bool = False):
    """fn() on rank 0 (only, or first when `then_all`: a cache rank 0 writes that the others then read).
    An error fn raises on rank 0 is raised on every rank, so that no rank waits forever for rank 0."""
    if world() == 1:
        return fn()
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except Exception as e:   # UserError and friends: every rank stops with the same sentence
            error = e
    box = [error]
    dist.broadcast_object_list(box, src=0)
    if box[0] is not None:
        raise box[0]
    if then_all and not is_main():
        result = fn()
    return result


# ---------------------------------------------------------------------------------------------
# Keeping the K copies of the student identical.
# ---------------------------------------------------------------------------------------------

def broadcast_parameters(params):
    """Copy rank 0's values of `params` to every rank (as DDP does when it wraps a model): replicas that
    start apart would stay apart, since each rank applies the same summed update to its own copy."""
    if world() == 1:
        return
    for p in params:
        dist.broadcast(p.data, src=0)


def all_reduce_grads(params, bucket_numel: int = 1 << 24):
    """Sum the gradients of `params` (those that require grad) over ranks, in place.

    A parameter that has a gradient on any rank gets one on every rank (zeros where a rank had nothing
    to train on), and one that has none anywhere keeps None, as in one process (AdamW skips it). The
    gradients travel in buckets of about `bucket_numel` elements, one collective each, not one per tensor.
    """
    if world() == 1:
        return
    params = [p for p in params if p.requires_grad]
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=_device())
    dist.all_reduce(has)
    live = [p for p, h in zip(params, has.tolist()) if h]
    for p in live:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket, size = [], 0
    for i, p in enumerate(live):
        bucket.append(p)
        size += p.numel()
        last = i + 1 == len(live)
        if last or size >= bucket_numel or live[i + 1].grad.dtype != p.grad.dtype:
            flat = torch.cat([q.grad.reshape(-1) for q in bucket])                      # (numel of bucket,)
            dist.all_reduce(flat)
            for q, g in zip(bucket, flat.split([q.numel() for q in bucket])):
                q.grad.copy_(g.view_as(q.grad))
            bucket, size = [], 0


def _device() -> torch.device:
    """Where a collective's tensors live: the rank's GPU under NCCL, the CPU under gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
