"""torch.distributed: this process's place in a job, and the one collective the loop needs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

@dataclass(frozen=True)
class DistContext:
    """This process's place in a torch.distributed job (process group already initialised)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def init_distributed(rank: int, world_size: int, local_rank: int, master_addr: str,
                     master_port: int | str, device: str = "cpu") -> DistContext:
    """Initialise torch.distributed explicitly (NCCL on CUDA, gloo on CPU).  The CLI passes
    torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT."""
    import torch.distributed as tdist

    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    tdist.init_process_group(backend, init_method=f"tcp://{master_addr}:{master_port}",
                             rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank)


def agree(bad: torch.Tensor, time_up: bool, ddp: bool, device) -> tuple[bool, bool]:
    """(any rank saw a non-finite loss, any rank's time is up): one MAX all-reduce."""
    flags = torch.stack([bad.to(torch.int32), torch.tensor(int(time_up), dtype=torch.int32, device=device)])
    if ddp:
        import torch.distributed as tdist

        tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
    a, b = flags.tolist()
    return bool(a), bool(b)
