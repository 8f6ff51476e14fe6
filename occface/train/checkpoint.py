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
from ..format.canonical import to_dict
from ..model import LossWeights, ProUIGANConfig, ProUIGenerator
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


def loss_weights_from_dict(d: dict) -> LossWeights:
    """:class:`LossWeights` from its ``to_dict`` form (lists back to tuples)."""
    names = {f.name for f in dataclasses.fields(LossWeights)}
    return LossWeights(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


def load_generator(path: str, device="cpu", ema: bool = True) -> tuple[ProUIGenerator, dict]:
    """The generator of a checkpoint (``last.pt``, ``stage{k}.pt``, the generator-only
    ``generator.pt`` or the bundled reference weights), in float32 eval mode on ``device``,
    and the checkpoint's metadata (step, stage, config, manifest hash, whether the weights
    are the EMA ones; no tensors).  ``ema``: use the EMA weights when the checkpoint keeps
    them (``generator.pt`` of an EMA run holds only those)."""
    ckpt = load_checkpoint(path)
    g = ProUIGenerator(model_config_from_dict(ckpt["config"]["model"]))
    use_ema = ema and "generator_ema" in ckpt
    # load_state_dict copies into the float32 parameters, so fp16 files load as float32
    g.load_state_dict(ckpt["generator_ema"] if use_ema else ckpt["generator"])
    info = {k: ckpt.get(k) for k in ("step", "stage", "config", "manifest_sha256",
                                     "occface_version", "epoch")}
    info["ema"] = bool(use_ema or ckpt.get("ema"))
    info["path"] = os.path.abspath(path)
    return g.to(device).eval(), info


def _math_config(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def check_resume(ckpt: dict, cfg_dict: dict, sha: str, path: str) -> None:
    want, have = _math_config(cfg_dict), _math_config(ckpt["config"])
    if isinstance(have.get("model"), dict):  # model fields added since it was written take their defaults
        have["model"] = to_dict(model_config_from_dict(have["model"]))
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        lines = [f"  {k}: checkpoint {have.get(k)!r} vs now {want.get(k)!r}" for k in diff]
        raise ConfigMismatch(f"{path} was written with another config; only {EXECUTION_FIELDS} "
                             "may change on resume:\n" + "\n".join(lines))
    if ckpt["manifest_sha256"] != sha:
        raise ConfigMismatch(f"{path} was trained on other data (manifest sha256 "
                             f"{ckpt['manifest_sha256'][:12]}... vs {sha[:12]}...)")


def export_generator(src: str, dst: str, *, half: bool = True, ema: bool = True,
                     card: dict | None = None) -> dict:
    """Write the generator of checkpoint ``src`` as a generator-only checkpoint ``dst``
    (float16 tensors with ``half``; the EMA weights when ``src`` keeps them and ``ema``) and
    its card ``dst`` with ``.json`` for ``.pt``: ``card``'s fields plus the file's SHA-256 and
    size, the step, stage, resolved config, data hash and versions.  Both files are written
    atomically; returns the card."""
    import hashlib

    from ..format.atomic import write_json_atomic

    ckpt = load_checkpoint(src)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    use_ema = ema and "generator_ema" in ckpt
    weights = ckpt["generator_ema"] if use_ema else ckpt["generator"]
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    keep = ("step", "stage", "epoch", "config", "manifest_sha256", "occface_version", "torch_version")
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
             **{k: ckpt.get(k) for k in keep}, "generator": weights,
             "ema": bool(use_ema or ckpt.get("ema")), "dtype": "float16" if half else "float32"}
    save_checkpoint(dst, state)
    h = hashlib.sha256()
    with open(dst, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    meta = {**(card or {}), "file": os.path.basename(dst), "sha256": h.hexdigest(),
            "bytes": os.path.getsize(dst), "dtype": state["dtype"], "ema": state["ema"],
            **{k: ckpt.get(k) for k in keep}}
    write_json_atomic(os.path.splitext(dst)[0] + ".json", meta)
    return meta
