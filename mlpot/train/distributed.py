"""Process-group setup for ``torchrun ... mlpot train``; a single process needs none of it."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over processes, in place; the identity for one process."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def start(device: str) -> ProcessGroup:
    """Join the group torchrun describes in the environment (gloo on CPU; nccl and gloo on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # On CUDA, gradients go through NCCL, and the small CPU tensors (losses, stop flags) through
    # gloo: an NCCL-only group refuses CPU tensors.
    backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank)


def stop(group: ProcessGroup) -> None:
    if group.active and dist.is_initialized():
        dist.destroy_process_group()
