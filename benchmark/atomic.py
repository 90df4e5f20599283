"""Atomic file writes: readers see either the old file or the complete new one.

The one place the suite writes a file that someone else may read while it is written (records,
status files, checkpoints, datasets, reports). A temporary file in the target's folder is
written, flushed and fsynced, given the permissions a plain `open` would give under the
current umask (group-shared results folders stay readable), and `os.replace`d into place; on
any error, including a full disk, the temporary file is removed and the target is untouched.
Temporary names start with `.<name>.` and end with `.tmp`, so `remove_stale_temporaries` can
clean up after a process that was killed mid-write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = TMP_SUFFIX) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def remove_stale_temporaries(folder: Path | str, name: str) -> list[Path]:
    """Remove the temporary files a killed writer of `folder/name` left behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".{name}.*") if p.name.endswith((TMP_SUFFIX, ".part"))]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
