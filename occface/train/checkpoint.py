"""Training checkpoints: one format, plain dicts, written atomically, read with ``weights_only``.

A checkpoint (``last.pt``, ``stage{k}.pt``) holds ``format``, ``version``, ``step``,
``stage``, ``epoch``, ``position``, the generator and discriminator state dicts, the
optimiser states, the RNG states, the resolved ``config``, the data manifest's
``manifest_sha256``, the versions and the last losses.  ``generator.pt`` is the same dict
without discriminators, optimisers and RNG states (what validate / hallucinate need).
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import torch

from ..errors import FormatError
from ..format.atomic import atomic_path
from ..model import ProUIGANConfig, ProUIGenerator
from .config import EXECUTION_FIELDS, ConfigMismatch

CHECKPOINT_FORMAT = "occface-train-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str, state: dict) -> None:
    """``torch.save`` atomically (:func:`occface.format.atomic.atomic_path`): a reader sees the
    old file or the new one, never a partial one."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """A checkpoint written by the trainer, loaded with ``weights_only=True`` (no code runs).

    Raises :class:`~occface.errors.FormatError` for anything else (a text file, a pickle
    that is not plain tensors and containers, another program's checkpoint).
    """
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols in terms of unsafe loading
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch's messages suggest unsafe loading; never pass them on
        raise FormatError(f"{path} is not an occface checkpoint: it cannot be read as plain tensors "
                          "and containers") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path} is not an occface training checkpoint")
    return ckpt


def model_config_from_dict(d: dict) -> ProUIGANConfig:
    """:class:`ProUIGANConfig` from its ``to_dict`` form (lists back to tuples)."""
    names = {f.name for f in dataclasses.fields(ProUIGANConfig)}
    return ProUIGANConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in d.items() if k in names})


def load_generator(path: str, device="cpu") -> tuple[ProUIGenerator, dict]:
    """The generator of a checkpoint (``last.pt``, ``stage{k}.pt`` or the generator-only
    ``generator.pt``), in eval mode on ``device``, and the checkpoint's metadata (step,
    stage, config, manifest hash; no tensors)."""
    ckpt = load_checkpoint(path)
    g = ProUIGenerator(model_config_from_dict(ckpt["config"]["model"]))
    g.load_state_dict(ckpt["generator"])
    info = {k: ckpt.get(k) for k in ("step", "stage", "config", "manifest_sha256",
                                     "occface_version", "epoch")}
    info["path"] = os.path.abspath(path)
    return g.to(device).eval(), info


def _math_config(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def check_resume(ckpt: dict, cfg_dict: dict, sha: str, path: str) -> None:
    want, have = _math_config(cfg_dict), _math_config(ckpt["config"])
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        lines = [f"  {k}: checkpoint {have.get(k)!r} vs now {want.get(k)!r}" for k in diff]
        raise ConfigMismatch(f"{path} was written with another config; only {EXECUTION_FIELDS} "
                             "may change on resume:\n" + "\n".join(lines))
    if ckpt["manifest_sha256"] != sha:
        raise ConfigMismatch(f"{path} was trained on other data (manifest sha256 "
                             f"{ckpt['manifest_sha256'][:12]}... vs {sha[:12]}...)")
