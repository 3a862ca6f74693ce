"""``prunescope plan STUDY.toml``: what is cached, what will be computed, and how long it takes.

``compute`` prints the same estimate before it starts, and ``compute --dry-run``
prints it and stops. The estimate is :mod:`analysis.cost`'s.
"""

from __future__ import annotations

import argparse
import json

from analysis.errors import PrunescopeError


def add_parser(sub: argparse._SubParsersAction, common, device_option) -> None:
    """The ``plan`` subcommand's arguments."""
    p = sub.add_parser(
        "plan",
        help="list what a study has cached and what it would compute, with the estimated time",
    )
    p.add_argument("study", help="study TOML file")
    p.add_argument("--only", help="plan only this part")
    p.add_argument(
        "--workers", type=int, default=1, help="jobs at once, as for compute (default: 1)"
    )
    p.add_argument("--json", action="store_true", help="the plan as JSON")
    p.add_argument("--recalibrate", action="store_true", help="measure this machine's speed again")
    device_option(p)
    common(p)


def print_plan(study, store, *, device, workers: int, threads: int, only=None, **kw) -> None:
    """Print the plan's table and total (the lines ``plan`` and ``compute`` show)."""
    from analysis.cost import plan_study, render

    plan = plan_study(
        study, store, device=device, workers=workers, threads=threads, only=only, **kw
    )
    print(f"plan for study {study.name}: {_shape(study)}")
    for line in render(plan):
        print(f"  {line}")


def _shape(study) -> str:
    """``"4 settings x 3 seeds x 2 objectives; 48 runs"``: what the study sweeps."""
    parts = [f"{len(study.settings())} setting(s)", f"{len(study.seeds)} seed(s)"]
    if len(study.objectives) > 1:
        parts.append(f"{len(study.objectives)} objectives")
    return " x ".join(parts) + f"; {len(study.runs())} runs"


def study_for_plan(args: argparse.Namespace, resolve):
    """The study to plan: with its fallback dataset when needed, and as written when its
    data is not on this machine at all (a plan needs only the data's sizes)."""
    import sys

    from analysis.errors import DataError
    from analysis.study import load_study

    try:
        return resolve(args, args.study)
    except DataError as err:
        study = load_study(args.study)
        print(
            f"note: {study.data.name} is not on this machine; planning as if it were "
            f"({str(err).splitlines()[0]})",
            file=sys.stderr,
        )
        return study


def cmd_plan(args: argparse.Namespace, study, store) -> int:
    """Print (or write as JSON) the plan of a study; computes nothing."""
    from analysis import device as devices
    from analysis.cost import plan_study
    from analysis.executor.schedule import cpu_threads

    if args.workers < 1:
        raise PrunescopeError(f"--workers must be at least 1, got {args.workers}")
    check_only(args.only)
    device = devices.resolve(args.device)
    threads = cpu_threads(args.workers)
    if args.json:
        plan = plan_study(
            study,
            store,
            device=device,
            workers=args.workers,
            threads=threads,
            only=args.only,
            refresh=args.recalibrate,
        )
        print(json.dumps(plan.to_json(), indent=1))
        return 0
    print_plan(
        study,
        store,
        device=device,
        workers=args.workers,
        threads=threads,
        only=args.only,
        refresh=args.recalibrate,
    )
    return 0


def check_only(only: str | None) -> None:
    """Refuse an ``--only`` that names no part (checked here, not by argparse: listing the
    parts imports every analysis, and with it torch, before the command can start).

    Raises:
        PrunescopeError: naming the parts there are.
    """
    if only is not None:
        from analysis.parts import PARTS

        if only not in PARTS:
            raise PrunescopeError(f"--only must be one of {', '.join(PARTS)}, got {only!r}")
