"""Output files of a run (JSON summary, HTML report): written atomically, checked for writability at start-up.

``write_atomic(path, text)`` writes a temporary file beside ``path`` and renames it over ``path``: a reader
(a CI step, a browser) sees the old file or the whole new one, never half a file, and a write that fails
leaves the previous file in place. ``unwritable_reason(path)`` tells, before the run starts, why a file
could not be written there (its folder cannot be created, the path is a folder, the folder refuses new
files), so an unwritable output stops the run at start-up instead of losing its verdict at the end.

Pure: no Locust, no gevent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["unwritable_reason", "write_atomic"]


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename; creates the folder.

    Raises ``OSError`` when it cannot; the temporary file is removed then and ``path`` is left as it was.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


def unwritable_reason(path: str | Path) -> str | None:
    """None when a file can be written at ``path`` (by ``write_atomic``), else why not, in words.

    Creates the folder when missing (as the write would); leaves nothing else behind.
    """
    out = Path(path)
    if out.is_dir():
        return "it is a folder"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"its folder {out.parent} cannot be created: {exc.strerror or exc}"
    if not out.parent.is_dir():
        return f"{out.parent} is not a folder"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".check", dir=out.parent)
    except OSError as exc:
        return f"no file can be created in {out.parent}: {exc.strerror or exc}"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None
