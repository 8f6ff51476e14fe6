"""The training-side loader (occface.data) on a real build: real faces, real HDF5, real DataLoader workers."""

import json
import os
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from occface import build as B
from occface import data as D
from occface import degrade, masks
from occface.faces import heatmaps, resize
from occface.build import BuildConfig
from occface.data import convert, store
from occface.db import SampleSource
from occface.faces.occlude import FillConfig, apply_fill, occlude, sample_fill
from occface.seeding import rng_for

STORED = ("fhc4@64", "pu7@16")
PRO_UIGAN = ("pu7@16", "pu42@32", "all68@64")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The sample database (real LFW faces + astronaut), 3 shards, two heatmap sets stored, noise fill."""
    out = str(tmp_path_factory.mktemp("data") / "build")
    cfg = BuildConfig(heatmaps=STORED, shard_size=40, fill=FillConfig(mode="noise"), seed=7)
    B.build(SampleSource(), cfg, out, workers=1, progress=False, log=lambda s: None)
    return out


def raw(build_dir, key):
    """The stored arrays of the sample ``key``, read with plain h5py."""
    for fn in sorted(os.listdir(os.path.join(build_dir, "shards"))):
        with h5py.File(os.path.join(build_dir, "shards", fn), "r") as f:
            keys = list(f["meta/key"].asstr()[...])
            if key in keys:
                r = keys.index(key)
                out = {n: f[n][r] for n in ("hr", "hr_occluded", "mask", "lr", "lr_clean", "landmarks")}
                out.update({s: f[f"heatmaps/{s}"][r] for s in STORED})
                out["config"] = f.attrs["config"]
                return out
    raise KeyError(key)


def assert_items_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            assert_items_equal(x, y)
        elif isinstance(x, (np.ndarray, torch.Tensor)):
            x = x.numpy() if isinstance(x, torch.Tensor) else x
            y = y.numpy() if isinstance(y, torch.Tensor) else y
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), k
        else:
            assert x == y, k


def chw(img_hwc):
    return img_hwc.transpose(2, 0, 1)


# ----------------------------------------------------------------------------- items

@pytest.mark.parametrize("value_range", D.RANGES)
def test_item_shapes_dtypes_and_ranges(built, value_range):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED + ("all68@32",), range=value_range,
                                            lr_clean=True))
    lo = 0.0 if value_range == "[0,1]" else -1.0
    for i in (0, 17, len(r) - 1):
        it = r[i]
        assert it["lr"].shape == it["lr_clean"].shape == (3, 16, 16)
        assert it["hr"].shape == it["hr_occluded"].shape == (3, 128, 128)
        assert it["mask"].shape == (1, 128, 128) and it["landmarks"].shape == (68, 2)
        assert {k: v.shape for k, v in it["heatmaps"].items()} == {
            "fhc4@64": (4, 64, 64), "pu7@16": (7, 16, 16), "all68@32": (68, 32, 32)}
        for k in ("lr", "lr_clean", "hr", "hr_occluded", "mask", "landmarks", *(f"hm{s}" for s in it["heatmaps"])):
            arr = it["heatmaps"][k[2:]] if k.startswith("hm") else it[k]
            assert arr.dtype == np.float32, k
        for k in ("lr", "lr_clean", "hr", "hr_occluded"):
            assert lo <= it[k].min() and it[k].max() <= 1.0, k
        assert set(np.unique(it["mask"])) <= {0.0, 1.0}
        for hm in it["heatmaps"].values():
            assert 0.0 <= hm.min() and hm.max() <= 1.0
        assert ((it["landmarks"] > -20) & (it["landmarks"] < 148)).all()
        assert isinstance(it["key"], str) and it["index"] == i and it["split"] in ("train", "test")
        assert it["mask_kind"] == "square" and it["hole_ratio"] == pytest.approx(it["mask"].mean(), abs=1e-6)

        # the documented normalisation of exactly the stored bytes
        s = raw(built, it["key"])
        scale = np.float32(1 / 255) if value_range == "[0,1]" else np.float32(1 / 127.5)
        for k in ("hr", "hr_occluded", "lr", "lr_clean"):
            want = chw(s[k]).astype(np.float32) * scale
            if value_range == "[-1,1]":
                want -= np.float32(1)
            assert np.array_equal(it[k], want), k
        assert np.array_equal(it["mask"][0], s["mask"].astype(np.float32))
        assert np.array_equal(it["landmarks"], s["landmarks"])
        for spec in STORED:  # auto: read from the shard
            assert np.array_equal(it["heatmaps"][spec], s[spec].astype(np.float32) * np.float32(1 / 255))
    # ends of the range are exact
    x = np.array([[[0, 255, 128]]], np.uint8)
    assert convert.image_planes(x, np.float32, *convert.SCALE[value_range])[:, 0, 0].tolist()[:2] == [lo, 1.0]


def test_uint8_items_turn_into_the_float_items_exactly(built):
    for value_range in D.RANGES:
        cfg = D.LoaderConfig(split=None, heatmaps=STORED, range=value_range, lr_clean=True)
        f = D.ShardReader(built, cfg).get_batch(range(0, 90, 7))
        u8 = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED, range=value_range, lr_clean=True,
                                                 dtype="uint8")).get_batch(range(0, 90, 7))
        assert u8["hr"].dtype == u8["mask"].dtype == u8["heatmaps"]["fhc4@64"].dtype == np.uint8
        assert_items_equal(D.to_float(u8, value_range), f)
        assert_items_equal(D.to_float(D.as_torch(u8), value_range), D.as_torch(f))  # torch path, same bits
    # uint8 heatmaps rendered on the fly are the bytes the build stored
    rendered = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED, heatmap_source="render", dtype="uint8"))
    for i in range(0, len(rendered), 10):
        it = rendered[i]
        s = raw(built, it["key"])
        for spec in STORED:
            assert np.array_equal(it["heatmaps"][spec], s[spec]), spec


def test_batches_equal_stacked_items(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED))
    idx = [5, 0, 33, 5]
    batch = r.get_batch(idx)
    assert_items_equal(batch, D.collate_numpy([r[i] for i in idx]))
    assert batch["hr"].shape == (4, 3, 128, 128) and batch["index"] == idx


# ----------------------------------------------------------------------------- batched fetch

BATCH_CONFIGS = [
    dict(heatmaps=STORED),
    dict(heatmaps=STORED, dtype="uint8"),
    dict(heatmaps=STORED + ("pu42@32",), dtype="uint8", memory_format="channels_last", lr_clean=True),
    dict(heatmaps=("all68@32", "fhc4@64"), range="[0,1]", memory_format="channels_last", lr_clean=True),
    dict(heatmaps=STORED, heatmap_source="render", dtype="uint8"),
    dict(heatmaps=("pu7@16",), remask=masks.SquareMask(8, 40), dtype="uint8"),
    dict(heatmaps=(), remask="build", memory_format="channels_last"),
    dict(heatmaps=(), redegrade="gfpgan", dtype="uint8"),
    dict(heatmaps=("pu7@16",), remask=masks.PRESETS["occluders"], redegrade="heavy", memory_format="channels_last"),
]


@pytest.mark.parametrize("kw", BATCH_CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_batched_fetch_equals_the_per_item_path(built, kw):
    cfg = D.LoaderConfig(split=None, **kw)
    r = D.ShardReader(built, cfg)
    idx = [7, 0, len(r) - 1, 41, 7, -2, 80, 81, 82, 3]  # several shards, a repeat, a negative index
    # numpy: get_batch == stacked get_item
    batch = r.get_batch(idx, epoch=2)
    assert_items_equal(batch, D.collate_numpy([r.get_item(i, 2) for i in idx]))
    if cfg.memory_format == "channels_last":
        for k in ("hr", "lr"):  # (B, 3, H, W), channels innermost
            assert batch[k].strides[1] == batch[k].itemsize and batch[k].strides[3] == 3 * batch[k].itemsize
    # torch: __getitems__ + collate == default_collate of ds[i]
    from torch.utils.data import default_collate

    ds = D.ShardDataset(r)
    ds.set_epoch(2)
    want = default_collate([ds[i] for i in idx])
    got = D.collate(ds.__getitems__(idx))
    assert_items_equal(got, want)
    assert got["index"].dtype == torch.int64 and got["hole_ratio"].dtype == torch.float64
    if cfg.memory_format == "channels_last":
        assert got["hr"].is_contiguous(memory_format=torch.channels_last)
    else:
        assert all(t.is_contiguous() for t in (got["hr"], got["lr"], got["mask"], *got["heatmaps"].values()))
    # the items of __getitems__ are the items, for any other collate_fn
    assert_items_equal(default_collate(ds.__getitems__(idx)), want)
    assert_items_equal(ds.__getitems__(idx)[3], ds[41])
    with pytest.raises(IndexError):
        r.get_batch([0, len(r)])


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_batched_dataloader_with_workers_equals_num_workers_0(built):
    cfg = D.LoaderConfig(split=None, heatmaps=STORED, dtype="uint8", remask=masks.SquareMask(),
                         memory_format="channels_last")
    ds = D.ShardDataset(built, cfg)

    class PerItem(torch.utils.data.Dataset):  # the same items without __getitems__
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    sampler = D.ShardSampler(ds, seed=4, shuffle=True)
    loaders = {
        "items": DataLoader(PerItem(), batch_size=24, sampler=sampler),
        "batched": DataLoader(ds, batch_size=24, sampler=sampler, collate_fn=D.collate),
        "batched, 2 workers": DataLoader(ds, batch_size=24, sampler=sampler, collate_fn=D.collate, num_workers=2,
                                         persistent_workers=True),
    }
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        runs = {name: list(loader) for name, loader in loaders.items()}
        assert sum(len(b["key"]) for b in runs["batched, 2 workers"]) == len(ds)
        for a, b, c in zip(*runs.values(), strict=True):
            assert_items_equal(b, a)
            assert_items_equal(c, a)
            assert c["hr"].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_batches_from_workers_travel_in_one_shared_segment(built):
    ds = D.ShardDataset(built, D.LoaderConfig(split=None, heatmaps=STORED, dtype="uint8"))
    loader = DataLoader(ds, batch_size=3, sampler=[3, 1, 2], collate_fn=_collate_noting_shm, num_workers=1)
    (b,) = list(loader)
    assert b.pop("made_in_shm")  # allocated in shared memory in the worker, not copied there when sent
    tensors = [b["hr"], b["lr"], b["mask"], b["landmarks"], b["index"], *b["heatmaps"].values()]
    assert len({t.untyped_storage().data_ptr() for t in tensors}) == 1  # one segment for the whole batch
    assert_items_equal(b, ds.get_batch([3, 1, 2]))


def _collate_noting_shm(items):
    b = D.collate(items)
    return {**b, "made_in_shm": b["hr"].is_shared()}


@pytest.mark.parametrize("memory_format", D.MEMORY_FORMATS)
def test_to_float_of_a_uint8_batch_is_the_float32_batch(built, memory_format):
    idx = [9, 2, 55, 30]
    for value_range in D.RANGES:
        kw = dict(split=None, heatmaps=STORED, range=value_range, lr_clean=True, memory_format=memory_format)
        f32 = D.ShardDataset(built, D.LoaderConfig(**kw))
        u8 = D.ShardDataset(built, D.LoaderConfig(**kw, dtype="uint8"))
        bu, bf = D.collate(u8.__getitems__(idx)), D.collate(f32.__getitems__(idx))
        assert bu["hr"].dtype == bu["mask"].dtype == bu["heatmaps"]["fhc4@64"].dtype == torch.uint8
        for got in (D.to_float(bu, value_range), D.to_float(bu, value_range, device="cpu", non_blocking=True)):
            assert_items_equal(got, bf)
            assert got["hr"].is_contiguous(memory_format=torch.channels_last) == (memory_format == "channels_last")
        assert_items_equal(D.to_float(D.to_float(bu, value_range), value_range), bf)  # float input passes through
        assert_items_equal(D.to_float(u8.reader.get_batch(idx), value_range), f32.reader.get_batch(idx))  # numpy


# ----------------------------------------------------------------------------- heatmaps

@pytest.mark.parametrize("spec", ["pu7@16", "pu42@32", "all68@64", "all68@16", "all68@128", "fhc4@64", "parts5@32"])
def test_heatmap_peaks_sit_on_the_landmarks(built, spec):
    grouping, size = heatmaps.parse_spec(spec)
    sources = ["render", "auto"] if spec in STORED else ["render"]
    for source in sources:
        r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=(spec,), heatmap_source=source))
        checked = 0
        for i in range(0, len(r), 9):
            it = r[i]
            hm = it["heatmaps"][spec]
            pts = (it["landmarks"].astype(np.float64) + 0.5) * size / 128 - 0.5  # landmark in heatmap pixels
            for c, members in enumerate(heatmaps.GROUPINGS[grouping]):
                p = pts[members]
                inside = ((p > 0.01) & (p < size - 1.01)).all(axis=1)
                if not inside.any():
                    continue
                y, x = np.unravel_index(np.argmax(hm[c]), hm[c].shape)
                # the brightest pixel is the pixel under one of the channel's landmarks (stored maps are
                # quantised to 1/255, which can tie two pixels when a landmark sits 0.005 px off a border)
                tol = 0.5 + (1e-6 if source == "render" else 0.01)
                assert ((np.abs(p[:, 0] - x) <= tol) & (np.abs(p[:, 1] - y) <= tol)).any(), (spec, source, c)
                if len(members) == 1:
                    px, py = p[0]
                    assert hm[c].max() == pytest.approx(np.exp(-((px - x) ** 2 + (py - y) ** 2) / 2), abs=2 / 255)
                checked += 1
        assert checked > 10


def test_fast_renderer_is_bit_identical_to_occface_heatmaps(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=()))
    lms = [r[i]["landmarks"] for i in range(0, len(r), 11)] + [np.full((68, 2), -40.0, np.float32)]
    for grouping in heatmaps.GROUPINGS:
        for size, sigma in ((16, 1.0), (32, 1.0), (64, 1.0), (64, 2.5), (128, 0.7)):
            for lm in lms:
                want = heatmaps.render(lm, grouping, size, sigma)
                got = heatmaps.render(lm, grouping, size, sigma)
                assert got.dtype == want.dtype and np.array_equal(got, want), (grouping, size, sigma)


def test_torch_renderer_equals_occface_heatmaps(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=()))
    rng = np.random.default_rng(1)
    lms = np.stack([r[i]["landmarks"] for i in range(0, len(r), 9)]
                   + [rng.uniform(-30, 160, (68, 2)).astype(np.float32) for _ in range(3)]
                   + [np.full((68, 2), -40.0, np.float32), np.full((68, 2), 63.75, np.float32)])
    worst = 0.0
    for grouping in heatmaps.GROUPINGS:
        for size, sigma in ((16, 1.0), (32, 1.0), (64, 1.0), (64, 2.5), (128, 0.7)):
            got = heatmaps.render_torch(torch.from_numpy(lms), grouping, size, sigma)
            want = np.stack([heatmaps.render(lm, grouping, size, sigma) for lm in lms])
            assert got.dtype == torch.float32 and got.shape == want.shape, (grouping, size)
            worst = max(worst, float(np.abs(got.numpy() - want).max()))
            one = heatmaps.render_torch(torch.from_numpy(lms[0]), grouping, size, sigma)  # a single face
            assert torch.equal(one, got[0])
    assert worst <= 1e-6
    # add_heatmaps: the landmarks-only batch gains the rendered maps; sigma defaults to the build's
    ds = D.ShardDataset(built, D.LoaderConfig(split=None, heatmaps=("fhc4@64",), dtype="uint8"))
    b = D.collate(ds.__getitems__([0, 5, 9]))
    out = D.add_heatmaps(b, D.PRO_UIGAN, sigma=ds.reader.heatmap_sigma)
    assert ds.reader.heatmap_sigma == 1.0 and set(out["heatmaps"]) == {"fhc4@64", "pu7@16", "pu42@32", "all68@64"}
    assert out["heatmaps"]["fhc4@64"] is b["heatmaps"]["fhc4@64"] and set(b["heatmaps"]) == {"fhc4@64"}
    assert torch.equal(out["heatmaps"]["all68@64"], heatmaps.render_torch(b["landmarks"], "all68", 64, 1.0))


def test_uint8_renderer_is_bit_identical_to_quantised_occface_heatmaps(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=()))
    rng = np.random.default_rng(0)
    lms = [r[i]["landmarks"] for i in range(0, len(r), 25)]
    lms += [rng.uniform(-30, 160, (68, 2)).astype(np.float32) for _ in range(3)] + [np.full((68, 2), 63.75, np.float32)]
    for grouping in heatmaps.GROUPINGS:
        for size, sigma in ((16, 1.0), (32, 1.0), (64, 1.0), (64, 3.3), (128, 0.5)):
            for lm in lms:
                want = heatmaps.to_uint8(heatmaps.render(lm, grouping, size, sigma))
                assert np.array_equal(heatmaps.render_uint8(lm, grouping, size, sigma), want), (grouping, size)


def test_stored_heatmaps_are_the_rendered_ones_quantised(built):
    auto = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED))
    rend = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED, heatmap_source="render"))
    for i in range(0, len(auto), 13):
        for spec in STORED:
            a, b = auto[i]["heatmaps"][spec], rend[i]["heatmaps"][spec]
            assert np.abs(a - b).max() <= 0.5 / 255 + 1e-6
            assert not np.array_equal(a, b)  # really two sources
    with pytest.raises(D.DataError):
        D.ShardReader(built, D.LoaderConfig(heatmaps=("all68@64",), heatmap_source="stored"))
    # another sigma than the build's is rendered, never read
    wide = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=("fhc4@64",), heatmap_sigma=2.0))[0]
    assert np.array_equal(wide["heatmaps"]["fhc4@64"], heatmaps.render(wide["landmarks"], "fhc4", 64, 2.0))


# ----------------------------------------------------------------------------- workers, numpy == torch

@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_num_workers_0_and_2_give_the_same_items(built):
    ds = D.ShardDataset(built, D.LoaderConfig(split=None, heatmaps=STORED + ("pu42@32",), remask=masks.SquareMask()))
    ds.reader[0]  # open a handle in the parent: workers must not reuse it
    sampler = D.ShardSampler(ds, seed=3, shuffle=True)
    loaders = {w: DataLoader(ds, batch_size=16, sampler=sampler, num_workers=w, persistent_workers=w > 0)
               for w in (0, 2)}
    masks_by_epoch = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)  # reaches the dataset, and through shared memory the persistent workers
        runs = {w: list(loader) for w, loader in loaders.items()}
        assert sum(len(b["key"]) for b in runs[2]) == len(ds)
        for b0, b2 in zip(runs[0], runs[2], strict=True):
            assert_items_equal(b0, b2)
        masks_by_epoch.append({k: m for b in runs[2] for k, m in zip(b["key"], b["mask"])})
    # the workers re-masked for epoch 1 (a worker stuck on epoch 0 would have failed above too)
    assert sum(not torch.equal(m, masks_by_epoch[1][k]) for k, m in masks_by_epoch[0].items()) > len(ds) // 2


def test_collate_gives_the_default_collate_batch(built):
    from torch.utils.data import default_collate

    for dtype in D.DTYPES:
        ds = D.ShardDataset(built, D.LoaderConfig(split=None, heatmaps=STORED, dtype=dtype))
        items = [ds[i] for i in (4, 9, 2)]
        a, b = default_collate(items), D.collate(items)
        assert a["index"].dtype == b["index"].dtype == torch.int64
        assert a["hole_ratio"].dtype == b["hole_ratio"].dtype == torch.float64
        assert_items_equal(a, b)


def test_numpy_iterator_gives_the_torch_items(built):
    cfg = D.LoaderConfig(split="train", heatmaps=("pu7@16",), remask="build")
    ds = D.ShardDataset(built, cfg)
    ds.set_epoch(2)
    sampler = D.ShardSampler(ds, seed=5, rank=1, world_size=3)
    sampler.set_epoch(2)
    torch_items = [ds[i] for i in sampler]
    np_items = list(D.iterate_numpy(built, cfg, seed=5, epoch=2, rank=1, world_size=3))
    assert len(np_items) == len(torch_items) > 0
    for a, b in zip(np_items, torch_items, strict=True):
        assert isinstance(b["hr"], torch.Tensor) and isinstance(a["hr"], np.ndarray)
        assert_items_equal(a, b)


def test_numpy_path_works_without_torch(built):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "import occface.data as D\n"
        f"items = list(D.iterate_numpy({built!r}, D.LoaderConfig(heatmaps=('pu7@16',)), batch_size=8))\n"
        "assert items and items[0]['hr'].shape[1:] == (3, 128, 128)\n"
        "print(sum(len(b['key']) for b in items))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == len(D.ShardReader(built, D.LoaderConfig()))


def test_handles_are_per_process_and_never_pickled(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=()))
    a = r[3]
    assert r._open
    clone = pickle.loads(pickle.dumps(r))
    assert clone._open == {}
    assert_items_equal(clone[3], a)
    # in a forked child the inherited handles are dropped and the child opens its own
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        ok = r._pid != store.PROCESS[0] and np.array_equal(r[3]["hr"], a["hr"]) and r._pid == store.PROCESS[0]
        os.write(wfd, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(rfd, 1) == b"1"


# ----------------------------------------------------------------------------- order / DDP

@pytest.mark.parametrize("n", [0, 1, 7, 100, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_ddp_partition_covers_every_sample_exactly_once(n, world):
    for shuffle in (False, True):
        parts = [D.epoch_order(n, seed=1, epoch=4, rank=r, world_size=world, shuffle=shuffle) for r in range(world)]
        everything = np.concatenate(parts)
        assert sorted(everything.tolist()) == list(range(n))  # exactly once
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        dropped = [D.epoch_order(n, seed=1, epoch=4, rank=r, world_size=world, shuffle=shuffle, drop_last=True)
                   for r in range(world)]
        assert {len(p) for p in dropped} == {n // world}
        assert len(set(np.concatenate(dropped).tolist())) == world * (n // world)  # never twice
        padded = [D.epoch_order(n, seed=1, epoch=4, rank=r, world_size=world, shuffle=shuffle, pad=True)
                  for r in range(world)]
        assert len({len(p) for p in padded}) == 1
        flat = np.concatenate(padded).tolist()
        assert set(flat) == set(range(n)) and len(flat) - n == ((-n) % world if n else 0)
        sampler = D.ShardSampler(n, seed=1, rank=world - 1, world_size=world, shuffle=shuffle)
        sampler.set_epoch(4)
        assert list(sampler) == parts[-1].tolist() and len(sampler) == len(parts[-1])


def test_ddp_ranks_see_disjoint_samples_of_a_real_build(built):
    cfg = D.LoaderConfig(split=None, heatmaps=())
    keys = [k for r in range(3)
            for k in (b for batch in D.iterate_numpy(built, cfg, seed=2, rank=r, world_size=3, batch_size=32)
                      for b in batch["key"])]
    assert sorted(keys) == sorted(D.ShardReader(built, cfg).keys())


def test_shuffle_is_deterministic_and_depends_on_the_epoch():
    a = D.epoch_order(1000, seed=9, epoch=0)
    assert np.array_equal(a, D.epoch_order(1000, seed=9, epoch=0))
    assert np.array_equal(a, np.random.Generator(np.random.PCG64(np.random.SeedSequence([9, 0]))).permutation(1000))
    assert not np.array_equal(a, D.epoch_order(1000, seed=9, epoch=1))
    assert not np.array_equal(a, D.epoch_order(1000, seed=10, epoch=0))
    assert np.array_equal(D.epoch_order(5, shuffle=False), np.arange(5))


# ----------------------------------------------------------------------------- re-masking

@pytest.mark.parametrize("spec", [masks.SquareMask(8, 40), "build"])
def test_remasked_lr_is_the_bilinear_downsample_of_the_remasked_hr(built, spec):
    cfg = D.LoaderConfig(split=None, heatmaps=(), remask=spec, dtype="uint8")
    r = D.ShardReader(built, cfg)
    rule = json.loads(raw(built, r.key(0))["config"])["resize_rule"]
    changed = 0
    for i in range(0, len(r), 5):
        e0, e1 = r.get_item(i, epoch=0), r.get_item(i, epoch=1)
        for it in (e0, e1):
            hr_occ = it["hr_occluded"].transpose(1, 2, 0)
            assert np.array_equal(it["lr"], chw(resize.resize(hr_occ, 16, rule)))
            hole = it["mask"][0].astype(bool)
            assert np.array_equal(it["hr_occluded"][:, ~hole], it["hr"][:, ~hole])  # kept pixels untouched
            assert it["hole_ratio"] == hole.mean()
        # the documented seeding: same recipe, same mask; another epoch, another mask
        want = masks.render(masks.sample_params(masks.SquareMask(8, 40) if spec != "build" else masks.SquareMask(),
                                                rng_for(7, r.key(i), "remask:epoch=1"), e1["landmarks"], 128), 128)
        assert np.array_equal(e1["mask"][0], want)
        fill = sample_fill(FillConfig(mode="noise"), rng_for(7, r.key(i), "remask-fill:epoch=1"))
        assert np.array_equal(e1["hr_occluded"], chw(apply_fill(e1["hr"].transpose(1, 2, 0), want, fill)))
        assert np.array_equal(r.get_item(i, epoch=1)["mask"], e1["mask"])
        changed += not np.array_equal(e0["mask"], e1["mask"])
        stored = raw(built, r.key(i))
        assert np.array_equal(e0["hr"], chw(stored["hr"]))
    assert changed >= 15
    # float items: the same LR, normalised
    f = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=(), remask=spec))
    assert_items_equal(D.to_float(r.get_item(4, epoch=3), "[-1,1]"), f.get_item(4, epoch=3))


# ----------------------------------------------------------------------------- re-degrading, occluders


def test_redegraded_lr_is_the_chain_applied_to_the_stored_occluded_hr(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=(), redegrade="gfpgan", dtype="uint8"))
    changed = 0
    for i in range(0, len(r), 6):
        stored = raw(built, r.key(i))
        e0, e1 = r.get_item(i, epoch=0), r.get_item(i, epoch=1)
        for e, it in ((0, e0), (1, e1)):
            assert np.array_equal(it["hr_occluded"], chw(stored["hr_occluded"]))  # the occlusion is the stored one
            assert np.array_equal(it["mask"][0], stored["mask"])
            params = degrade.sample_params(degrade.GFPGAN, rng_for(7, r.key(i), f"redegrade:epoch={e}"))
            assert np.array_equal(it["lr"], chw(degrade.apply(stored["hr_occluded"], params)))
        changed += not np.array_equal(e0["lr"], e1["lr"])
    assert changed >= 14
    assert D.LoaderConfig(redegrade="light").redegrade == degrade.LIGHT
    assert D.LoaderConfig(redegrade=degrade.spec_to_dict(degrade.HEAVY)).redegrade == degrade.HEAVY
    for bad in ("blurry", 3):
        with pytest.raises(ValueError):
            D.LoaderConfig(redegrade=bad)


def test_remasking_with_occluders_paints_them(built):
    r = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=(), remask=masks.PRESETS["occluders"], dtype="uint8"))
    rule = json.loads(raw(built, r.key(0))["config"])["resize_rule"]
    for i in range(0, len(r), 9):
        it = r.get_item(i, epoch=2)
        params = masks.sample_params(masks.PRESETS["occluders"], rng_for(7, r.key(i), "remask:epoch=2"), it["landmarks"])
        rgb, alpha = masks.occluders.render(params)
        hr = it["hr"].transpose(1, 2, 0)
        assert np.array_equal(it["hr_occluded"], chw(masks.occluders.composite(hr, rgb, alpha)))
        assert np.array_equal(it["mask"][0], masks.occluders.mask_of(alpha)) and it["mask_kind"] == "occluder"
        assert np.array_equal(it["lr"], chw(resize.resize(it["hr_occluded"].transpose(1, 2, 0), 16, rule)))


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    """A small build whose LR and HR input are degraded (``--degrade light --degrade-hr``), face-mask occluders."""
    out = str(tmp_path_factory.mktemp("degraded") / "build")
    cfg = BuildConfig(heatmaps=(), mask=masks.OccluderMask("face_mask"), degrade=degrade.LIGHT, degrade_hr=True, seed=5)
    B.build(SampleSource(lfw_faces=12), cfg, out, workers=1, progress=False, log=lambda s: None)
    return out


def test_degraded_builds_keep_their_draw_or_redraw_it(degraded):
    plain = D.ShardReader(degraded, D.LoaderConfig(split=None, heatmaps=(), dtype="uint8"))
    redeg = D.ShardReader(degraded, D.LoaderConfig(split=None, heatmaps=(), dtype="uint8", redegrade="build"))
    remask = D.ShardReader(degraded, D.LoaderConfig(split=None, heatmaps=(), dtype="uint8", remask=masks.SquareMask()))
    assert len(plain) >= 8
    for i in range(len(plain)):
        path, row = plain.location(i)
        with h5py.File(path, "r") as f:
            params, fill, deg = (json.loads(f[f"meta/{k}"].asstr()[row]) for k in ("mask_params", "fill", "degrade"))
            stored_lr, stored_occ = f["lr"][row], f["hr_occluded"][row]
        item = plain.get_item(i)
        assert np.array_equal(item["lr"], chw(stored_lr)) and np.array_equal(item["hr_occluded"], chw(stored_occ))
        hr = item["hr"].transpose(1, 2, 0)
        clean = occlude(hr, params, fill)
        # redegrade="build": a fresh draw of the build's chain on the rebuilt (undegraded) occluded face
        it = redeg.get_item(i, epoch=3)
        new = degrade.sample_params(degrade.LIGHT, rng_for(5, plain.key(i), "redegrade:epoch=3"))
        assert np.array_equal(it["lr"], chw(degrade.apply(clean, new)))
        assert np.array_equal(it["hr_occluded"], chw(degrade.apply(clean, new, size=128)))
        assert np.array_equal(it["mask"], item["mask"])
        # remask alone: the new mask, degraded with the sample's stored draw
        it = remask.get_item(i, epoch=1)
        occ = apply_fill(hr, it["mask"][0], {"mode": "zeros"})
        assert np.array_equal(it["lr"], chw(degrade.apply(occ, deg)))
        assert np.array_equal(it["hr_occluded"], chw(degrade.apply(occ, deg, size=128)))
    b = redeg.get_batch(list(range(len(redeg))), epoch=3)
    assert_items_equal(b, D.collate_numpy([redeg.get_item(i, 3) for i in range(len(redeg))]))


# ----------------------------------------------------------------------------- sources and splits

def test_splits_and_multiple_sources(built):
    every = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=()))
    train = D.ShardReader(built, D.LoaderConfig(split="train", heatmaps=()))
    test = D.ShardReader(built, D.LoaderConfig(split="test", heatmaps=()))
    assert len(train) + len(test) == len(every) and len(test) > 0
    assert {train[i]["split"] for i in range(len(train))} == {"train"}
    assert not {train.key(i) for i in range(len(train))} & {test.key(i) for i in range(len(test))}
    files = every.shard_paths
    assert len(files) == 3
    two = D.ShardReader([files[2], files[0]], D.LoaderConfig(split=None, heatmaps=()))
    first = D.ShardReader(files[0], D.LoaderConfig(split=None, heatmaps=()))
    assert len(two) == len(D.ShardReader(files[2], D.LoaderConfig(split=None))) + len(first)
    assert_items_equal(two[len(two) - 1], {**first[len(first) - 1], "index": len(two) - 1})
    with pytest.raises(D.DataError):
        D.ShardReader([files[0], files[0]])
    with pytest.raises(D.DataError):
        D.ShardReader(os.path.join(built, "nope"))


def test_shards_written_another_way_are_read_through_h5py(built, tmp_path):
    src = D.ShardReader(built, D.LoaderConfig(split=None, heatmaps=STORED)).shard_paths[1]
    dst = str(tmp_path / "gzip.h5")
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        for k, v in fi.attrs.items():
            fo.attrs[k] = v

        def copy(name, obj):  # returns None, or visititems would stop
            if isinstance(obj, h5py.Dataset):
                fo.create_dataset(name, data=obj[...], dtype=obj.dtype, chunks=obj.chunks,
                                  compression="gzip" if obj.chunks else None)

        fi.visititems(copy)
    cfg = D.LoaderConfig(split=None, heatmaps=STORED)
    a, b = D.ShardReader(src, cfg), D.ShardReader(dst, cfg)
    for i in range(0, len(a), 6):
        assert_items_equal(a[i], b[i])
    idx = [5, 1, 5, 0, len(a) - 1]
    for kw in (dict(dtype="uint8"), dict(memory_format="channels_last", lr_clean=True)):
        c = D.ShardReader(dst, D.LoaderConfig(split=None, heatmaps=STORED, **kw))
        assert_items_equal(c.get_batch(idx), D.collate_numpy([c[i] for i in idx]))
    assert b._open[0].layout("hr")[0] is None and a._open[0].layout("hr")[0] is not None


def test_config_is_checked():
    for bad in (dict(range="[0,255]"), dict(heatmaps=("all68@64", "all68@64")), dict(heatmaps=("eyes@64",)),
                dict(heatmap_source="cache"), dict(dtype="float16"), dict(remask="random"), dict(remask_seed=-1),
                dict(memory_format="nhwc")):
        with pytest.raises(ValueError):
            D.LoaderConfig(**bad)
    with pytest.raises(ValueError):
        D.epoch_order(10, rank=2, world_size=2)
    assert D.LoaderConfig(remask={"kind": "square", "min_side": 8, "max_side": 9}).remask == masks.SquareMask(8, 9)


def test_import_does_not_import_torch():
    code = "import sys, occface.data; from occface.data import *; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
