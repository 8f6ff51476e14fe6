"""Cross-modal attention (CM-AM, paper §III-C) and its two attention kernels.

Notation: Q, K are (B, N, d) and V is (B, N, C) with N = H·W positions.
Both kernels return sum_j A[i, j] V[j] for every query position i:

* cosine (paper, Eq. 1): A = CM = <Q/|Q|, K/|K|>, no softmax.  Because the
  kernel is linear, CM·V = Q̂ (K̂ᵀ V) exactly; the right-hand side costs
  O(N·d·C) and never builds the N x N matrix.  With ``scale="mean"`` the
  result is divided by N.
* softmax (public code): A = softmax(Q Kᵀ) over keys, unscaled (scale 1.0),
  computed by ``torch.nn.functional.scaled_dot_product_attention`` so fused
  kernels are used where PyTorch has them.

``*_naive`` versions build A explicitly; they are the references in the tests
and the baseline in ``occface bench model``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-6


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1, eps=_EPS)


def cosine_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     scale: str = "mean") -> torch.Tensor:
    """CM·V with CM the cosine-similarity matrix, as Q̂ (K̂ᵀ V)."""
    kv = torch.matmul(_normalise(k).transpose(-2, -1), v)  # (B, d, C)
    out = torch.matmul(_normalise(q), kv)                   # (B, N, C)
    return out / k.shape[-2] if scale == "mean" else out


def cosine_attention_naive(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           scale: str = "mean") -> torch.Tensor:
    """Reference: builds the N x N cosine matrix, then multiplies."""
    cm = torch.matmul(_normalise(q), _normalise(k).transpose(-2, -1))  # (B, N, N)
    out = torch.matmul(cm, v)
    return out / k.shape[-2] if scale == "mean" else out


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ) V without the 1/sqrt(d) factor, via the fused SDPA op.

    Fused kernels need one head size for Q, K and V; when d != C the smaller
    side is zero-padded.  Zero channels add nothing to Q Kᵀ and produce zero
    output channels, which are sliced off, so the result is exact."""
    d, c = q.shape[-1], v.shape[-1]
    if d < c:
        q, k = F.pad(q, (0, c - d)), F.pad(k, (0, c - d))
    elif c < d:
        v = F.pad(v, (0, d - c))
    out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1),
                                         scale=1.0).squeeze(1)
    return out[..., :c]


def softmax_attention_naive(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Reference: explicit N x N logits, softmax over keys, then multiply."""
    return torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-2, -1)), dim=-1), v)


def attend(kind: str, q, k, v, *, cosine_scale: str = "mean", naive: bool = False):
    """Dispatch on the attention kind ("cosine" or "softmax")."""
    if kind == "cosine":
        fn = cosine_attention_naive if naive else cosine_attention
        return fn(q, k, v, scale=cosine_scale)
    if kind == "softmax":
        return (softmax_attention_naive if naive else softmax_attention)(q, k, v)
    raise ValueError(f"unknown attention kind {kind!r}")


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H·W, C); a view when x is channels_last."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def from_tokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H·W, C) -> (B, C, H, W) in channels_last layout (no copy)."""
    b, _, c = t.shape
    return t.reshape(b, h, w, c).permute(0, 3, 1, 2)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    """3x3 convolution, padding 1 (size-preserving)."""
    return nn.Conv2d(cin, cout, 3, padding=1)


class CrossModalAttention(nn.Module):
    """CM-AM, Eq. 2:

        F_P = [Conv(Conv(F_C))^R · CM]^R + F_L   (facial geometry prior)
        F_A = [Conv(Conv(F_L))^R · CMᵀ]^R + F_C  (facial appearance)

    with Q = F_L (landmark features) and K = F_C (face features).  F_P reads
    face values at landmark-query positions; F_A reads landmark values at
    face positions through the transposed matrix (for the cosine kernel CMᵀ
    is the cosine matrix with the roles swapped; for softmax the transposed
    logits are normalised over their own key axis).  Both inputs and outputs
    are (B, width, H, W).  "Conv(Conv(.))" is two 3x3 convolutions with a
    ReLU between them.
    """

    def __init__(self, width: int, kind: str = "cosine", qk_dim: int | None = None,
                 cosine_scale: str = "mean"):
        super().__init__()
        self.kind = kind
        self.cosine_scale = cosine_scale
        self.naive = False  # benchmark switch: build the N x N matrix explicitly
        self.value_c = nn.Sequential(conv3x3(width, width), nn.ReLU(inplace=True),
                                     conv3x3(width, width))
        self.value_l = nn.Sequential(conv3x3(width, width), nn.ReLU(inplace=True),
                                     conv3x3(width, width))
        if qk_dim is None:
            self.proj_q = self.proj_k = None
        else:
            self.proj_q = nn.Conv2d(width, qk_dim, 1)
            self.proj_k = nn.Conv2d(width, qk_dim, 1)

    def forward(self, f_c: torch.Tensor, f_l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = f_c.shape[-2:]
        q = to_tokens(f_l if self.proj_q is None else self.proj_q(f_l))
        k = to_tokens(f_c if self.proj_k is None else self.proj_k(f_c))
        v_c = to_tokens(self.value_c(f_c))
        v_l = to_tokens(self.value_l(f_l))
        opts = dict(cosine_scale=self.cosine_scale, naive=self.naive)
        f_p = from_tokens(attend(self.kind, q, k, v_c, **opts), h, w) + f_l
        f_a = from_tokens(attend(self.kind, k, q, v_l, **opts), h, w) + f_c
        return f_p, f_a
