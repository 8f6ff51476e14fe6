"""Where torch code runs: device choice, moving batches there, mixed precision.

The one place for these helpers (training, validation, inference and the benchmarks all use
them).  torch is imported inside the functions, so importing this module stays cheap and the
numpy-only parts of occface work without torch.
"""

from __future__ import annotations

import contextlib

from .errors import OccfaceError

AMP_MODES = ("none", "bf16")


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, so container and ``taskset`` limits
    count), at least 1: the ceiling of every default worker count."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class DeviceUnavailable(OccfaceError):
    """The requested device does not exist on this machine."""


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when CUDA is available, else ``"cpu"``; any other name is checked.

    Raises :class:`DeviceUnavailable` (one line) for a CUDA device on a machine without CUDA
    or with fewer GPUs than the index asks for, and ``ValueError`` for an unknown name.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {device!r} asked for, but this machine has no usable CUDA GPU "
                                    "(torch " + torch.__version__ + "); use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {device!r} asked for, but this machine has "
                                    f"{torch.cuda.device_count()} CUDA GPU(s)")
    return device


def resolve_amp(amp: str, device: str) -> str:
    """``"auto"`` -> ``"bf16"`` on CUDA, ``"none"`` elsewhere; ``"bf16"`` / ``"none"`` as given."""
    if amp == "auto":
        return "bf16" if str(device).startswith("cuda") else "none"
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES} or 'auto', got {amp!r}")
    return amp


def autocast(device, amp: str):
    """bfloat16 autocast on ``device`` when ``amp == "bf16"``, else a no-op context."""
    if amp == "bf16":
        import torch

        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def move(batch: dict, device, non_blocking: bool = True) -> dict:
    """``batch`` with every tensor (also inside a nested dict, e.g. ``heatmaps``) on ``device``.

    Other values (lists of keys, floats) are kept.  ``non_blocking`` copies asynchronously
    from pinned memory (``DataLoader(pin_memory=True)``).  Returns a new dict.
    """
    import torch

    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=non_blocking)
        elif isinstance(v, dict):
            v = {s: t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t for s, t in v.items()}
        out[k] = v
    return out
