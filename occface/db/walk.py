"""Walking a folder of photos so that every entry under the root is accounted for.

:func:`walk` sorts each entry under a root into an *input* (a file the build reads) or a
*skip* with a reason; nothing is passed over silently.  Inputs that then fail to decode
are rejections (recorded by the build), so every entry on disk ends up a sample, a
rejection or a skip.  A skipped folder accounts for everything beneath it.

Skip reasons (:data:`SKIP_REASONS`):

* ``hidden``: the name starts with ``.`` (file or folder: ``.git``, ``.DS_Store``, ...);
* ``not_an_image_extension``: a file whose extension is not one of :data:`IMAGE_EXTENSIONS`
  (annotations such as ``.pts``, ``.txt``, ``.json`` beside the photos);
* ``special_file``: a FIFO, socket or device;
* ``dangling_link``: a symbolic link to nothing;
* ``link_loop``: a link that loops (``a -> a``), or, when links to folders are followed,
  a link to a folder already walked (an ancestor or another view of one);
* ``directory_link``: a link to a folder, when links to folders are not followed;
* ``undecodable_name``: a name that is not valid UTF-8 (shown with ``\\xNN`` escapes);
* ``unreadable_directory``: a folder that cannot be listed;
* ``build_output``: a folder that holds an occface build (``build.lock`` or ``shards/`` beside a
  manifest), so a build never ingests another build's files.

Links to files are followed (their target is read).  Duplicate content is found by
:func:`find_duplicates`, which reads whole only the files whose size and last 4 KiB equal
another file's.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import zlib

from ..format.lock import LOCK as BUILD_MARKER  # every occface build holds this file in its folder

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".pgm", ".ppm",
                    ".pbm", ".pnm", ".gif", ".webp")
SKIP_REASONS = ("hidden", "not_an_image_extension", "special_file", "dangling_link", "link_loop",
                "directory_link", "undecodable_name", "unreadable_directory", "build_output")


def shown(path: str) -> str:
    """``path`` as UTF-8-safe text: bytes that are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _decodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_build(names: set[str]) -> bool:
    return BUILD_MARKER in names or ("shards" in names and any(n.startswith("manifest") and n.endswith(".json")
                                                               for n in names))


def walk(root: str, follow_links: bool = False) -> tuple[list[tuple[str, os.stat_result]], list[dict]]:
    """Inputs and skips under ``root``.

    Returns ``(inputs, skipped)``: ``inputs`` = ``[(relative path, stat of the file)]`` sorted by
    path (``/`` separators, links to files resolved for the stat), ``skipped`` =
    ``[{"path", "reason"}]`` sorted by path.  ``follow_links``: walk into links to folders
    (real folders first, each real folder once, so links never loop).

    Cost: one ``scandir`` per folder and one ``stat`` per photo (entry types come from the
    directory listing itself).
    """
    inputs: list[tuple[str, os.stat_result]] = []
    skipped: list[dict] = []
    seen: set = set()  # (st_dev, st_ino) of the real folders walked (kept when links are followed)
    links: list[tuple[str, str, os.stat_result]] = []  # links to folders, followed after every real folder

    def skip(rel, reason):
        skipped.append({"path": shown(rel), "reason": reason})

    def visit(folder: str, rel: str, st: os.stat_result | None):
        if st is not None:
            ident = (st.st_dev, st.st_ino)
            if ident in seen:  # a folder walked already (an ancestor, or another view of one)
                skip(rel, "link_loop")
                return
            seen.add(ident)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError:
            skip(rel or ".", "unreadable_directory")
            return
        if rel and _is_build({e.name for e in entries}):
            skip(rel, "build_output")
            return
        prefix = rel + "/" if rel else ""
        for e in entries:
            sub = prefix + e.name
            if not _decodable(e.name):
                skip(sub, "undecodable_name")
                continue
            if e.name.startswith("."):
                skip(sub, "hidden")
                continue
            try:
                if not e.is_symlink():  # the entry's type comes with the listing: no system call
                    if e.is_dir(follow_symlinks=False):
                        visit(e.path, sub, e.stat(follow_symlinks=False) if follow_links else None)
                    elif not e.is_file(follow_symlinks=False):
                        skip(sub, "special_file")
                    elif os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
                        skip(sub, "not_an_image_extension")
                    else:
                        inputs.append((sub, e.stat(follow_symlinks=False)))
                    continue
                st = os.stat(e.path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    skip(sub, "link_loop")
                elif e.is_symlink():
                    skip(sub, "dangling_link")
                else:
                    skip(sub, "special_file")
                continue
            if stat.S_ISDIR(st.st_mode):
                if follow_links:
                    links.append((sub, e.path, st))
                else:
                    skip(sub, "directory_link")
            elif not stat.S_ISREG(st.st_mode):
                skip(sub, "special_file")
            elif os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
                skip(sub, "not_an_image_extension")
            else:
                inputs.append((sub, st))

    visit(root, "", os.stat(root) if follow_links else None)
    # Real folders first, then links in path order: a folder inside the root is always walked
    # under its own name, and each real folder once.
    while links:
        links.sort(key=lambda t: os.fsencode(t[0]))
        rel, path, st = links.pop(0)
        visit(path, rel, st)
    inputs.sort(key=lambda t: t[0])
    skipped.sort(key=lambda s: s["path"])
    return inputs, skipped


def _tail_crc(path: str, size: int, n: int = 4096) -> int | None:
    """CRC-32 of the last ``n`` bytes (one open, one read): a cheap first test before a full hash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return zlib.crc32(os.pread(fd, n, max(0, size - n)))
    except OSError:
        return None
    finally:
        os.close(fd)


def find_duplicates(root: str, inputs: list[tuple[str, os.stat_result]]) -> list[list[str]]:
    """Groups (sorted, each of 2+ paths) of inputs with byte-identical content, sorted by first path.

    Hashing only where needed: files are grouped by size (known from the walk); within a size,
    by the CRC-32 of their last 4 KiB (photo files of one size almost always differ there);
    only files that still match are read whole and compared by SHA-256.  A file that cannot be
    read is left out (its decode will be rejected as unreadable).  Links to one file are one
    file read twice, and are duplicates too.
    """
    by_size: dict[int, list[str]] = {}
    for rel, st in inputs:
        by_size.setdefault(st.st_size, []).append(rel)
    groups = []
    for size, paths in by_size.items():
        if len(paths) < 2 or size == 0:  # empty files are rejected as empty, not grouped
            continue
        by_tail: dict[int, list[str]] = {}
        for rel in paths:
            crc = _tail_crc(os.path.join(root, rel), size)
            if crc is not None:
                by_tail.setdefault(crc, []).append(rel)
        for cands in by_tail.values():
            if len(cands) < 2:
                continue
            by_hash: dict[str, list[str]] = {}
            for rel in cands:
                try:
                    with open(os.path.join(root, rel), "rb") as fh:
                        digest = hashlib.sha256(fh.read()).hexdigest()
                except OSError:
                    continue
                by_hash.setdefault(digest, []).append(rel)
            groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)
