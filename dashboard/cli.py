"""The ``prunescope`` command: parses the command line and dispatches to each command.

Every command accepts ``--cache-dir`` (default ``$PRUNESCOPE_CACHE`` or ``./cache``)
and ``--data-root`` (default ``$PRUNESCOPE_DATA``). Errors the user can cause are
printed as one line and exit with status 2; nothing already computed is lost. A
command whose parts partly failed (compute jobs, export formats) says which, one
line each, and exits with status 1. The web server is started by
:mod:`dashboard.server`, the export made by :mod:`dashboard.export`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import traceback
from pathlib import Path

from analysis.errors import PrunescopeError
from dashboard import cli_plan, cli_run, known_warnings

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "assets" / "studies"
DEMO_STUDY = STUDIES / "demo.toml"


def _common(p: argparse.ArgumentParser) -> None:
    """Options every command takes."""
    p.add_argument("--cache-dir", help="result store (default: $PRUNESCOPE_CACHE or ./cache)")
    p.add_argument("--data-root", help="folder holding datasets (default: $PRUNESCOPE_DATA)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _executor_options(p: argparse.ArgumentParser) -> None:
    """Where ``compute`` and ``demo`` run their jobs (see analysis/executor.py)."""
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run jobs here (local, the default) or on Ray (a private local Ray, or --address)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="jobs at once: local with N>1 runs a process pool, one torch thread per core "
        "shared out; ray: at most N tasks (default: compute 1, demo one per core up to 4; "
        "every CPU on Ray)",
    )
    p.add_argument(
        "--address",
        help="Ray cluster to join, HEAD:PORT (default: start a local Ray bound to 127.0.0.1)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="compute again what failed before (by default it is reported with its reason)",
    )
    _device_option(p)
    p.add_argument(
        "--gpus-per-job",
        type=float,
        help="share of a GPU each job takes (0.5: two jobs per GPU at once; default: jobs "
        "spread evenly over the GPUs; Ray: its num_gpus)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the networks while training (an execution option, not in the "
        "cache key; compile time is reported)",
    )


def _device_option(p: argparse.ArgumentParser) -> None:
    """``--device``: where computations run (never part of a result's key)."""
    p.add_argument(
        "--device",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps "
        "(default: $PRUNESCOPE_DEVICE, else auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``prunescope``."""
    parser = argparse.ArgumentParser(
        prog="prunescope", description="See what pruning does to a neural network."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "compute", help="train every run of a study (and its analyses), skipping what is cached"
    )
    p.add_argument("study", help="study TOML file")
    p.add_argument(
        "--only",
        help="compute only this part: runs, representations, robustness, connectivity, "
        "landscape, spectrum, sensitivity, dessilbi, masks, compression, quantization",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    _executor_options(p)
    _common(p)
    cli_plan.add_parser(sub, _common, _device_option)
    p = sub.add_parser("show", help="summarise what a study has computed")
    p.add_argument("study", help="study TOML file")
    p.add_argument(
        "--json", action="store_true", help="machine-readable JSON (schema in docs/summary.md)"
    )
    _common(p)
    p = sub.add_parser(
        "check",
        help="vet a checkpoint against a study's model and evaluate it (read-only, runs no code)",
    )
    p.add_argument("checkpoint", help="safetensors file (or a tensors-only torch.save file)")
    p.add_argument("--study", required=True, help="study TOML file whose model it should fit")
    p.add_argument("--run", help="label of the study's run to compare with (default: the first)")
    p.add_argument("--masks", help="masks file (default: masks.safetensors beside the checkpoint)")
    _device_option(p)
    _common(p)
    p = sub.add_parser(
        "demo",
        help="compute the demo study (Fashion-MNIST MLP; digits if missing), then open the dashboard",
    )
    p.add_argument("--study", default=str(DEMO_STUDY), help=argparse.SUPPRESS)
    p.add_argument(
        "--no-dashboard",
        action="store_true",
        help="only compute and print the summary (also when $CI is 'true' or output is not a terminal)",
    )
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default: 8501)")
    _executor_options(p)
    _common(p)
    p = sub.add_parser(
        "export", help="write a study's figures: HTML report, PNG/SVG files, PPTX deck (read-only)"
    )
    p.add_argument("study", help="study TOML file")
    _export_options(p)
    _common(p)
    p = sub.add_parser("dashboard", help="open the web dashboard of a study (on 127.0.0.1)")
    p.add_argument(
        "study", nargs="?", default=str(DEMO_STUDY), help="study TOML file (default: the demo)"
    )
    p.add_argument(
        "--port", type=int, default=8501, help="port (default: 8501; the next free one if taken)"
    )
    _common(p)
    return parser


def _store(args: argparse.Namespace):
    """The store chosen by --cache-dir / $PRUNESCOPE_CACHE."""
    from analysis.store import Store, default_root

    return Store(Path(args.cache_dir) if args.cache_dir else default_root())


def _study(args: argparse.Namespace, path: str):
    """Load the study, switching to its fallback dataset (and saying so) when needed.

    Decided once per command: ``demo`` computes and then summarises the same
    study, even if the dataset appears (or goes) in between.
    """
    from analysis.study import load_study, with_available_data

    resolved = getattr(args, "resolved_studies", None)
    if resolved is None:
        resolved = args.resolved_studies = {}
    if path not in resolved:
        study, note = with_available_data(load_study(path), args.data_root)
        if note:
            print(f"note: {note.splitlines()[0]}", file=sys.stderr)
        resolved[path] = study
    return resolved[path]


def cmd_compute(args: argparse.Namespace) -> int:
    """Compute a study's runs and analyses; failed jobs are reported, the rest go on."""
    from analysis.executor import RayExecutor, make_executor
    from analysis.plan import compute_study

    cli_plan.check_only(args.only)
    workers = getattr(args, "workers", None)
    workers = 1 if workers is None else workers
    if workers < 1:
        raise PrunescopeError(f"--workers must be at least 1, got {workers}")
    executor = make_executor(
        getattr(args, "executor", "local"),
        workers=workers,
        address=getattr(args, "address", None),
        retry_failed=getattr(args, "retry_failed", False),
        device=getattr(args, "device", None),
        gpus_per_job=getattr(args, "gpus_per_job", None),
    )
    from analysis import device as devices

    devices.set_compile(getattr(args, "compile", False))
    try:
        study = _study(args, args.study)
        cli_run.check_precision(study, executor)
    except BaseException:
        executor.close()
        raise
    print(f"device: {cli_run.where(executor)}")
    if not isinstance(executor, RayExecutor):
        cli_plan.print_plan(
            study,
            _store(args),
            device=executor.devices[0],
            workers=executor.parallelism,
            threads=executor.threads,
            only=args.only,
        )
    if getattr(args, "dry_run", False):
        executor.close()
        return 0
    bars = cli_run.Bars(args.quiet)
    try:
        report = compute_study(
            study, _store(args), only=args.only, progress=bars, log=print, executor=executor
        )
    finally:
        executor.close()
        bars.close()
    print(
        f"{report.done} computed, {report.cached} cached, {len(report.failed)} failed ({report.seconds:.1f} s)"
    )
    for label, err in report.failed:
        print(f"FAILED {label}: {err}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print the study summary (a table, or JSON with --json)."""
    from analysis.plan import summarize

    study = _study(args, args.study)
    summary = summarize(study, _store(args))
    if args.json:
        print(json.dumps(json_safe(summary), indent=1, allow_nan=False, default=_json_default))
        return 0
    print(
        f"study {summary['study']['name']}: {summary['study']['dataset']} / {summary['study']['arch']}"
    )
    print(f"{'run':32s} {'sparsity':>9s} {'test acc':>9s} {'loss':>7s} {'nonzero':>9s}  status")
    for r in summary["runs"]:
        acc = f"{100 * r['test_acc']:.2f}%" if r.get("test_acc") is not None else "-"
        loss = f"{r['test_loss']:.3f}" if r.get("test_loss") is not None else "-"
        sp = (
            f"{100 * r['achieved_sparsity']:.1f}%"
            if r.get("achieved_sparsity") is not None
            else "-"
        )
        nz = str(r.get("nonzero_params") or "-")
        print(f"{r['label']:32s} {sp:>9s} {acc:>9s} {loss:>7s} {nz:>9s}  {r['status']}")
    for r in summary["runs"]:
        if r["status"] == "failed":  # say why, not only that it failed
            print(f"FAILED {r['label']}: {r.get('error') or 'no reason recorded'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a colleague's checkpoint against the study's model; report sparsity and accuracy."""
    from analysis import api
    from analysis import device as devices
    from analysis.checkpoints import inspect_checkpoint

    devices.use(args.device)
    study = _study(args, args.study)
    runs = {r.label: r for r in study.runs()}
    if args.run is not None and args.run not in runs:
        raise PrunescopeError(f"--run must be one of {sorted(runs)}. Got {args.run!r} instead.")
    run = runs[args.run] if args.run is not None else next(iter(runs.values()))
    report = inspect_checkpoint(args.checkpoint, run, masks_path=args.masks)
    print(
        f"{report['path']}: valid "
        f"{study.model.arch} checkpoint ({report['tensors']} tensors) for study {study.name}"
    )
    print(f"masks: {report['masks'] or 'none (sparsity from exact zeros)'}")
    for name, frac in report["layer_sparsity"].items():
        print(f"  {name:40s} {100 * frac:6.2f}% pruned")
    print(
        f"overall sparsity {100 * report['sparsity']:.2f}%; test accuracy "
        f"{100 * report['test_acc']:.2f}%, loss {report['test_loss']:.4f} ({report['data_source']})"
    )
    store = _store(args)
    if store.exists(run):  # compared with the study's own run; nothing is written
        mine = api.get(run, store=store, compute=False).metrics
        print(
            f"the study's run {run.label}: test accuracy {100 * mine['test_acc']:.2f}%, "
            f"sparsity {100 * mine['achieved_sparsity']:.2f}%"
        )
    return 0


def json_safe(value: object) -> object:
    """The summary with every NaN or infinite float turned into null (the contract's 'not computed')."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _json_default(value: object) -> object:
    """JSON for numpy scalars and other simple objects."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _start_server(args: argparse.Namespace):
    """Start the dashboard's server for ``args.study`` (see :mod:`dashboard.server`)."""
    from analysis.store import default_root
    from dashboard import server

    cache = Path(args.cache_dir) if args.cache_dir else default_root()
    return server.start_dashboard(
        args.study, port=args.port, cache_dir=cache, data_root=args.data_root
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Compute the demo study, print its summary, then open the dashboard on it."""
    from analysis.device_names import EVERYWHERE, requested

    args.only = None
    opens = not (args.no_dashboard or os.environ.get("CI") == "true" or not sys.stdout.isatty())
    # The server starts first: its start-up (importing torch and the analyses) overlaps
    # this process's own imports and its check of the store, and pages show results as
    # they land. A device that may not be there is checked before (nothing written).
    early = opens and requested(getattr(args, "device", None)) in EVERYWHERE
    # A SIGTERM before serving stops the server too (it runs in a process group of its own).
    previous = signal.signal(signal.SIGTERM, _terminated) if opens else None
    dashboard = _start_server(args) if early else None
    # Its address is printed as soon as it answers: the browser loads while this checks.
    announced = dashboard.announce() if dashboard else None
    try:
        from analysis import device as devices

        devices.resolve(getattr(args, "device", None))
        cached = _all_cached(args)
        if announced is not None:
            announced()  # the address line comes before anything else is printed
        if args.workers is None:  # independent runs side by side: one thread each beats
            # threads that spin against each other (bench_threads.py)
            args.workers = demo_workers()
        if opens and dashboard is None:
            dashboard = _start_server(args)
        name = Path(args.study).name
        if cached:  # a second demo: no plan to print, no pass to make
            print(f"prunescope demo: every result of {name} is in the store")
            status = 0
        else:
            print(f"prunescope demo: computing {name} (cached results are reused)")
            status = cmd_compute(args)
        args.json = False
        cmd_show(args)
    except BaseException:
        if dashboard is not None:
            dashboard.stop()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if dashboard is None:
        return status
    return dashboard.serve() or status


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM handler of a demo that has started its server: stop as Ctrl+C does."""
    raise KeyboardInterrupt


def _all_cached(args: argparse.Namespace) -> bool:
    """Whether every result the study asks for is in the store already (a second demo)."""
    from analysis import api
    from analysis.plan import study_specs

    store = _store(args)
    return all(api.exists(spec, store) for spec in study_specs(_study(args, args.study), None))


def demo_workers() -> int:
    """Jobs the demo runs at once: one per core this process may use, at most 4 (the
    demo's two seeds and its analyses give few more independent jobs than that)."""
    from analysis import device as devices

    return max(1, min(devices.usable_cores(), 4))


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard of a study on 127.0.0.1 until Ctrl+C."""
    return _start_server(args).serve()


def _export_options(p: argparse.ArgumentParser) -> None:
    """The export's view: the sidebar's filters (or a copied link), figures, barrier."""
    p.add_argument("--out", help="folder to write into (created if needed)")
    p.add_argument("--format", default="html,png,svg,pptx", help="html,png,svg,pptx (default: all)")
    p.add_argument("--presentation", action="store_true", help="large fonts in HTML, images too")
    for name in ("setting", "method", "sparsity", "seed", "objective"):
        plural = "sparsities" if name == "sparsity" else f"{name}s"
        p.add_argument(f"--{name}", action="append", help=f"only these {plural} (a,b)")
    p.add_argument("--view", help="a dashboard link ('?method=a&seed=0'): export that view")
    p.add_argument("--figures", default="", help="names, sections or globs (see --list)")
    p.add_argument("--list", action="store_true", help="list the view's figures and stop")
    p.add_argument(
        "--barrier",
        default="barrier_entezari",
        help="barrier drawn: barrier_entezari (default), barrier_rebasin, accuracy_barrier, "
        "error_barrier",
    )


def cmd_export(args: argparse.Namespace) -> int:
    """Export a study's cached figures (never computes); say what is missing and where it went."""
    from dashboard import export
    from dashboard.figures import theme_for

    filters = export.filters_of(args.view, **{n: getattr(args, n) for n in export.FILTER_NAMES})
    study = _study(args, args.study)
    if args.list:
        print("\n".join(export.figure_list(study, _store(args), filters, args.barrier)))
        return 0

    def progress(task: str, done: float, total: float) -> None:
        """One line per step (quiet: none)."""
        if not args.quiet and done < total:
            print(f"[{int(done) + 1}/{int(total)}] {task}", flush=True)

    report = export.export_study(
        study,
        _store(args),
        args.out,
        args.format.split(","),
        theme=theme_for(args.presentation),
        progress=progress,
        filters=filters,
        figures=args.figures.split(","),
        barrier=args.barrier,
    )
    for line in report.missing:
        print(f"not computed, left out: {line}", file=sys.stderr)
    if report.missing:
        print(f"compute them with: prunescope compute {args.study}", file=sys.stderr)
    seconds = f"{report.seconds:.1f} s"
    files = f"{len(report.written)} file{'s' if len(report.written) != 1 else ''}"
    print(f"{report.figures} figures, {files} written ({seconds}):")
    for path in report.written:
        print(f"  {path}")
    for fmt, reason in report.failed.items():
        print(f"prunescope: export: {fmt} failed: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


COMMANDS = {
    "compute": cmd_compute,
    "show": cmd_show,
    "plan": lambda args: cli_plan.cmd_plan(
        args, cli_plan.study_for_plan(args, _study), _store(args)
    ),
    "check": cmd_check,
    "demo": cmd_demo,
    "dashboard": cmd_dashboard,
    "export": cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``prunescope`` console script."""
    args = build_parser().parse_args(argv)
    known_warnings.install()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.data_root:
        os.environ["PRUNESCOPE_DATA"] = args.data_root
    try:
        return COMMANDS[args.command](args)
    except PrunescopeError as err:
        print(f"prunescope: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunescope: interrupted; finished results are kept in the store", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (a bug, or a library's surprise: one line, never a traceback)
        where = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
        place = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
        text = " ".join(str(err).split())[:300]
        print(f"prunescope: error: {type(err).__name__}: {text}{place}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
