"""One way to write a file: temp file + fsync + rename, and one way to say why it failed.

Every write prunescope makes outside a store commit (landscape grid rows, uploaded
studies, exports, cached corrupted images, failure records) goes through
:func:`write_atomic`, so a reader sees the old file or the new one, never half of
one, and a failed write raises one :class:`~analysis.errors.StoreError` line
naming what was written, where, the step and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

from analysis.errors import StoreError


def write_problem(err: OSError, where: Path) -> str:
    """Why a write failed, in words a user can act on (read-only store, disk full, ...)."""
    reason = err.strerror or str(err)
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{reason}: the store is read-only here ({where}); cached results can still be "
            "read, but computing needs a writable --cache-dir or $PRUNESCOPE_CACHE"
        )
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{reason}: the disk holding {where} is full; free some space and run again"
    return f"{reason} (check free disk space and permissions of {where})"


def write_synced(path: Path, data: bytes, *, atomic: bool = False) -> None:
    """Write ``data`` to ``path`` and fsync it (``atomic``: via a temp file + rename).

    Raises ``OSError`` as the OS reports it; callers that speak to a user use
    :func:`write_atomic`, which turns it into one line.
    """
    target = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}") if atomic else path
    try:
        with open(target, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if atomic:
            os.replace(target, path)
    except BaseException:
        if atomic:
            with contextlib.suppress(OSError):
                target.unlink()
        raise


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power cut (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path | str, data: bytes, *, what: str) -> Path:
    """Write ``data`` to ``path`` atomically; parents are created.

    ``what`` names the thing written for the error message (e.g. ``"landscape
    grid row 12 of 'dense s0'"``). Returns the path.

    Raises:
        StoreError: one line naming ``what``, the path, the step and the reason
            (disk full, read-only filesystem, permissions); the previous file, if
            any, is left as it was and no temp file is left behind.
    """
    path = Path(path)
    step = f"creating the folder {path.parent}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        step = "writing a temp file"
        write_synced(path, data, atomic=True)
    except OSError as err:
        raise StoreError(
            f"could not write {what} to {path} (while {step}): {write_problem(err, path)}"
        ) from err
    return path
