"""What a study will cost before it runs: the jobs cached and to compute, and their time.

``prunescope plan STUDY.toml`` (and ``compute``, before it starts) walks the
study's whole job graph, as the executor will (every run, every lottery round
and other prerequisite, every analysis), and estimates each job to compute from
the work it does and this machine's measured speed:

- **Work.** A job pushes images through its network: training images (epochs
  x training set; fine-tuning methods their ``finetune_epochs``; the
  instability test its two copies; SupCon's two views), forward-only images
  (evaluation, corruptions, path and grid points, BatchNorm resets) and
  Hessian-vector products (about two training steps each). Each image costs
  the network's multiply-accumulates (MACs, counted on a storage-free copy).
- **Speed.** A calibration measures training and forward MACs per second on
  this machine and device for a small MLP and a small conv net (about 2 s),
  once: it is remembered per machine (:func:`calibration_dir`).
- **What similar entries took.** Entries already in the store record their
  wall time; per kind, the median ratio of measured to estimated time over the
  study's cached entries corrects the estimate of the same kind's jobs.

- **The machine's load.** Other work shares the cores: jobs without stored
  timings are scaled by ``max(1, (load average + workers) / cores)``.

It is an estimate: a process pool divides the wall time by about its workers,
and the first job of a process pays its start-up.
``benchmarks/plan_accuracy.py`` measures how close it comes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analysis import device as devices
from analysis.store import Store

#: Seconds every job pays whatever its size (store write, data on hand, set-up).
JOB_OVERHEAD_S = 0.3
#: Seconds of one UMAP embedding of a few thousand points (CPU, umap-learn).
UMAP_SECONDS = 4.0
#: Test-set sizes (evaluation after each epoch).
TEST_IMAGES = {"cifar10": 10000, "fashion-mnist": 10000, "mnist": 10000, "digits": 359}
CALIBRATION_VERSION = 2
#: The batch the calibration times its steps at.
BATCH = 128
#: Batch of evaluation passes (forward only) in the estimate.
EVAL_BATCH = 512


# ---------------------------------------------------------------------------
# work


def model_macs(model_spec: Any, dataset: str) -> int:
    """Multiply-accumulates of one forward pass of one image (Linear and Conv2d layers).

    Counted with hooks on a storage-free (meta) copy of the network, so it costs
    no memory and no arithmetic.
    """
    from analysis.data import dataset_info
    from analysis.models import build_for

    info = dataset_info(dataset)
    total = 0

    def count(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_out = module.in_channels // module.groups * kh * kw
            total += int(output[0].numel()) * per_out

    with torch.device("meta"):
        net = build_for(model_spec, info)
        hooks = [m.register_forward_hook(count) for m in net.modules()]
        size = info.image_size
        net.eval()(torch.empty(1, info.in_channels, size, size))
    for hook in hooks:
        hook.remove()
    return max(total, 1)


def _run_of(spec: Any) -> Any:
    """The run whose network a job evaluates (None for jobs without one)."""
    for name in ("run", "run_a", "a"):
        if hasattr(spec, name):
            return getattr(spec, name)
    line = getattr(spec, "line", None)
    if line is not None and hasattr(line, "run_a"):
        return line.run_a
    for name in ("features", "corrupted"):
        inner = getattr(spec, name, None)
        if inner is not None and hasattr(inner, "run"):
            return inner.run
    runs = getattr(spec, "runs", None)
    return runs[0] if runs else None


def job_images(spec: Any) -> dict[str, float]:
    """Images a job pushes through its network: ``train``, ``forward``, ``hvp``; and ``umap``."""
    from analysis.train import train_set_size

    kind = spec.kind
    if kind == "run":
        n = train_set_size(spec.data)
        epochs = dict(spec.sparsity.options).get("finetune_epochs", spec.train.epochs)
        views = 2 if spec.train.objective == "supcon" else 1
        evals = round(spec.data.val_fraction * n) + TEST_IMAGES.get(spec.data.name, 0)
        return {"train": views * epochs * n, "forward": epochs * evals}
    if kind == "instability":
        n, epochs = train_set_size(spec.run.data), spec.run.train.epochs
        return {"train": 2 * epochs * n, "forward": spec.alphas * (spec.train_subset + 10000)}
    if kind == "connectivity":
        test = spec.test_subset or TEST_IMAGES.get(spec.run_a.data.name, 10000)
        return {"forward": spec.alphas * (2 * spec.train_subset + test)}
    if kind == "robustness":
        corrupted = spec.corrupted
        rows = (len(corrupted.names) or 15) * len(corrupted.severities)
        noise = len(spec.sigmas) * spec.trials
        return {"forward": (rows + noise) * corrupted.subset_size}
    if kind in ("landscape", "landscape_plane"):
        points = spec.grid ** getattr(spec, "dims", 2)
        return {"forward": 2 * points * spec.subset}
    if kind == "sharpness":
        return {"hvp": (spec.topk * spec.lanczos_iters + spec.hutchinson_samples) * spec.batch}
    if kind == "features":
        return {"forward": spec.subset_size}
    if kind == "umap":
        return {"umap": 1}
    return _more_images(spec)


def _more_images(spec: Any) -> dict[str, float]:
    """The kinds added with issues 16 and 17 (same units as :func:`job_images`)."""
    kind = spec.kind
    if kind == "hessian_density":
        return {"hvp": spec.probes * spec.lanczos_steps * spec.batch}
    if kind == "layer_sharpness":  # per layer, about a Lanczos run and the trace probes
        return {"hvp": 4 * (spec.lanczos_steps + spec.hutchinson_samples) * spec.batch}
    if kind == "convexity_map":  # two extreme eigenvalues at every grid point
        return {"hvp": spec.grid**2 * 2 * min(spec.maxiter, 100) * spec.batch}
    if kind == "sensitivity":
        evals = len(spec.levels) * len(spec.criteria) * spec.trials * 4  # about 4 layers
        return {"forward": evals * TEST_IMAGES.get(spec.run.data.name, 10000)}
    if kind == "quantization":
        return {"forward": len(spec.bits) * spec.draws * spec.subset_size}
    if kind == "compression":
        return {"forward": 2 * spec.batch * spec.repeats}
    if kind == "supermask":
        return {"forward": 2 * TEST_IMAGES.get(spec.run.data.name, 10000)}
    if kind == "curve":
        from analysis.train import train_set_size

        line = spec.line
        n = train_set_size(line.run_a.data)
        return {"train": spec.epochs * n, "forward": 2 * line.alphas * line.train_subset}
    return {}


# ---------------------------------------------------------------------------
# speed


def machine_id(device: torch.device, threads: int) -> str:
    """A name for this machine, device, thread count and torch build (the calibration's file)."""
    text = f"{platform.node()}|{platform.machine()}|{os.cpu_count()}|{devices.say(device)}"
    text += f"|{torch.__version__}|{threads}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (timing an asynchronous device)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _measure(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, seconds: float
) -> tuple[float, float]:
    """Training and forward images per second of ``net`` on one batch, each for ``seconds``."""
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step(train: bool) -> None:
        if train:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)

    rates = []
    for train in (True, False):
        for _ in range(3):  # warm-up: first-call allocations and kernel choices
            step(train)
        _synchronize(x.device)
        times: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(times) < 5:
            t0 = time.perf_counter()
            step(train)
            _synchronize(x.device)
            times.append(time.perf_counter() - t0)
        # The median step: a shared machine's stalls (another process holding a core
        # while two threads wait for each other) are the busy factor's business.
        rates.append(len(x) / statistics.median(times))
    return rates[0], rates[1]


def calibrate(device: torch.device, threads: int, seconds: float = 0.4) -> dict:
    """Measure this machine: per-step overhead, and MACs/s of an MLP and a LeNet (a few s).

    A step (batch 128) costs ``overhead + batch x MACs / rate``: the overhead
    (Python, optimizer, allocation; what dominates small networks) is a tiny
    MLP's step time, and each family's rate comes from a larger network's step
    time less that overhead. Measured with ``threads`` torch threads (a
    worker's share of the cores), for training and for forward passes.
    """
    from analysis.data import dataset_info
    from analysis.models import build_for
    from analysis.specs import ModelSpec

    info = dataset_info("fashion-mnist")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(BATCH, 1, 28, 28, generator=gen).to(device)
    y = torch.randint(0, 10, (BATCH,), generator=gen).to(device)
    out: dict[str, Any] = {
        "version": CALIBRATION_VERSION,
        "device": devices.say(device),
        "threads": threads,
    }
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        steps = {}
        for name, spec in (
            ("tiny", ModelSpec(arch="mlp", width=8, depth=1)),
            ("mlp", ModelSpec(arch="mlp", width=256)),
            ("conv", ModelSpec(arch="lenet")),
        ):
            torch.manual_seed(0)
            net = build_for(spec, info).to(device)
            train_rate, forward_rate = _measure(net, x, y, seconds)
            steps[name] = (
                BATCH / train_rate,
                BATCH / forward_rate,
                model_macs(spec, "fashion-mnist"),
            )
    finally:
        torch.set_num_threads(before)
    tiny_train, tiny_forward, tiny_macs = steps["tiny"]
    out["step_overhead_s"] = {"train": tiny_train, "forward": tiny_forward}
    for family in ("mlp", "conv"):
        train, forward, macs = steps[family]
        # What the bigger network's step takes beyond the tiny one's, per MAC; never
        # slower than its plain rate, never a negative time on a noisy measurement.
        out[family] = {
            "train_macs_per_s": BATCH * (macs - tiny_macs) / max(train - tiny_train, train / 10),
            "forward_macs_per_s": BATCH
            * (macs - tiny_macs)
            / max(forward - tiny_forward, forward / 10),
        }
    out["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return out


def calibration_dir(store: Store) -> Path:
    """Where calibrations are remembered: ``$PRUNESCOPE_CALIBRATION``, else the user's cache
    folder (``$XDG_CACHE_HOME/prunescope``, else ``~/.cache/prunescope``), so every store on
    this machine shares them; the store's ``.calibration`` where there is no home."""
    if os.environ.get("PRUNESCOPE_CALIBRATION"):
        return Path(os.environ["PRUNESCOPE_CALIBRATION"])
    base = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if Path.home().exists() else ""
    )
    return Path(base) / "prunescope" / "calibration" if base else Path(store.root) / ".calibration"


def calibration(store: Store, device: torch.device, threads: int, *, refresh: bool = False) -> dict:
    """This machine's calibration: read from the store, or measured now and remembered."""
    path = calibration_dir(store) / f"{machine_id(device, threads)}.json"
    if not refresh and path.exists():
        try:
            doc = json.loads(path.read_text())
            if doc.get("version") == CALIBRATION_VERSION:
                return doc
        except (OSError, ValueError):
            pass  # unreadable: measure again
    doc = calibrate(device, threads)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))
    except OSError:
        pass  # a read-only store: the estimate still stands, it is just measured again next time
    return doc


def estimate_seconds(spec: Any, cal: dict, macs_cache: dict | None = None) -> float:
    """Estimated seconds of one job on the calibrated machine (see the module docstring).

    Training: ``steps x overhead + images x MACs / rate`` (steps at the run's
    batch size); forward passes the same at :data:`EVAL_BATCH`.
    """
    macs_cache = {} if macs_cache is None else macs_cache
    work = job_images(spec)
    run = _run_of(spec) if spec.kind != "run" else spec
    seconds = JOB_OVERHEAD_S + UMAP_SECONDS * work.get("umap", 0)
    if run is None:
        return seconds
    key = (run.model, run.data.name)
    if key not in macs_cache:
        macs_cache[key] = model_macs(run.model, run.data.name)
    macs = macs_cache[key]
    rates = cal["mlp" if run.model.arch == "mlp" else "conv"]
    overhead = cal.get("step_overhead_s", {"train": 0.0, "forward": 0.0})
    train_images = work.get("train", 0) + 2 * work.get("hvp", 0)
    train = train_images * macs / rates["train_macs_per_s"]
    train += train_images / run.train.batch_size * overhead["train"]
    forward_images = work.get("forward", 0)
    forward = forward_images * macs / rates["forward_macs_per_s"]
    forward += forward_images / EVAL_BATCH * overhead["forward"]
    return seconds + train + forward


# ---------------------------------------------------------------------------
# the plan


@dataclass
class PartCost:
    """One kind of job: how many are cached, how many to compute, and their estimated time."""

    kind: str
    cached: int = 0
    todo: int = 0
    seconds: float = 0.0
    correction: float | None = None  # measured / estimated over cached entries of this kind


@dataclass
class Plan:
    """The jobs of a study and their estimated cost on this machine."""

    parts: dict[str, PartCost] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    workers: int = 1
    #: How much slower than calibrated the machine's other work makes the jobs (>= 1).
    busy: float = 1.0
    load: float = 0.0

    @property
    def seconds(self) -> float:
        """Estimated wall seconds of everything to compute, with ``workers`` jobs at once."""
        return sum(p.seconds for p in self.parts.values()) / max(self.workers, 1)

    def to_json(self) -> dict:
        """The plan as JSON (``prunescope plan --json``)."""
        return {
            "parts": [vars(p) for p in self.parts.values()],
            "to_compute": sum(p.todo for p in self.parts.values()),
            "cached": sum(p.cached for p in self.parts.values()),
            "estimated_seconds": round(self.seconds, 1),
            "workers": self.workers,
            "busy_factor": round(self.busy, 2),
            "load_average": round(self.load, 2),
            "calibration": self.calibration,
        }


def plan_study(
    study: Any,
    store: Store,
    *,
    device: torch.device | None = None,
    workers: int = 1,
    threads: int | None = None,
    only: str | None = None,
    refresh: bool = False,
) -> Plan:
    """Every job ``compute`` would run for ``study`` (or its part ``only``) and its estimated time.

    ``workers`` jobs at once (each estimated at one torch thread's speed;
    ``threads`` is accepted for the record); ``refresh`` measures the machine again.
    """
    from analysis.executor.graph import plan_jobs
    from analysis.plan import study_specs

    device = device if device is not None else devices.current()
    # One thread: on a shared CPU two threads' step times swing 100x with the load
    # (they wait on each other whenever another process holds a core), and small
    # networks gain little from a second thread anyway. ``threads`` is kept for
    # the record; the estimate assumes one thread's speed per job.
    del threads
    cal = calibration(store, device, 1, refresh=refresh)
    plan = Plan(calibration=cal, workers=workers)
    jobs = [job for job in plan_jobs(study_specs(study, only), chunks=1) if job.rows is None]
    macs: dict = {}
    ratios: dict[str, list[float]] = {}
    todo: list[tuple[str, float]] = []
    for job in jobs:
        kind = job.spec.kind
        part = plan.parts.setdefault(kind, PartCost(kind))
        guess = estimate_seconds(job.spec, cal, macs)
        entry = store.load(job.spec) if store.exists(job.spec) else None
        if entry is not None:
            part.cached += 1
            took = entry.meta.get("seconds")
            if isinstance(took, int | float) and took > 0 and guess > 0:
                ratios.setdefault(kind, []).append(took / guess)
        else:
            part.todo += 1
            todo.append((kind, guess))
    for kind, part in plan.parts.items():
        if ratios.get(kind):
            part.correction = statistics.median(ratios[kind])
    plan.load, plan.busy = busy_factor(workers)
    for kind, guess in todo:
        part = plan.parts[kind]
        # Stored timings already carry the load they ran under; the calibration does not.
        part.seconds += guess * (part.correction or plan.busy)
    return plan


def busy_factor(workers: int) -> tuple[float, float]:
    """(1-minute load average, slowdown): the jobs share the cores with the machine's load.

    ``max(1, (load + workers) / cores)``: on an idle machine 1; on a 2-core
    machine at load 11 with 2 workers about 6.5 (the width sweep measured 5.5).
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return 0.0, 1.0
    return load, max(1.0, (load + workers) / devices.usable_cores())


def human_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 min 10 s"``, ``"2 h 05 min"``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def render(plan: Plan) -> list[str]:
    """The plan as lines of a table, then the total and how it was estimated."""
    lines = [f"{'part':<18}{'cached':>8}{'to compute':>12}{'estimate':>14}"]
    for p in plan.parts.values():
        fix = f"  (x{p.correction:.2f} from cached entries)" if p.correction else ""
        est = human_seconds(p.seconds / max(plan.workers, 1)) if p.todo else "-"
        lines.append(f"{p.kind:<18}{p.cached:>8}{p.todo:>12}{est:>14}{fix}")
    todo = sum(p.todo for p in plan.parts.values())
    cal = plan.calibration
    if plan.busy > 1.05:
        lines.append(
            f"the machine is busy (load {plan.load:.1f} on {devices.usable_cores()} cores): "
            f"jobs without timings in the store are estimated {plan.busy:.1f}x slower"
        )
    lines.append(
        f"total: {todo} jobs to compute, about {human_seconds(plan.seconds)}"
        f" with {plan.workers} worker{'s' if plan.workers != 1 else ''}"
        if todo
        else "total: everything is cached"
    )
    mlp = cal.get("mlp", {}).get("train_macs_per_s", 0) / 1e9
    lines.append(
        f"speed measured on {cal.get('device', '?')} at {cal.get('when', '?')}: "
        f"{mlp:.2f} GMAC/s training an MLP (an estimate; a busy machine is slower)"
    )
    return lines
