"""What ``compute`` checks and says before it starts (precisions the devices can train,
where the jobs run) and the progress bars it draws while it runs."""

from __future__ import annotations

import os
import sys


def check_precision(study, executor) -> None:
    """Refuse a recipe the devices cannot train (fp16 on the CPU) before anything is written."""
    from analysis.executor import RayExecutor
    from analysis.training_types import check_precision as refuse

    if isinstance(executor, RayExecutor):
        return  # checked where each task runs
    for device in executor.devices:
        for precision in sorted({run.train.precision for run in study.runs()}):
            refuse(precision, device)


def where(executor) -> str:
    """Where the jobs run, for people: devices, workers and their threads."""
    from analysis import device as devices
    from analysis.executor import RayExecutor

    if isinstance(executor, RayExecutor):
        return f"Ray tasks ({executor._device})"
    names = ", ".join(devices.say(d) for d in executor.devices)
    return (
        f"{names}; {executor.parallelism} job(s) at once, {executor.threads} torch thread(s) each"
    )


class Bars:
    """A progress callback drawing one tqdm bar per task (quiet: draws nothing)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet or not sys.stderr.isatty() and os.environ.get("CI") == "true"
        self.bars: dict = {}

    def __call__(self, task: str, done: float, total: float) -> None:
        """Update (or open, or close) the bar of ``task``."""
        if self.quiet:
            return
        from tqdm import tqdm

        bar = self.bars.get(task)
        if bar is None:
            bar = self.bars[task] = tqdm(
                total=total or None, desc=task[:48], leave=False, dynamic_ncols=True
            )
        bar.n = done
        bar.refresh()
        if total and done >= total:
            bar.close()
            del self.bars[task]

    def close(self) -> None:
        """Close every open bar."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
