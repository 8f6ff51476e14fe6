"""VGG-16 / VGG-19 feature stacks for L_f and L_style, written in-project.

torchvision cannot be installed beside the CPU torch used here, so the
networks are defined here with torchvision's module layout: a ``features``
Sequential with the same indices (conv, ReLU, max-pool), an ``avgpool`` and
a ``classifier`` Sequential (Linear at indices 0, 3, 6).  State-dict keys
are therefore ``features.0.weight`` ... ``classifier.6.bias``, and the
standard ImageNet checkpoints (``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``)
load unchanged.

The losses only need a prefix of ``features``; :func:`load_vgg` builds that
prefix and copies the matching tensors from a full checkpoint.

Weights come only from places the caller names - an explicit file, a
torch-hub cache directory (``<hub_dir>/checkpoints/<standard file>``, where
torchvision users already have them), or, with ``allow_download=True``, the
standard URL: :func:`download_vgg` fetches the file into that cache and checks
its SHA-256 against the 8-hex-digit prefix in the published file name (as
``torch.hub`` does with ``check_hash=True``) before anything is kept.  Nothing
here reads environment variables or downloads unasked.  When no weights are
found :class:`VGGWeightsMissing` says where it looked; there is no silent
fallback to random weights.

Inputs are ImageNet-normalised RGB: ``(x01 - mean) / std`` with x01 in
[0, 1]; see :func:`imagenet_normalise` for the conversion from [-1, 1].
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import OccfaceError

# Channel plans ("M" = 2x2 max-pool): configuration D (16 layers) and E (19).
VGG_PLANS: dict[str, tuple] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
#: Standard torchvision ImageNet checkpoints (file name embeds a hash prefix).
VGG_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
VGG_FILES = {arch: url.rsplit("/", 1)[1] for arch, url in VGG_URLS.items()}
#: The published SHA-256 prefixes: the 8 hex digits after the dash in each file name.
VGG_SHA256_PREFIXES = {arch: name.rsplit("-", 1)[1].split(".")[0] for arch, name in VGG_FILES.items()}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_features(arch: str, depth: int | None = None, inplace: bool = True) -> nn.Sequential:
    """``features`` of ``arch`` with torchvision indices, cut after
    ``depth`` modules (None: all).  Conv 3x3 pad 1, ReLU, MaxPool 2x2."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG_PLANS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=inplace)]
            cin = item
    return nn.Sequential(*layers[:depth])


class VGG(nn.Module):
    """The full ImageNet classifier, key-compatible with torchvision's
    ``vgg16()`` / ``vgg19()``.  Build on the meta device to inspect keys
    without allocating 500 MB."""

    def __init__(self, arch: str = "vgg16", num_classes: int = 1000):
        super().__init__()
        self.features = make_features(arch)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class VGGFeatures(nn.Module):
    """Frozen prefix of a VGG ``features`` stack returning named taps.

    ``taps`` maps a name to the index (in torchvision's ``features``) whose
    output is wanted, e.g. {"relu3_2": 13} for VGG-19 or {"pool1": 4,
    "pool2": 9, "pool3": 16} for VGG-16.  Parameters are frozen (VGG has
    no dropout or batch-norm in ``features``, so train/eval mode does not
    matter).  Input: ImageNet-normalised (B, 3, H, W).
    """

    def __init__(self, arch: str, taps: Mapping[str, int]):
        super().__init__()
        self.arch = arch
        self.taps = dict(taps)
        # ReLUs are not in-place so a tapped conv output is never overwritten.
        self.features = make_features(arch, max(self.taps.values()) + 1, inplace=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = {i: name for name, i in self.taps.items()}
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


#: Taps used by the losses: L_f on VGG-19 relu3_2; L_style on VGG-16 pool1-3.
FEATURE_TAPS = {"relu3_2": 13}
STYLE_TAPS = {"pool1": 4, "pool2": 9, "pool3": 16}


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] RGB -> ImageNet-normalised: x01 = (x + 1) / 2, then
    (x01 - mean) / std per channel."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x + 1) * 0.5 - mean) / std


class VGGWeightsMissing(OccfaceError, FileNotFoundError):
    """No VGG weights were found at any of the places the caller allowed."""


class VGGWeightsCorrupt(OccfaceError, ValueError):
    """A VGG weight file's SHA-256 does not match its published prefix."""


def _missing_message(arch: str, tried: list[str]) -> str:
    return (f"No {arch} ImageNet weights found (tried: {'; '.join(tried) or 'nothing'}); needed: "
            f"torchvision's {VGG_FILES[arch]} in torch hub's cache (<hub dir>/checkpoints/), a "
            f"state-dict file with torchvision's keys, or permission to download {VGG_URLS[arch]}; "
            "the losses without L_f and L_style need no VGG")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256_prefix(path: str | os.PathLike, prefix: str) -> str:
    """The file's SHA-256 when it starts with ``prefix``; else :class:`VGGWeightsCorrupt`."""
    digest = sha256_file(path)
    if not digest.startswith(prefix.lower()):
        raise VGGWeightsCorrupt(f"{path}: SHA-256 {digest[:16]}... does not start with the published "
                                f"prefix {prefix}; the file is corrupt or not the published one")
    return digest


def download_vgg(arch: str, hub_dir: str | os.PathLike, *, url: str | None = None,
                 sha256_prefix: str | None = None) -> Path:
    """Fetch ``arch``'s published weights into ``hub_dir/checkpoints/<standard file>`` and
    return that path.  The bytes go to a temporary file beside it; only when their SHA-256
    starts with the published prefix (``VGG_SHA256_PREFIXES``) is the file renamed into
    place, so the cache never holds a partial or corrupt file.  ``url`` / ``sha256_prefix``
    default to the published ones (any URL ``urllib`` opens, e.g. a ``file://`` mirror)."""
    import urllib.request

    url = url or VGG_URLS[arch]
    prefix = sha256_prefix or VGG_SHA256_PREFIXES[arch]
    dst = Path(hub_dir) / "checkpoints" / VGG_FILES[arch]
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url) as src:  # noqa: S310 - URL is the caller's
            shutil.copyfileobj(src, out, 1 << 20)
        check_sha256_prefix(tmp, prefix)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dst


def load_vgg_state_dict(arch: str, *, path: str | os.PathLike | None = None,
                        hub_dir: str | os.PathLike | None = None,
                        allow_download: bool = False) -> dict[str, torch.Tensor]:
    """Read a torchvision-layout ``arch`` state dict, trying in order:
    ``path`` (a file, or a directory holding the standard file name);
    ``hub_dir/checkpoints/<standard file>``; the standard URL (only if
    ``allow_download``, into ``hub_dir``'s cache, hash-checked by
    :func:`download_vgg`).  Always ``torch.load(..., weights_only=True)``.
    Raises :class:`VGGWeightsMissing` saying where it looked when nothing is
    found, :class:`VGGWeightsCorrupt` when a download fails its hash check."""
    if arch not in VGG_URLS:
        raise ValueError(f"arch must be one of {sorted(VGG_URLS)}, got {arch!r}")
    tried = []
    if path is not None:
        p = Path(path)
        if p.is_dir():
            p = p / VGG_FILES[arch]
        if p.is_file():
            return torch.load(p, map_location="cpu", weights_only=True)
        tried.append(f"path {p}")
    if hub_dir is not None:
        p = Path(hub_dir) / "checkpoints" / VGG_FILES[arch]
        if p.is_file():
            return torch.load(p, map_location="cpu", weights_only=True)
        tried.append(f"hub cache {p}")
    if allow_download:
        if hub_dir is None:
            raise ValueError("allow_download needs hub_dir: the cache the file is saved into")
        try:
            p = download_vgg(arch, hub_dir)
        except OSError as exc:  # no network, DNS failure, HTTP error
            tried.append(f"download {VGG_URLS[arch]} ({exc})")
        else:
            return torch.load(p, map_location="cpu", weights_only=True)
    raise VGGWeightsMissing(_missing_message(arch, tried))


def load_vgg(arch: str, taps: Mapping[str, int], *, path=None, hub_dir=None,
             allow_download: bool = False,
             state_dict: Mapping[str, torch.Tensor] | None = None) -> VGGFeatures:
    """A frozen :class:`VGGFeatures` with ImageNet weights.  Weights come
    from ``state_dict`` if given, else from :func:`load_vgg_state_dict`.
    Every parameter of the truncated stack must be present with the right
    shape (extra keys, e.g. the classifier, are ignored)."""
    model = VGGFeatures(arch, taps)
    if state_dict is None:
        state_dict = load_vgg_state_dict(arch, path=path, hub_dir=hub_dir,
                                         allow_download=allow_download)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    wrong = [k for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or wrong:
        raise ValueError(f"{arch} state dict does not fit torchvision's layout: "
                         f"missing {missing[:4]}, wrong shape {wrong[:4]}")
    model.load_state_dict({k: state_dict[k] for k in own})
    return model
