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
:func:`find_duplicates`, which hashes only files whose size equals another file's size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

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
    (each real folder once, so links never loop).
    """
    inputs: list[tuple[str, os.stat_result]] = []
    skipped: list[dict] = []
    root_st = os.stat(root)
    seen = {(root_st.st_dev, root_st.st_ino)}
    links: list[tuple[str, str, os.stat_result]] = []  # links to folders, followed after every real folder

    def skip(rel, reason):
        skipped.append({"path": shown(rel), "reason": reason})

    def enter(path: str, rel: str, st: os.stat_result):
        ident = (st.st_dev, st.st_ino)
        if ident in seen:  # a folder walked already (an ancestor, or another view of one)
            skip(rel, "link_loop")
            return
        seen.add(ident)
        try:
            names = set(os.listdir(path))
        except OSError:
            skip(rel, "unreadable_directory")
            return
        if _is_build(names):
            skip(rel, "build_output")
            return
        visit(path, rel + "/")

    def visit(folder: str, prefix: str):
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError:
            skip(prefix.rstrip("/") or ".", "unreadable_directory")
            return
        for e in entries:
            rel = prefix + e.name
            if not _decodable(e.name):
                skip(rel, "undecodable_name")
                continue
            if e.name.startswith("."):
                skip(rel, "hidden")
                continue
            is_link = False
            try:
                is_link = e.is_symlink()
                st = os.stat(e.path) if is_link else e.stat(follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    skip(rel, "link_loop")
                elif is_link:
                    skip(rel, "dangling_link")
                else:
                    skip(rel, "special_file")
                continue
            if stat.S_ISDIR(st.st_mode):
                if not is_link:
                    enter(e.path, rel, st)
                elif follow_links:
                    links.append((rel, e.path, st))
                else:
                    skip(rel, "directory_link")
            elif stat.S_ISREG(st.st_mode):
                if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                    inputs.append((rel, st))
                else:
                    skip(rel, "not_an_image_extension")
            else:
                skip(rel, "special_file")

    visit(root, "")
    # Real folders first, then links in path order: a folder is always walked under its own name
    # when it is inside the root, and each real folder once.
    while links:
        links.sort(key=lambda t: os.fsencode(t[0]))
        rel, path, st = links.pop(0)
        enter(path, rel, st)
    inputs.sort(key=lambda t: t[0])
    skipped.sort(key=lambda s: s["path"])
    return inputs, skipped


def find_duplicates(root: str, inputs: list[tuple[str, os.stat_result]]) -> list[list[str]]:
    """Groups (sorted, each of 2+ paths) of inputs with byte-identical content, sorted by first path.

    Only files whose size equals another input's size are read and hashed (SHA-256); a file
    that cannot be read is left out (its decode will be rejected as unreadable).
    """
    by_size: dict[int, list[str]] = {}
    for rel, st in inputs:
        by_size.setdefault(st.st_size, []).append(rel)
    groups = []
    for size, paths in by_size.items():
        if len(paths) < 2 or size == 0:  # empty files are rejected as empty, not grouped
            continue
        by_hash: dict[str, list[str]] = {}
        for rel in paths:
            try:
                with open(os.path.join(root, rel), "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            except OSError:
                continue
            by_hash.setdefault(digest, []).append(rel)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)
