"""Processes prunescope starts (kaleido's browser, the dashboard's server): bounded and ended whole.

A process that starts but never answers must not hang the command that started
it. Every start is therefore waited for with a deadline (:func:`start_timeout`,
``$PRUNESCOPE_START_TIMEOUT`` overrides it), a missed deadline is one
:class:`StartTimeout` line saying what did not answer and after how long, and what
was started is ended with its whole process group (:func:`end_group`): the
browser's and the server's own children go with them.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess

from analysis.errors import PrunescopeError, SpecError

#: Environment variable overriding every start deadline (seconds; tests make it small).
START_TIMEOUT_ENV = "PRUNESCOPE_START_TIMEOUT"


class StartTimeout(PrunescopeError):
    """An external process started but did not answer before its deadline."""


def start_timeout(default: float) -> float:
    """Seconds to wait for a started process to answer: ``$PRUNESCOPE_START_TIMEOUT`` or ``default``.

    Raises:
        SpecError: the variable is set but is not a positive, finite number.
    """
    raw = os.environ.get(START_TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SpecError(
            START_TIMEOUT_ENV, "a positive number of seconds", raw, owner="the environment"
        )
    return value


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group led by ``proc`` (or to ``proc`` alone where there is none)."""
    if hasattr(os, "killpg"):
        # The processes we start lead their own session (start_new_session=True), so
        # their group id is their pid; a group that is already gone is fine.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
            return
    if proc.poll() is None:
        proc.send_signal(sig)


def end_group(proc: subprocess.Popen, *, grace: float = 5.0) -> int | None:
    """End ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds.

    Safe to call more than once and on a process that has already exited (its
    children, if any are left, are still ended). Returns the exit status, or None
    when even SIGKILL did not end it within ``grace`` seconds.
    """
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    _signal_group(proc, signal.SIGTERM)
    try:
        status = proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, kill)
        try:
            status = proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            return None
    _signal_group(proc, kill)  # children that outlived their leader (a browser's renderers)
    return status
