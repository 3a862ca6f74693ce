"""IDX files (MNIST's and Fashion-MNIST's format), plain or gzipped, read without trusting them.

Every header is checked against the file's length before any array is made, so
a truncated or forged file is one :class:`~analysis.errors.DataError` line.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from analysis.errors import DataError

_IDX_LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IDX_IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions


def _read_bytes(path: Path) -> bytes:
    """The content of ``path``, gunzipped when it is a gzip file (by its magic bytes)."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != b"\x1f\x8b":
            return f.read()
        try:
            with gzip.GzipFile(fileobj=f) as g:
                return g.read()
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path} is not a readable gzip file: {err}") from err


def read_idx(path: str | Path, kind: Literal["images", "labels"]) -> np.ndarray:
    """Read an IDX file of unsigned bytes: kind 'images' -> (N, H, W), 'labels' -> (N,) uint8."""
    path = Path(path)
    magic_expected, ndim = (_IDX_IMAGE_MAGIC, 3) if kind == "images" else (_IDX_LABEL_MAGIC, 1)
    data = _read_bytes(path)
    header_len = 4 * (1 + ndim)
    if len(data) < header_len:
        raise DataError(f"{path} is not an IDX {kind} file: only {len(data)} bytes long")
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    magic, dims = int(header[0]), tuple(int(d) for d in header[1:])
    if magic != magic_expected:
        raise DataError(
            f"{path} is not an IDX {kind} file: magic number {magic}, expected {magic_expected}"
        )
    # math.prod: exact Python ints, so a garbage header cannot overflow into a "match".
    expected = header_len + math.prod(dims)
    if len(data) != expected:
        raise DataError(
            f"{path} is malformed: header says {dims} ({expected} bytes), file has {len(data)} bytes"
        )
    # Copy: frombuffer over bytes is read-only, and torch.from_numpy wants writable memory.
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (uncompressed first: faster)."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None
