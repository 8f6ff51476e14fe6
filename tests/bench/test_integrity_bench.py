"""``occface bench integrity`` runs on real photos and reports every part per photo."""

from __future__ import annotations

import math

from PIL import Image

from occface.bench import integrity
from tests.db._faces import lfw_face


def test_the_integrity_benchmark_reports_every_part(tmp_path):
    root = tmp_path / "photos"
    for i in range(4):
        (root / f"p{i}").mkdir(parents=True)
        Image.fromarray(lfw_face(i)).save(root / f"p{i}" / f"f{i}.jpg", quality=90)
    res = integrity.run(str(root), limit=4, rounds=1, log=lambda s: None)
    parts = res["cpu_us_per_photo"]
    assert res["photos"] == 4 and set(parts) == {"listing_before", "listing_walk", "duplicates", "fingerprints",
                                                 "imdecode_plain", "imdecode_strict", "pipeline"}
    assert all(math.isfinite(v) and v >= 0 for v in parts.values())
    assert parts["pipeline"] > parts["imdecode_strict"] > 0
    assert math.isfinite(res["added_fraction_of_pipeline"])
