"""A corpus of odd inputs, made here with Pillow / NumPy: every entry on disk ends up a sample, a rejection
or a skip, the good photos beside them are all built, and nothing prints a traceback.

The build runs as a user would run it (the console command, two workers) and, when the tests run as
root, without the capability to read other people's files (``setpriv``), so unreadable files and folders
are real.  The table (kind, entry, outcome, reason) is printed into the test log.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from occface.format import manifest as M
from occface.format import shards
from tests.db._faces import astronaut_head, lfw_face

# lfw_subset faces dlib's HOG finds at 150 px (each kind gets its own, so no accidental duplicates)
_POOL = iter([0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 31,
              32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56,
              57, 58, 60, 61, 62, 63, 64, 65, 66, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84])
DROP_READ = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
             "-dac_override,-dac_read_search"]


def face() -> np.ndarray:
    return lfw_face(next(_POOL))


def enc(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, fmt, **kw)
    return buf.getvalue()


def scramble_scan(jpeg: bytes, n: int = 200) -> bytes:
    d = bytearray(jpeg)
    mid = d.find(b"\xff\xda") + (len(d) - d.find(b"\xff\xda")) // 2
    for i in range(mid, mid + n):
        d[i] = (d[i] * 7 + 13) & 0xFF
    return bytes(d)


def png_chunk_crc_broken(png: bytes, kind: bytes) -> bytes:
    d = bytearray(png)
    pos = 8
    while True:
        n = int.from_bytes(d[pos:pos + 4], "big")
        if d[pos + 4:pos + 8] == kind:
            d[pos + 8 + n] ^= 0xFF
            return bytes(d)
        pos += 12 + n


def png_header(w: int, h: int) -> bytes:
    def chunk(t, x):
        return len(x).to_bytes(4, "big") + t + x + zlib.crc32(t + x).to_bytes(4, "big")

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def exif_jpeg(upright: np.ndarray, orientation: int) -> bytes:
    stored = {3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return enc(np.ascontiguousarray(stored), "JPEG", quality=92, exif=exif)


def frames(fmt: str, n: int = 3, **kw) -> bytes:
    imgs = [Image.fromarray(face()) for _ in range(n)]
    buf = io.BytesIO()
    imgs[0].save(buf, fmt, save_all=True, append_images=imgs[1:], **kw)
    return buf.getvalue()


def write(root, rel, data: bytes):
    path = os.path.join(os.fsencode(root), os.fsencode(rel) if isinstance(rel, str) else rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


SAMPLE, REJECT, SKIP = "sample", "rejected", "skipped"


def make_corpus(root, unreadable_ok: bool) -> list[tuple[str, str, set]]:
    """Write the corpus under ``root/odd``; returns (kind, entry path relative to root, allowed outcomes).

    An outcome is "sample", or "rejected:<reason>", or "skipped:<reason>"."""
    kinds = []

    def k(kind, rel, data, *outcomes):
        if data is not None:
            write(root, rel, data)
        kinds.append((kind, rel if isinstance(rel, str) else os.fsdecode(rel), set(outcomes)))

    jpg = lambda a, **kw: enc(a, "JPEG", quality=92, **kw)  # noqa: E731
    png = lambda a: enc(a, "PNG")  # noqa: E731
    good_jpeg = jpg(face())
    k("truncated JPEG", "odd/truncated.jpg", good_jpeg[: len(good_jpeg) // 2], "rejected:decode_truncated")
    k("damaged entropy-coded data", "odd/damaged_scan.jpg", scramble_scan(jpg(face())), "rejected:decode_corrupt")
    k("JPEG header only", "odd/header_only.jpg", good_jpeg[:600], "rejected:decode_truncated")
    k("JPEG + trailing garbage", "odd/trailing.jpg", jpg(face()) + bytes(range(256)) * 4, "sample")
    k("progressive JPEG", "odd/progressive.jpg", jpg(face(), progressive=True), "sample")
    k("CMYK JPEG", "odd/cmyk.jpg", enc(Image.fromarray(face()).convert("CMYK"), "JPEG", quality=95), "sample")
    k("colour JPEG", "odd/colour.jpg", jpg(astronaut_head()), "sample")
    for o in (3, 6, 8):
        k(f"EXIF orientation {o}", f"odd/exif{o}.jpg", exif_jpeg(face(), o), "sample")
    k("damaged EXIF block", "odd/bad_exif.jpg",
      good_jpeg[:2] + b"\xff\xe1\x00\x10Exif\x00\x00MM\x00*\xff\xff\xff\xff" + good_jpeg[2:],
      "sample", "rejected:decode_corrupt")
    k("PNG, bad IHDR CRC", "odd/bad_ihdr.png", png_chunk_crc_broken(png(face()), b"IHDR"), "rejected:decode_corrupt")
    k("PNG, bad IDAT CRC", "odd/bad_idat.png", png_chunk_crc_broken(png(face()), b"IDAT"), "rejected:decode_corrupt")
    good_png = png(face())
    k("truncated PNG", "odd/truncated.png", good_png[: len(good_png) * 2 // 3],
      "rejected:decode_truncated", "rejected:decode_corrupt")
    k("decompression bomb (400 MP header)", "odd/bomb.png", png_header(20_000, 20_000), "rejected:decode_too_large")
    k("16-bit grey PNG", "odd/grey16.png", png(face()[..., 0].astype(np.uint16) * 257), "sample")
    ok, rgb16 = cv2.imencode(".png", face().astype(np.uint16) * 257)
    k("16-bit RGB PNG", "odd/rgb16.png", rgb16.tobytes(), "sample")
    k("palette PNG", "odd/palette.png", enc(Image.fromarray(astronaut_head()).convert("P"), "PNG"),
      "sample", "rejected:no_face")
    k("grey + alpha (LA) PNG", "odd/la.png", enc(Image.fromarray(face()).convert("LA"), "PNG"), "sample")
    k("RGBA PNG", "odd/rgba.png", enc(Image.fromarray(face()).convert("RGBA"), "PNG"), "sample")
    k("animated GIF", "odd/animated.gif", frames("GIF", duration=100, loop=0), "sample")
    k("truncated GIF", "odd/truncated.gif", frames("GIF")[:300], "rejected:decode_truncated", "rejected:decode_corrupt")
    k("multi-page TIFF", "odd/pages.tif", frames("TIFF"), "sample")
    k("float32 TIFF", "odd/float.tif", enc(Image.fromarray(face()[..., 0].astype(np.float32) / 255.0, "F"), "TIFF"),
      "sample")
    k("16-bit TIFF", "odd/grey16.tif", enc(Image.fromarray(face()[..., 0].astype(np.uint16) * 257), "TIFF"), "sample")
    tif = enc(face(), "TIFF")
    k("TIFF with damaged strips", "odd/damaged.tif", tif[:200] + b"\xff" * 20 + tif[220:len(tif) // 3],
      "rejected:decode_truncated", "rejected:decode_corrupt", "rejected:decode_not_an_image")
    k("BMP", "odd/face.bmp", enc(face(), "BMP"), "sample")
    k("PGM", "odd/face.pgm", enc(Image.fromarray(face()[..., 0]), "PPM"), "sample")
    k("PPM", "odd/face.ppm", enc(face(), "PPM"), "sample")
    k("WebP", "odd/face.webp", enc(face(), "WEBP", quality=95), "sample")
    k("1-bit image", "odd/onebit.png", enc(Image.fromarray(face()).convert("1"), "PNG"), "sample", "rejected:no_face")
    k("1x1 pixel", "odd/tiny.png", png(np.zeros((1, 1, 3), np.uint8)), "rejected:no_face")
    k("flat wall, no face", "odd/wall.png", png(np.full((120, 160, 3), 128, np.uint8)), "rejected:no_face")
    k("two faces", "odd/two.png", png(np.concatenate([face(), face()], axis=1)), "sample")
    k("zero-byte file", "odd/empty.jpg", b"", "rejected:decode_empty")
    k("text named .jpg", "odd/text.jpg", b"not a photo\n" * 20, "rejected:decode_not_an_image")
    k("HTML named .png", "odd/page.png", b"<!doctype html><html><body>404</body></html>\n",
      "rejected:decode_not_an_image")
    k("PNG named .jpg", "odd/png_inside.jpg", png(face()), "sample")
    k("upper-case extension", "odd/UPPER.JPG", jpg(face()), "sample")
    k("unicode name", "odd/visage-ü-顔.png", png(face()), "sample")
    k("newline in name", "odd/line\nbreak.png", png(face()), "sample")
    k("spaces in name", "odd/with  spaces .png", png(face()), "sample")
    k("long name", "odd/" + "n" * 200 + ".png", png(face()), "sample")
    k("non-UTF-8 file name", b"odd/caf\xe9.png", png(face()), "skipped:undecodable_name")
    k("non-UTF-8 folder name", b"odd/dir\xff", None, "skipped:undecodable_name")
    write(root, b"odd/dir\xff/inside.png", png(face()))
    k("hidden file", "odd/.hidden.png", png(face()), "skipped:hidden")
    k("hidden folder", "odd/.cache", None, "skipped:hidden")
    write(root, "odd/.cache/thumb.png", png(face()))
    k("annotation (.pts)", "odd/colour.pts", b"version: 1\nn_points: 68\n{\n}\n", "skipped:not_an_image_extension")
    k("README", "odd/README.txt", b"photos of people\n", "skipped:not_an_image_extension")
    k("JPEG without extension", "odd/photo", jpg(face()), "skipped:not_an_image_extension")
    k("folder named like a photo", "odd/album.jpg/inside.png", png(face()), "sample")
    os.mkfifo(os.path.join(root, "odd", "pipe.jpg"))
    k("FIFO", "odd/pipe.jpg", None, "skipped:special_file")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(root, "odd", "sock.png"))
    sock.close()
    k("socket", "odd/sock.png", None, "skipped:special_file")
    if os.geteuid() == 0:
        os.mknod(os.path.join(root, "odd", "device.png"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
        k("character device", "odd/device.png", None, "skipped:special_file")
    os.symlink("nowhere.jpg", os.path.join(root, "odd", "dangling.jpg"))
    k("dangling link", "odd/dangling.jpg", None, "skipped:dangling_link")
    os.symlink("self.jpg", os.path.join(root, "odd", "self.jpg"))
    k("link to itself", "odd/self.jpg", None, "skipped:link_loop")
    os.symlink("../good/g00.png", os.path.join(root, "odd", "link_to_good.png"))
    k("link to a photo", "odd/link_to_good.png", None, "sample")
    os.symlink("../good", os.path.join(root, "odd", "linked_folder"))
    k("link to a folder", "odd/linked_folder", None, "skipped:directory_link")
    os.symlink(".", os.path.join(root, "odd", "loop"))
    k("link loop (folder -> itself)", "odd/loop", None, "skipped:directory_link")
    shutil.copyfile(os.path.join(root, "good", "g01.png"), os.path.join(root, "odd", "copy_of_g01.png"))
    k("byte-identical copy", "odd/copy_of_g01.png", None, "sample")
    k("an old build folder", "odd/old_build", None, "skipped:build_output")
    write(root, "odd/old_build/build.lock", b"1\n")
    write(root, "odd/old_build/contact_sheet.png", png(face()))
    os.makedirs(os.path.join(root, "odd", "empty_folder"))
    if unreadable_ok:
        p = write(root, "odd/unreadable.png", png(face()))
        os.chmod(p, 0)
        k("unreadable file", "odd/unreadable.png", None, "rejected:decode_unreadable")
        write(root, "odd/locked_folder/inside.png", png(face()))
        os.chmod(os.path.join(root, "odd", "locked_folder"), 0)
        k("unreadable folder", "odd/locked_folder", None, "skipped:unreadable_directory")
    return kinds


def entries_on_disk(root) -> list[str]:
    """Every non-folder entry and every folder under ``root`` (links not followed), as shown paths."""
    out = []
    broot = os.fsencode(root)
    for d, dirs, files in os.walk(broot):
        rel = os.path.relpath(d, broot)
        for name in dirs + files:
            out.append(os.path.normpath(os.path.join(rel, name)).decode("utf-8", "backslashreplace"))
    return sorted(out)


def test_every_entry_of_an_odd_corpus_is_a_sample_a_rejection_or_a_skip(tmp_path):
    root = tmp_path / "photos"
    good = []
    for i, img in enumerate([lfw_face(j) for j in (85, 86, 87, 88, 89, 90)] + [astronaut_head()]):
        good.append(f"good/g{i:02d}.png")
        write(root, good[-1], enc(img, "PNG"))
    prefix = DROP_READ if os.geteuid() == 0 and shutil.which("setpriv") else ([] if os.geteuid() else None)
    kinds = make_corpus(root, unreadable_ok=prefix is not None)
    out = tmp_path / "build"
    cmd = (prefix or []) + [sys.executable, "-m", "occface_cli.main", "build", "--db", "folder", "--root", str(root),
                            "--identity-from-parent", "--out", str(out), "--workers", "2", "--shard-size", "8",
                            "--no-progress"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        for d, dirs, _ in os.walk(root):  # give the test's own cleanup its permissions back
            for name in dirs:
                os.chmod(os.path.join(d, name), 0o755)
    tracebacks = res.stderr.count("Traceback")
    assert res.returncode == 0, res.stderr
    m = M.load_manifest(str(out))
    sampled = set()
    for e in m["shards"]:
        sampled.update(shards.read_meta(str(out / e["file"]))["source"])
    rejected = {r["path"]: r["reason"] for r in m["rejections"]["log"]}
    skipped = {s["path"]: s["reason"] for s in m["skipped"]["log"]}

    def outcome(entry):
        if entry in sampled:
            return SAMPLE, ""
        if entry in rejected:
            return REJECT, rejected[entry]
        if entry in skipped:
            return SKIP, skipped[entry]
        parts = entry.split("/")
        for n in range(len(parts) - 1, 0, -1):
            if "/".join(parts[:n]) in skipped:
                return "inside skipped", "/".join(parts[:n])
        return None, ""

    on_disk = entries_on_disk(root)
    folders = {e for e in on_disk if os.path.isdir(os.path.join(root, e)) and not os.path.islink(os.path.join(root, e))}
    unaccounted = [e for e in on_disk if outcome(e)[0] is None and e not in folders]
    lost = [g for g in good if g not in sampled]
    by_entry = {rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"): (kind, allowed)
                for kind, rel, allowed in kinds}
    rows, wrong = [], []
    for entry in on_disk:
        if entry in folders and entry not in by_entry:
            continue  # a folder that was walked into: its entries are listed themselves
        kind = by_entry.get(entry, ("good photo" if entry in good else "(inside another kind)", None))
        what, reason = outcome(entry)
        rows.append((kind[0], entry.replace("\n", "\\n"), what or "UNACCOUNTED", reason))
        if kind[1] is not None and (f"{what}:{reason}" if what != SAMPLE else SAMPLE) not in kind[1]:
            wrong.append((kind[0], entry, what, reason, sorted(kind[1])))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'kind':<{width}}  {'entry':<44}  {'outcome':<15}  reason")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1][:44]:<44}  {r[2]:<15}  {r[3]}")
    n_kinds = len({k for k, _, _ in kinds})
    print(f"totals: {n_kinds} kinds, {len(rows)} entries, {sum(r[2] == SAMPLE for r in rows)} samples, "
          f"{sum(r[2] == REJECT for r in rows)} rejected, {sum(r[2] == SKIP for r in rows)} skipped, "
          f"{sum(r[2] == 'inside skipped' for r in rows)} inside a skipped folder; tracebacks {tracebacks}, "
          f"unaccounted entries {len(unaccounted)}, good photos lost {len(lost)}")
    assert n_kinds >= 40
    assert tracebacks == 0 and "Corrupt JPEG data" not in res.stderr  # decoder warnings become rejections
    assert unaccounted == []
    assert lost == []
    assert wrong == []
    assert M.verify(str(out)) == []
    assert m["duplicates"]["groups"] == [["good/g00.png", "odd/link_to_good.png"], ["good/g01.png",
                                                                                   "odd/copy_of_g01.png"]]


def test_links_to_folders_are_followed_only_when_asked_and_never_loop(tmp_path):
    from occface.db import FolderSource

    root = tmp_path / "photos"
    write(root, "people/a.png", enc(face(), "PNG"))
    outside = tmp_path / "elsewhere"
    write(outside, "b.png", enc(face(), "PNG"))
    os.symlink("people", root / "alias")  # a second view of a folder already walked
    os.symlink(".", root / "people" / "loop")  # a folder linking to itself
    os.symlink(str(outside), root / "outside")  # a folder outside the root
    inv = FolderSource(str(root)).inventory()
    assert [r.source for r in inv.records] == ["people/a.png"]
    assert inv.skipped == [{"path": p, "reason": "directory_link"} for p in ("alias", "outside", "people/loop")]
    inv = FolderSource(str(root), follow_links=True).inventory()
    assert [r.source for r in inv.records] == ["outside/b.png", "people/a.png"]
    assert inv.skipped == [{"path": "alias", "reason": "link_loop"}, {"path": "people/loop", "reason": "link_loop"}]
