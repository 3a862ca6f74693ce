"""Walking a grid row by row: finished rows saved (atomically) as they come, resumed after a stop.

Rows are written to ``store.partial_dir(spec)`` through
:func:`analysis.atomic.write_atomic` as ``row_<i>.npz`` (``loss``, ``acc``), so an
interrupted computation (a kill, a full disk) leaves only whole rows behind and
the next one starts at the first missing row; a damaged row file is recomputed,
never served.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.atomic import write_atomic
from analysis.landscape.batched import (
    DTYPES,
    EngineChoice,
    batched_engine,
    choose_engine,
    chunk_size,
)
from analysis.landscape.engine import SurfaceProblem

#: Grid points also evaluated in fp32 when the surface is computed in bf16.
CHECK_POINTS = 5


def grid_axis(grid: int, span: float) -> np.ndarray:
    """``span * linspace(-1, 1, grid)`` (grid,) with the middle point exactly 0 for odd grids."""
    axis = span * np.linspace(-1.0, 1.0, grid)
    if grid % 2:
        axis[grid // 2] = 0.0
    return axis


def row_path(partial: Path, i: int) -> Path:
    """The file of row ``i`` in a partial-grid folder."""
    return partial / f"row_{i:05d}.npz"


def _save_row(path: Path, i: int, loss: np.ndarray, acc: np.ndarray, *, label: str = "") -> None:
    """Write row ``i`` (loss, acc: (X,)) atomically; StoreError naming the surface, path and reason."""
    buf = io.BytesIO()
    np.savez(buf, loss=loss, acc=acc)
    what = f"grid row {i} of {label!r}" if label else f"landscape grid row {i}"
    write_atomic(row_path(path, i), buf.getvalue(), what=what)


def _load_row(path: Path | None, i: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Row ``i`` if a complete chunk of length ``n`` is there, else None (damaged: ignored)."""
    if path is None:
        return None
    target = row_path(path, i)
    if not target.exists():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            loss, acc = z["loss"], z["acc"]
    except (OSError, ValueError, KeyError):
        return None
    if loss.shape != (n,) or acc.shape != (n,):
        return None
    return loss, acc


def compute_grid(
    problem: SurfaceProblem,
    xs: np.ndarray,
    ys: np.ndarray | None = None,
    *,
    engine: str = "auto",
    precision: str = "fp32",
    partial: Path | None = None,
    on_row: Callable[[int, int], None] | None = None,
    only: range | None = None,
    label: str = "",
) -> dict[str, np.ndarray]:
    """Loss and accuracy on the grid ``xs`` (x ``ys``), row by row, resumable.

    Returns ``loss``/``acc`` of shape (len(xs),) for a line or (len(ys),
    len(xs)) for a plane (row i is ``ys[i]``), ``evaluated_rows``: the rows
    computed by this call (the others were read from ``partial``), and
    ``engine``: the engine record (:meth:`EngineChoice.record`; chosen before
    the first row this call evaluates, by :func:`choose_engine`, which on the
    CPU keeps the pointwise engine and elsewhere times both). ``on_row(i,
    rows)`` is called after each row is saved; an exception from it interrupts.
    ``only``: visit just these rows (a chunk run as its own job; the others stay 0).
    ``label`` names the surface in a write error.

    Raises:
        StoreError: a finished row could not be written (one line: the surface,
            the row file, the step and the reason); the rows written before it
            stay valid and a later call resumes there.
    """
    rows = [None] if ys is None else list(ys)
    loss = np.zeros((len(rows), len(xs)))
    acc = np.zeros((len(rows), len(xs)))
    evaluated: list[int] = []
    choice: EngineChoice | None = None
    group: list[int] = []  # missing rows evaluated together (the batched engine's chunk)
    per_call = 1

    def finish(i: int) -> None:
        """Row ``i`` is in ``loss``/``acc``: say so (an exception from on_row interrupts)."""
        if on_row is not None:
            on_row(i + 1, len(rows))

    def flush() -> None:
        """Evaluate the rows of ``group`` in one call, save each, say each."""
        points = np.concatenate([_row_points(xs, rows[i]) for i in group])
        values = _evaluate(problem, points, choice, precision)
        for n, i in enumerate(group):
            at = slice(n * len(xs), (n + 1) * len(xs))
            loss[i], acc[i] = values[0][at], values[1][at]
            if partial is not None:
                _save_row(partial, i, loss[i], acc[i], label=label)
            evaluated.append(i)
            finish(i)
        group.clear()

    for i in range(len(rows)):
        if only is not None and i not in only:
            continue
        done = _load_row(partial, i, len(xs))
        if done is None:
            if choice is None:
                choice = choose_engine(problem, _row_points(xs, rows[i]), precision, engine)
                per_call = rows_per_call(problem, choice, precision, len(xs))
            group.append(i)
            if len(group) >= per_call:
                flush()
            continue
        if group:
            flush()
        loss[i], acc[i] = done
        finish(i)
    if group:
        flush()
    if ys is None:
        loss, acc = loss[0], acc[0]
    if choice is None and (problem.device.type == "cpu" or engine != "auto"):
        # decided without measuring: the same record whichever job evaluated the rows
        choice = choose_engine(problem, np.empty((0, len(xs))), precision, engine)
    record = choice.record() if choice is not None else {"name": None, "reason": NO_ROWS}
    return {
        "loss": loss,
        "acc": acc,
        "evaluated_rows": np.array(evaluated, dtype=np.int64),
        "engine": record,
    }


#: The engine record of a call that evaluated no row.
NO_ROWS = "no row evaluated by this call: every row was there already (resumed or chunk jobs)"


def rows_per_call(problem: SurfaceProblem, choice: EngineChoice, precision: str, row: int) -> int:
    """Rows evaluated together: 1 for the pointwise engine, a chunk's worth for the batched one.

    A batched call takes as many whole rows of ``row`` points as one chunk holds
    (:func:`~analysis.landscape.batched.chunk_size`), at least one; each row is
    still saved on its own.
    """
    if choice.name != "batched":
        return 1
    return max(1, chunk_size(problem, DTYPES[precision]) // max(row, 1))


def _row_points(xs: np.ndarray, b: float | None) -> np.ndarray:
    """The coefficients of one row's points: (X, 1) on a line, (X, 2) with second coefficient b."""
    a = np.asarray(xs, dtype=np.float64)[:, None]
    return a if b is None else np.concatenate([a, np.full_like(a, float(b))], axis=1)


def _evaluate(
    problem: SurfaceProblem, points: np.ndarray, choice: EngineChoice, precision: str
) -> tuple[np.ndarray, np.ndarray]:
    """(loss (P,), acc (P,)) at ``points`` (P, D) with the chosen engine."""
    if choice.name == "batched":
        return batched_engine(problem, precision).evaluate(points)
    out = [
        problem.evaluate(tuple(float(v) for v in c), engine=choice.pointwise, precision=precision)
        for c in points
    ]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def precision_error(
    problem: SurfaceProblem, xs: np.ndarray, ys: np.ndarray | None, loss: np.ndarray
) -> float:
    """Max relative loss error of ``loss`` (a bf16 grid) against fp32 at a few grid points.

    The points: the four corners (the two ends of a line) and the middle.
    Non-finite points are skipped (their count is reported beside the surface).
    """
    pts = [(0, 0), (0, len(xs) - 1), (0, len(xs) // 2)]
    if ys is not None:
        r = len(ys) - 1
        pts = [(0, 0), (0, len(xs) - 1), (r, 0), (r, len(xs) - 1), (r // 2, len(xs) // 2)]
    err = 0.0
    for i, j in pts[:CHECK_POINTS]:
        coeffs = (float(xs[j]),) if ys is None else (float(xs[j]), float(ys[i]))
        ref, _ = problem.evaluate(coeffs, precision="fp32")
        got = loss[j] if ys is None else loss[i, j]
        if np.isfinite(ref) and np.isfinite(got):
            err = max(err, abs(float(got) - ref) / max(abs(ref), 1e-12))
    return err
