"""Atomic file writes: a temporary sibling, then one rename over the target.

A crash or kill mid-write leaves the earlier file intact (or no file), never half of one. The
file gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask):
`tempfile.mkstemp` alone would leave it ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing", "write_bytes", "write_text"]


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def replacing(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary sibling of `path` to write; renames it over `path` on success.

    On an exception the temporary file is removed and `path` is left as it was.

    Args:
        path: the file to (re)place. Its folder must exist.
        suffix: the temporary name's ending, for writers that choose the format by it
            (``".png"``, ``".npz"``, ``".keras"``). Defaults to ``""``.

    Example:

    >>> with replacing("/tmp/kerasnn-doctest.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically; returns `path`."""
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically; returns `path`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
