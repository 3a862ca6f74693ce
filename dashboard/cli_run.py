"""What ``compute`` checks and says before it starts: precisions the devices can train, and
where the jobs run."""

from __future__ import annotations


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
