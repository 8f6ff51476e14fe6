"""Pro-UIGAN reference model: shapes, gradients, attention, VGG, losses (CPU, tiny widths)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from occface.faces import heatmaps as occ_heatmaps
from occface.model import (VARIANTS, VGG, GeneratorOutput, GlobalDiscriminator, LocalDiscriminator,
                           LossWeights, ProUIGANConfig, ProUIGANLoss, ProUIGenerator,
                           VGGFeatures, VGGWeightsCorrupt, VGGWeightsMissing, adversarial_d_loss,
                           adversarial_g_loss, central_crop, cosine_attention,
                           cosine_attention_naive, download_vgg, gram_matrix, heatmap_loss,
                           heatmap_pyramid, image_pyramid, imagenet_normalise, load_vgg,
                           load_vgg_state_dict, mse_loss, softmax_attention, softmax_attention_naive,
                           style_loss)
from occface.errors import OccfaceError
from occface.bench import model as model_bench
from occface.model.attention import CrossModalAttention, from_tokens, to_tokens
from occface.model.vgg import FEATURE_TAPS, STYLE_TAPS

TINY = dict(widths=(8, 6, 4), res_blocks=(1, 1, 1), prior_width=8, prior_res_blocks=1,
            global_d_widths=(4, 4, 4, 4), local_d_widths=(4, 4, 4))


def tiny(**kw) -> ProUIGANConfig:
    return ProUIGANConfig(**{**TINY, **kw})


def lr_batch(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 16, 16, generator=g) * 2 - 1


def gt_heatmaps(config, b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, c, s, s, generator=g)
            for c, s in zip(config.heatmap_channels, (16, 32, 64))]


# ---------------------------------------------------------------- generator

@pytest.mark.parametrize("kw", [
    {},
    dict(attention="softmax", qk_dim=3, upsample="bilinear"),
    dict(landmark_input="gt", heatmap_groupings=("pu7", "pu42", "all68")),
    dict(landmark_input="none", cosine_scale="sum"),
])
def test_generator_shapes_every_block(kw):
    cfg = tiny(**kw)
    g = ProUIGenerator(cfg)
    hm = gt_heatmaps(cfg)[0]
    out = g(lr_batch(), hm)
    assert [tuple(t.shape) for t in out.images] == [(2, 3, 32, 32), (2, 3, 64, 64),
                                                    (2, 3, 128, 128)]
    c1, c2, c3 = cfg.heatmap_channels
    assert [tuple(t.shape) for t in out.heatmaps] == [(2, c1, 16, 16), (2, c2, 32, 32),
                                                      (2, c3, 64, 64)]
    assert all(t.abs().max() <= 1 for t in out.images)  # tanh range
    assert (out.prior is not None) == (cfg.landmark_input == "learned")
    if out.prior is not None:
        assert out.prior.shape == (2, c1, 16, 16)
    part = g(lr_batch(), hm, blocks=2)
    assert len(part.images) == len(part.heatmaps) == 2
    torch.testing.assert_close(part.images[1], out.images[1])


def test_generator_input_checks():
    with pytest.raises(ValueError, match="ground-truth heatmaps"):
        ProUIGenerator(tiny(landmark_input="gt"))(lr_batch())
    with pytest.raises(ValueError, match="16, 16"):
        ProUIGenerator(tiny())(torch.zeros(1, 3, 32, 32))


def test_generator_bf16_and_channels_last():
    g = ProUIGenerator(tiny()).eval()
    x = lr_batch()
    with torch.no_grad():
        ref = g(x).images[2]
        g_cl = g.to(memory_format=torch.channels_last)
        cl = g_cl(x.contiguous(memory_format=torch.channels_last)).images[2]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf = g_cl(x).images[2]
    torch.testing.assert_close(cl, ref, atol=1e-5, rtol=1e-4)
    assert bf.dtype == torch.bfloat16
    assert (bf.float() - ref).abs().max() < 0.1


# ---------------------------------------------------------------- gradients

def _random_vggs(tmp_path):
    """VGG stacks with random weights loaded through the real file loader."""
    torch.manual_seed(0)
    out = {}
    for arch, taps in (("vgg19", FEATURE_TAPS), ("vgg16", STYLE_TAPS)):
        path = tmp_path / f"{arch}.pth"
        torch.save(VGGFeatures(arch, taps).state_dict(), path)
        out[arch] = load_vgg(arch, taps, path=path)
    return out


def _assert_all_grads(module):
    missing = [n for n, p in module.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing, missing


@pytest.mark.parametrize("mode", ["learned", "gt", "none"])
def test_gradients_reach_every_parameter(mode, tmp_path):
    torch.manual_seed(0)
    cfg = tiny(landmark_input=mode)
    g, ld, gd = ProUIGenerator(cfg), LocalDiscriminator(cfg), GlobalDiscriminator(cfg)
    if mode == "learned":  # full objective, VGG terms included (batch 1 keeps it quick)
        vggs = _random_vggs(tmp_path)
        loss = ProUIGANLoss(cfg, vgg19=vggs["vgg19"], vgg16=vggs["vgg16"])
        b = 1
    else:
        loss = ProUIGANLoss(cfg, without_vgg=True)
        b = 2
    hms = gt_heatmaps(cfg, b)
    hr = torch.rand(b, 3, 128, 128) * 2 - 1
    out = g(lr_batch(b), hms[0])
    total, terms = loss.generator_loss(out, hr, hms, ld, gd)
    total.backward()
    _assert_all_grads(g)
    assert ("block1/feature" in terms) == (mode == "learned")
    ld.zero_grad(), gd.zero_grad()
    d_total, d_terms = loss.discriminator_loss(out, hr, ld, gd)
    d_total.backward()
    _assert_all_grads(ld)
    _assert_all_grads(gd)
    assert set(d_terms) == {"block1/d_local", "block3/d_local", "block3/d_global", "total"}
    if mode == "learned":
        assert all(p.grad is None for p in loss.parameters())  # VGG stays frozen


# ---------------------------------------------------------------- attention

@pytest.mark.parametrize("scale", ["mean", "sum"])
def test_cosine_attention_matches_naive(scale):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 49, 5, generator=g), torch.randn(3, 49, 5, generator=g)
    v = torch.randn(3, 49, 7, generator=g)
    # reference written out: CM[i, j] = <q_i/|q_i|, k_j/|k_j|>
    cm = torch.einsum("bid,bjd->bij", q / q.norm(dim=-1, keepdim=True),
                      k / k.norm(dim=-1, keepdim=True))
    ref = torch.einsum("bij,bjc->bic", cm, v) / (49 if scale == "mean" else 1)
    torch.testing.assert_close(cosine_attention(q, k, v, scale), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cosine_attention_naive(q, k, v, scale), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("d,c", [(4, 6), (6, 4), (5, 5)])  # fused path pads unequal head sizes
def test_softmax_attention_matches_naive(d, c):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 36, d, generator=g), torch.randn(2, 36, d, generator=g)
    v = torch.randn(2, 36, c, generator=g)
    logits = torch.einsum("bid,bjd->bij", q, k)  # unscaled, as the public code
    ref = torch.einsum("bij,bjc->bic", logits.softmax(dim=-1), v)
    torch.testing.assert_close(softmax_attention(q, k, v), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(softmax_attention_naive(q, k, v), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind,qk_dim", [("cosine", None), ("softmax", 3), ("cosine", 3)])
def test_cmam_module_matches_explicit_eq2(kind, qk_dim):
    torch.manual_seed(0)
    m = CrossModalAttention(6, kind, qk_dim)
    f_c, f_l = torch.randn(2, 6, 5, 5), torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        f_p, f_a = m(f_c, f_l)
        m.naive = True
        n_p, n_a = m(f_c, f_l)
        q = to_tokens(f_l if m.proj_q is None else m.proj_q(f_l))
        k = to_tokens(f_c if m.proj_k is None else m.proj_k(f_c))
        if kind == "cosine":
            cm = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(1, 2) / 25
            a_p, a_a = cm, cm.transpose(1, 2)
        else:
            s = q @ k.transpose(1, 2)
            a_p, a_a = s.softmax(-1), s.transpose(1, 2).softmax(-1)
        ref_p = from_tokens(a_p @ to_tokens(m.value_c(f_c)), 5, 5) + f_l
        ref_a = from_tokens(a_a @ to_tokens(m.value_l(f_l)), 5, 5) + f_c
    for got in (f_p, n_p):
        torch.testing.assert_close(got, ref_p, atol=1e-5, rtol=1e-5)
    for got in (f_a, n_a):
        torch.testing.assert_close(got, ref_a, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- VGG

def _expected_vgg_keys(arch):
    """torchvision's documented layout: convs at these ``features`` indices,
    Linear layers at classifier.0/3/6."""
    convs = {"vgg16": [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
                       (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512),
                       (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)],
             "vgg19": [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
                       (12, 256, 256), (14, 256, 256), (16, 256, 256), (19, 256, 512),
                       (21, 512, 512), (23, 512, 512), (25, 512, 512), (28, 512, 512),
                       (30, 512, 512), (32, 512, 512), (34, 512, 512)]}[arch]
    keys = {}
    for i, cin, cout in convs:
        keys[f"features.{i}.weight"] = (cout, cin, 3, 3)
        keys[f"features.{i}.bias"] = (cout,)
    for i, cin, cout in ((0, 25088, 4096), (3, 4096, 4096), (6, 4096, 1000)):
        keys[f"classifier.{i}.weight"] = (cout, cin)
        keys[f"classifier.{i}.bias"] = (cout,)
    return keys


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_state_dict_keys_match_torchvision(arch):
    with torch.device("meta"):
        full = VGG(arch)
    expected = _expected_vgg_keys(arch)
    got = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert got == expected
    assert list(got) == list(expected)  # same order too
    taps = FEATURE_TAPS if arch == "vgg19" else STYLE_TAPS
    with torch.device("meta"):
        part = VGGFeatures(arch, taps).state_dict()
    assert part and all(expected[k] == tuple(v.shape) for k, v in part.items())


def test_vgg_load_roundtrip_and_sources(tmp_path):
    torch.manual_seed(0)
    src = VGGFeatures("vgg16", STYLE_TAPS)
    sd = dict(src.state_dict())
    sd["classifier.6.bias"] = torch.zeros(1000)  # extra keys of a full checkpoint are ignored
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(sd, tmp_path / "mine.pth")
    torch.save(sd, hub / "checkpoints" / "vgg16-397923af.pth")
    # an explicit file, a directory holding the standard file name, torch hub's cache
    for kw in (dict(path=tmp_path / "mine.pth"), dict(path=hub / "checkpoints"),
               dict(hub_dir=hub)):
        loaded = load_vgg("vgg16", STYLE_TAPS, **kw)
        for (k, a), b in zip(src.state_dict().items(), loaded.state_dict().values()):
            torch.testing.assert_close(a, b, msg=k)
        assert not any(p.requires_grad for p in loaded.parameters())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = loaded(x)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "pool1": (1, 64, 16, 16), "pool2": (1, 128, 8, 8), "pool3": (1, 256, 4, 4)}


def test_vgg_missing_weights_error_says_where_it_looked_and_names_no_flag(tmp_path):
    with pytest.raises(VGGWeightsMissing) as err:
        load_vgg_state_dict("vgg19", path=tmp_path / "nope.pth", hub_dir=tmp_path)
    msg = str(err.value)
    for needle in ("nope.pth", str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"),
                   "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"):
        assert needle in msg, needle
    assert "\n" not in msg and "--" not in msg and "OCCFACE_" not in msg  # one line; flags are the CLI's
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, OccfaceError)
    with pytest.raises(VGGWeightsMissing):
        load_vgg_state_dict("vgg16")  # nothing allowed: no silent download, no random init
    with pytest.raises(ValueError, match="without_vgg"):
        ProUIGANLoss(tiny())
    # a loss set without L_f and L_style needs no VGG at all
    assert ProUIGANLoss.from_weights(tiny(), LossWeights.preset("lg-minus")).vgg19 is None


def test_vgg_download_checks_the_published_hash_prefix(tmp_path):
    """download_vgg through a file:// URL (offline): a corrupted file is rejected and never
    reaches the cache; a file whose SHA-256 has the expected prefix is cached and loads."""
    import hashlib

    torch.manual_seed(0)
    sd = VGGFeatures("vgg16", STYLE_TAPS).state_dict()
    good = tmp_path / "mirror" / "vgg16.pth"
    good.parent.mkdir()
    torch.save(sd, good)
    corrupt = tmp_path / "mirror" / "corrupt.pth"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    corrupt.write_bytes(bytes(data))
    hub = tmp_path / "hub"
    cached = hub / "checkpoints" / "vgg16-397923af.pth"
    # the published prefix: neither file is the published one
    with pytest.raises(VGGWeightsCorrupt, match="397923af"):
        download_vgg("vgg16", hub, url=corrupt.as_uri())
    assert not cached.exists() and list((hub / "checkpoints").iterdir()) == []
    prefix = hashlib.sha256(good.read_bytes()).hexdigest()[:8]
    with pytest.raises(VGGWeightsCorrupt):
        download_vgg("vgg16", hub, url=corrupt.as_uri(), sha256_prefix=prefix)
    assert download_vgg("vgg16", hub, url=good.as_uri(), sha256_prefix=prefix) == cached
    loaded = load_vgg("vgg16", STYLE_TAPS, hub_dir=hub)  # found in the cache, no download asked
    for (k, a), b in zip(sd.items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_vgg_loader_rejects_bad_checkpoints(tmp_path):
    sd = VGGFeatures("vgg19", FEATURE_TAPS).state_dict()
    bad = dict(sd, **{"features.12.weight": torch.zeros(1, 1, 3, 3)})
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="features.12.weight"):
        load_vgg("vgg19", FEATURE_TAPS, path=tmp_path / "shape.pth")
    # weights_only=True: a pickled non-tensor object is refused
    torch.save({**sd, "extra": Exception("not a tensor")}, tmp_path / "obj.pth")
    with pytest.raises(pickle.UnpicklingError):
        load_vgg("vgg19", FEATURE_TAPS, path=tmp_path / "obj.pth")


# ---------------------------------------------------------------- losses

def test_gram_of_constant_image():
    c = 0.5
    f = torch.full((2, 4, 3, 5), c)
    # G = φφᵀ/(C·H·W): every entry is c²·H·W/(C·H·W) = c²/C
    torch.testing.assert_close(gram_matrix(f), torch.full((2, 4, 4), c * c / 4))
    assert style_loss({"p": f}, {"p": f.clone()}) == 0
    # constant 0.5 vs 0: Gram differs by c²/C in each of C² entries
    assert math.isclose(float(style_loss({"p": f}, {"p": 0 * f}, "sum")), 4 * c * c)
    assert math.isclose(float(style_loss({"p": f}, {"p": 0 * f}, "mean")), c * c / 4)


def test_pixel_and_heatmap_losses_known_values():
    x, y = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    assert mse_loss(x, x.clone()) == 0
    assert float(mse_loss(x, y)) == 1.0
    assert float(mse_loss(x, 2 * y, "sum")) == 4.0 * 48
    h = torch.zeros(2, 5, 4, 4)
    t = h.clone()
    t[:, 0, 1, 1] = 1.0  # one landmark off by a unit peak
    assert float(heatmap_loss(h, t, "sum")) == pytest.approx(1 / 5)  # Eq. 6: mean over L
    assert float(heatmap_loss(h, t, "mean")) == pytest.approx(1 / (5 * 16))
    # normalised by the targets' energy: all zeros score exactly 1, the target 0, half of it 1/4
    t2 = torch.from_numpy(occ_heatmaps.render(torch.rand(68, 2).numpy() * 100 + 14, "all68", 64))[None]
    assert float(heatmap_loss(torch.zeros_like(t2), t2, norm="target")) == pytest.approx(1.0)
    assert float(heatmap_loss(t2.clone(), t2, norm="target")) == 0
    assert float(heatmap_loss(0.5 * t2, t2, norm="target")) == pytest.approx(0.25)


def test_losses_are_float32_under_bf16_autocast():
    """Forward passes may run in bf16; every loss term is computed in float32 from float32
    copies (the targets are never cast down to the output's dtype)."""
    torch.manual_seed(0)
    cfg = tiny()
    g, ld, gd = ProUIGenerator(cfg), LocalDiscriminator(cfg), GlobalDiscriminator(cfg)
    loss = ProUIGANLoss(cfg, without_vgg=True)
    hms = gt_heatmaps(cfg, 2)
    hr = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(lr_batch(2))
        total, terms = loss.generator_loss(out, hr, hms, ld, gd)
        d_total, d_terms = loss.discriminator_loss(out, hr, ld, gd)
    assert out.images[2].dtype == torch.bfloat16  # the forward pass did run in bf16
    for name, t in {**terms, **{f"d/{k}": v for k, v in d_terms.items()}}.items():
        assert t.dtype == torch.float32, name
    assert total.dtype == d_total.dtype == torch.float32
    want = F.mse_loss(out.images[2].float(), hr)
    torch.testing.assert_close(terms["block3/mse"], want.detach())
    want_h = ((out.heatmaps[0].float() - hms[0]) ** 2).sum() / (hms[0] ** 2).sum()
    torch.testing.assert_close(terms["block1/heatmap"], want_h.detach())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = torch.rand(4, 4).bfloat16()
        assert mse_loss(a, torch.zeros(4, 4)).dtype == torch.float32
        assert adversarial_g_loss(a.flatten()).dtype == torch.float32


def test_stop_gradients_keep_the_image_loss_out_of_the_landmark_estimators():
    """With detach_prior / detach_heatmaps the image losses do not reach the learned prior or
    any heatmap head; without them (the default) they do."""
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 128, 128) * 2 - 1
    for detach in (True, False):
        cfg = tiny(detach_prior=detach, detach_heatmaps=detach)
        g = ProUIGenerator(cfg)
        out = g(lr_batch(2))
        images_only = sum(mse_loss(im, t) for im, t in zip(out.images, image_pyramid(hr)))
        images_only.backward()
        heads = [*g.prior.parameters(), *g.blocks[0].heatmap_head.parameters(),
                 *g.blocks[1].heatmap_head.parameters()]
        reached = [p.grad is not None and p.grad.abs().sum() > 0 for p in heads]
        assert not any(reached) if detach else all(reached)
        # the CM-AM trunk is trained by the image losses either way
        assert all(p.grad is not None for p in g.blocks[2].cmam.parameters())


def test_adversarial_losses_known_values():
    zero = torch.zeros(4)
    assert float(adversarial_g_loss(zero, "log")) == pytest.approx(math.log(2))
    assert float(adversarial_d_loss(zero, zero, "log")) == pytest.approx(2 * math.log(2))
    assert float(adversarial_g_loss(zero, "lsgan")) == 1.0
    assert float(adversarial_d_loss(zero, zero, "lsgan")) == 1.0
    big = torch.full((4,), 30.0)
    assert float(adversarial_d_loss(big, -big, "log")) < 1e-10


def test_imagenet_normalisation():
    x = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    got = imagenet_normalise(x).flatten(1)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(got[0], -mean / std)
    torch.testing.assert_close(got[1], (1 - mean) / std)


def test_generator_loss_zero_for_identical_and_weighted_per_eqs(tmp_path):
    cfg = tiny()
    vggs = _random_vggs(tmp_path)
    loss = ProUIGANLoss(cfg, vgg19=vggs["vgg19"], vgg16=vggs["vgg16"])
    hr = torch.rand(1, 3, 128, 128) * 2 - 1
    hms = gt_heatmaps(cfg, 1)
    perfect = GeneratorOutput(image_pyramid(hr), tuple(hms), hms[0])
    _, terms = loss.generator_loss(perfect, hr, hms)
    for name, v in terms.items():
        assert float(v) == pytest.approx(1.0 if name.endswith("heatmap_zero") else 0, abs=1e-6), name
    # perturbed outputs: total must be Eqs. 12-15 assembled from the terms
    out = GeneratorOutput(tuple(t + 0.1 for t in image_pyramid(hr)),
                          tuple(h + 0.2 for h in hms), hms[0] - 0.3)
    ld, gd = LocalDiscriminator(cfg), GlobalDiscriminator(cfg)
    w = LossWeights()
    total, t = loss.generator_loss(out, hr, hms, ld, gd)
    expect = 0.0
    for k, gamma in enumerate((10.0, 10.0, 1.0)):
        b = f"block{k + 1}"
        expect += t[f"{b}/mse"] + 0.01 * t[f"{b}/feature"] + w.heatmap * t[f"{b}/heatmap"] \
            + gamma * t[f"{b}/style"]
        assert float(t[f"{b}/heatmap_zero"]) == pytest.approx(1.0)
        torch.testing.assert_close(t[f"{b}/mse"], torch.tensor(0.01))
    expect += 0.01 * (t["block1/adv_local"] + t["block3/adv_local"] + t["block3/adv_global"])
    expect += w.prior * t["prior/heatmap"]
    torch.testing.assert_close(total.detach(), expect)
    assert (w.alpha, w.psi, w.gammas) == (0.01, 0.01, (10.0, 10.0, 1.0))
    # staged pre-training: block 1 only -> Eq. 12 alone, no global term
    _, t1 = loss.generator_loss(GeneratorOutput(out.images[:1], out.heatmaps[:1], out.prior),
                                hr, hms, ld, gd)
    assert "block2/mse" not in t1 and "block3/adv_global" not in t1 and "block1/adv_local" in t1


def test_heatmap_pyramid_groupings():
    lm = torch.rand(68, 2).numpy() * 100 + 14
    hm64 = torch.from_numpy(occ_heatmaps.render(lm, "all68", 64))[None]
    cfg = tiny(heatmap_groupings=("pu7", "pu42", "all68"))
    p = heatmap_pyramid(hm64, cfg)
    assert [tuple(t.shape) for t in p] == [(1, 7, 16, 16), (1, 42, 32, 32), (1, 68, 64, 64)]
    torch.testing.assert_close(p[2], hm64)
    assert cfg.heatmap_specs == ("pu7@16", "pu42@32", "all68@64")


# ---------------------------------------------------------------- discriminators, config

def test_discriminators_and_crop_box():
    cfg = tiny()
    img128 = torch.arange(128.0).view(1, 1, 1, 128).expand(2, 3, 128, 128)
    crop = central_crop(img128, cfg)
    assert crop.shape[-2:] == (64, 64) and crop[0, 0, 0, 0] == 32 and crop[0, 0, 0, -1] == 95
    img32 = torch.arange(32.0).view(1, 1, 1, 32).expand(2, 3, 32, 32)
    crop32 = central_crop(img32, cfg)
    assert crop32.shape[-2:] == (16, 16) and crop32[0, 0, 0, 0] == 8
    ld = LocalDiscriminator(cfg)
    assert ld(crop).shape == (2,) and ld(crop32).shape == (2,)
    assert GlobalDiscriminator(cfg)(img128).shape == (2,)


def test_config_validation_and_presets():
    for bad in (dict(attention="dot"), dict(upsample="pixelshuffle"), dict(landmark_input="fan"),
                dict(widths=(8, 8)), dict(heatmap_groupings=("all68", "all68", "x")),
                dict(local_crop=(100, 32, 64)), dict(qk_dim=0)):
        with pytest.raises(ValueError):
            ProUIGANConfig(**bad)
    pub = ProUIGANConfig.public_code()
    assert (pub.attention, pub.qk_dim, pub.upsample, pub.heatmap_channels) == (
        "softmax", 32, "bilinear", (7, 42, 68))
    d = ProUIGANConfig()
    assert (d.attention, d.upsample, d.landmark_input, d.heatmap_channels) == (
        "cosine", "deconv", "learned", (68, 68, 68))
    with pytest.raises(ValueError):
        LossWeights(adversarial="hinge")
    with pytest.raises(ValueError):
        LossWeights(heatmap=-1)
    with pytest.raises(ValueError):
        LossWeights.preset("lg-plusplus")


def test_table3_variants_switch_the_terms(tmp_path):
    """Each Table III preset computes exactly its terms (VGG stacks with random weights)."""
    cfg = tiny()
    vggs = _random_vggs(tmp_path)
    hr = torch.rand(1, 3, 128, 128) * 2 - 1
    hms = gt_heatmaps(cfg, 1)
    out = GeneratorOutput(tuple(t + 0.1 for t in image_pyramid(hr)), tuple(h + 0.2 for h in hms), hms[0])
    ld, gd = LocalDiscriminator(cfg), GlobalDiscriminator(cfg)
    expect = {"lg-minus": (set(), False, False, False), "lg-plus": ({2, 3}, False, False, False),
              "lg-star": ({1, 2, 3}, False, False, False), "lg-dagger": ({1, 2, 3}, True, True, False),
              "full": ({1, 2, 3}, True, True, True)}
    assert set(expect) == set(VARIANTS)
    for name, (feat, style, local, glob) in expect.items():
        w = LossWeights.preset(name)
        assert w.variant == name and w.uses_local_d == local and w.uses_global_d == glob
        loss = ProUIGANLoss(cfg, w, vgg19=vggs["vgg19"], vgg16=vggs["vgg16"])
        _, t = loss.generator_loss(out, hr, hms, ld, gd)
        assert {k for k in (1, 2, 3) if f"block{k}/feature" in t} == feat, name
        assert all((f"block{k}/style" in t) == style for k in (1, 2, 3)), name
        assert ("block1/adv_local" in t) == local and ("block3/adv_global" in t) == glob, name
        assert all(f"block{k}/mse" in t and f"block{k}/heatmap" in t for k in (1, 2, 3))
    assert LossWeights.preset("lg-minus", heatmap=0.5, reduction="sum").heatmap == 0.5


# ---------------------------------------------------------------- bench + CLI

def test_bench_functions_tiny():
    cfg = tiny()
    size = model_bench.model_size(cfg)
    assert size["generator"]["bytes"] > 4 * size["generator"]["params"]
    assert size["generator"]["prior_params"] > 0
    flops = model_bench.generator_flops(cfg)
    assert flops["total"] >= sum(v for k, v in flops.items() if k != "total") > 0
    # fused softmax attention (CPU flash op) is counted like its explicit form
    from torch.utils.flop_counter import FlopCounterMode
    soft = tiny(attention="softmax", widths=(4, 4, 4))
    g = ProUIGenerator(soft).eval()
    for m in g.modules():
        if isinstance(m, CrossModalAttention):
            m.naive = True
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        g(lr_batch(1))
    assert model_bench.generator_flops(soft)["total"] == counter.get_total_flops()
    r = model_bench.time_generator(cfg, batch=2, iters=2, warmup=1)
    assert r["iters"] >= 1 and r["images_per_s"] > 0
    rows = model_bench.attention_comparison(side=16, width=4, iters=2, warmup=1)
    assert [r["kind"] for r in rows] == ["cosine", "softmax"]
    # the naive path materialises the N x N matrix (256² fp32 = 256 KiB)
    assert all(r["naive_peak_bytes"] >= 256 * 256 * 4 > r["fused_peak_bytes"] for r in rows)


def test_cli_bench_model_tiny():
    from occface_cli.main import main

    res = CliRunner().invoke(main, ["bench", "model", "--widths", "4,4,4", "--batch", "1",
                                    "--iters", "1", "--max-seconds", "1", "--no-size"])
    assert res.exit_code == 0, res.output
    assert "ms/image" in res.output and "naive/fused" in res.output


# ----------------------------------------------------------------------------- points prior, residual heatmaps

def test_points_prior_renders_the_mean_shape_and_residual_blocks_pass_it_up():
    """At the start a points prior predicts the mean shape, renders it exactly as the shard
    renderer does, and residual heads hand it up unchanged: block k's heatmaps = the previous
    block's upsampled x2."""
    import numpy as np

    from occface.model.generator import render_points

    cfg = ProUIGANConfig(widths=(8, 6, 4), prior_width=8, prior_kind="points", heatmap_residual=True)
    g = ProUIGenerator(cfg)
    shape = torch.from_numpy(np.random.default_rng(3).uniform(20, 107, (68, 2)).astype(np.float32))
    g.init_mean_shape(shape)
    out = g(torch.rand(3, 3, 16, 16) * 2 - 1)
    assert out.prior_points.shape == (3, 68, 2) and torch.equal(out.prior_points, shape.expand(3, 68, 2))
    ref = occ_heatmaps.render(shape.double().numpy(), "all68", 16, 1.0)
    torch.testing.assert_close(out.prior[0], torch.from_numpy(ref).float(), atol=1e-6, rtol=0)
    assert torch.equal(out.heatmaps[0], out.prior)
    for k in (1, 2):
        up = F.interpolate(out.heatmaps[k - 1], scale_factor=2, mode="bilinear", align_corners=False)
        torch.testing.assert_close(out.heatmaps[k], up)
    # odd sigma and side: the renderer's mapping, peak 1 on the point
    pts = torch.tensor([[[63.5, 40.25]]])
    h = render_points(pts, 33, 0.7)
    assert h.shape == (1, 1, 33, 33) and h.max() <= 1
    torch.testing.assert_close(h[0, 0], torch.from_numpy(occ_heatmaps.render(
        np.tile(pts[0].numpy(), (68, 1)), "all68", 33, 0.7)[0]).float(), atol=1e-6, rtol=0)


def test_block3_heatmap_loss_reaches_the_points_prior():
    cfg = ProUIGANConfig(widths=(8, 6, 4), prior_width=8, prior_kind="points", heatmap_residual=True)
    g = ProUIGenerator(cfg)
    g.init_mean_shape(torch.full((68, 2), 64.0) + torch.arange(68.0)[:, None] * 0.5)
    torch.manual_seed(1)
    out = g(torch.rand(2, 3, 16, 16) * 2 - 1)
    target = torch.zeros_like(out.heatmaps[2])
    heatmap_loss(out.heatmaps[2], target + 0.5, norm="target").backward()
    assert g.prior.offsets.weight.grad.abs().sum() > 0  # through the residual chain and the renderer
    assert g.blocks[2].heatmap_head.conv.weight.grad.abs().sum() > 0


def test_points_prior_and_residual_config_checks():
    with pytest.raises(ValueError, match="all68"):
        ProUIGANConfig(prior_kind="points", heatmap_groupings=("pu7", "pu42", "all68"))
    with pytest.raises(ValueError, match="heatmap_residual"):
        ProUIGANConfig(heatmap_residual=True, heatmap_groupings=("pu7", "pu42", "all68"))
    with pytest.raises(ValueError, match="heatmap_residual"):
        ProUIGANConfig(heatmap_residual=True, landmark_input="none")
    with pytest.raises(ValueError, match="prior_kind"):
        ProUIGANConfig(prior_kind="boxes")
    with pytest.raises(ValueError, match="prior_sigma"):
        ProUIGANConfig(prior_kind="points", prior_sigma=0.0)
    g = ProUIGenerator(ProUIGANConfig(widths=(8, 6, 4), heatmap_residual=True, landmark_input="gt"))
    out = g(torch.zeros(1, 3, 16, 16), heatmaps=torch.ones(1, 68, 16, 16))
    assert out.prior is None and out.prior_points is None and torch.equal(out.heatmaps[0], torch.ones(1, 68, 16, 16))
