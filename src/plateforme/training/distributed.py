"""Data parallelism under torchrun: which process this is, and summing gradients across processes.

Every rank holds the same LoRA weights (same seed, or the same checkpoint) and takes its share of
each step's examples; after the step's backward passes the trainable gradients (and the step's
loss sums) are summed across ranks in one all-reduce, so every rank applies the same update.
This is DDP's arithmetic without DDP's wrapper, which needs the same number of backward passes
on every rank (ranks here may have different numbers of micro-batches, or none).
Without torchrun (no WORLD_SIZE), it is a single process and nothing is communicated.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This rank's part of `items` (every world-th one)."""
        return items[self.rank::self.world]


def start() -> tuple[Ranks, torch.device]:
    """Join the process group when launched by torchrun; the device this rank computes on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ranks = Ranks(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = torch.device("cuda", ranks.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ranks, device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over all ranks (in place); unchanged in a single process."""
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def sum_gradients(parameters: list[torch.nn.Parameter], extra: torch.Tensor) -> torch.Tensor:
    """Sum the gradients of `parameters` and the small vector `extra` over ranks; returns summed `extra`."""
    if not dist.is_initialized():
        return extra
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads] + [extra.to(grads[0].dtype)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(parameters, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n
    return flat[offset:].to(extra.dtype)
