"""Occlusion masks on the 128x128 HR face.  Convention: 1 = missing.

Every kind is a frozen dataclass *spec* (:mod:`.specs`), sampled into JSON-able params
with an explicit generator and rendered from those params by a pure function
(:mod:`.sample`).  The build stores the params (and :func:`hole_ratio`) with each sample,
so every mask can be rebuilt exactly from them, or from ``(seed, key)`` via
:func:`mask_for` (``occface.seeding.rng_for(seed, key, "mask")``).

=================  ================  ============================================
spec               params kind       what
=================  ================  ============================================
``SquareMask``     ``square``        square, side in [min, max] (m1..m5 presets)
``PConvMask``      ``pconv``         PConv-style lines, filled circles, arcs (:mod:`.strokes`)
``BucketMask``     ``pconv_bucket``  same strokes, hole ratio inside a PConv bucket
``LamaMask``       ``lama``          LaMa-style strokes, thin / medium / thick
``PartMask``       ``part``          facial part from the face's own landmarks (:mod:`.parts`)
``QuadrantMask``   ``quadrant``      one image quadrant (OFHNet)
``MixtureMask``    (component's)     weighted mixture of the above
``BundledSet``     ``bundled``       a mask from a bundled evaluation set (:mod:`.sets`)
``OccluderMask``   ``occluder``      an object drawn over the face (:mod:`.occluders`);
                                     composited, mask = alpha > 0.5
=================  ================  ============================================

PConv buckets are numbered 1..6: (0.01, 0.1], (0.1, 0.2], ... (0.5, 0.6].
Border-constrained masks leave a ``size // 16`` px frame (8 px at 128) free.
``docs/masks.md`` has the details and the ranges the tests enforce.
"""

from __future__ import annotations

from . import occluders
from .sample import (RENDERERS, SAMPLERS, bucket_of, hole_ratio, is_occluder, mask_for, render, sample_mask,
                     sample_occlusion, sample_params)
from .sets import MaskSet, bundled_names, load_set
from .specs import (FCSR_GAN_OCCLUSIONS, OCCLUDER_WEIGHTS, PARTS, PRESETS, QUADRANTS, SPEC_TYPES, SQUARE_SIZES,
                    BucketMask, BundledSet, LamaMask, MaskSpec, MixtureMask, OccluderMask, PartMask, PConvMask,
                    QuadrantMask, SquareMask, from_text, spec_from_dict, spec_from_name, spec_to_dict)
from .strokes import BUCKET_EDGES, N_BUCKETS, border_margin, bucket_counts, bucket_of_count

__all__ = [
    "SquareMask", "PConvMask", "BucketMask", "LamaMask", "PartMask", "QuadrantMask", "MixtureMask", "BundledSet",
    "OccluderMask", "OCCLUDER_WEIGHTS", "occluders", "sample_occlusion", "is_occluder",
    "MaskSpec", "SPEC_TYPES", "PRESETS", "SQUARE_SIZES", "QUADRANTS", "PARTS", "FCSR_GAN_OCCLUSIONS",
    "spec_from_name", "spec_from_dict", "spec_to_dict", "from_text",
    "sample_params", "render", "sample_mask", "mask_for", "hole_ratio", "bucket_of", "SAMPLERS", "RENDERERS",
    "MaskSet", "load_set", "bundled_names",
    "BUCKET_EDGES", "N_BUCKETS", "border_margin", "bucket_counts", "bucket_of_count",
]
