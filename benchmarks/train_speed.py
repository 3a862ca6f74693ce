"""Training speed: prunescope's ``fit`` against a bare PyTorch loop doing the same steps.

Usage (from the repository root; needs only torch and numpy, downloads nothing)::

    python3 benchmarks/train_speed.py                      # CPU: demo MLP, threads 1 and 2, fp32 and bf16
    python3 benchmarks/train_speed.py --device cuda --arch resnet20 --data cifar10-shape \\
        --json benchmarks/results/train_speed_cuda.json    # GPU: ResNet-20, bf16, batch 512

CPU mode: the demo MLP (784-512-512-10, Adam 1e-3, batch 128, cosine schedule)
on synthetic data of Fashion-MNIST's exact shape (54,000 x 1 x 28 x 28 train,
6,000 val, 10,000 test, 10 classes). In each round, ``fit`` and a bare loop
(same initial weights, optimizer, schedule, batch size and data order) each take
``--steps`` steps, interleaved (ABBA order); medians over ``--rounds`` rounds,
and the median of each round's ratio (robust to a shared machine's load), at torch
threads 1 and 2, in fp32 and bf16 (autocast in both loops; ``--bf16-steps``,
as a CPU without bf16 units emulates it, slowly). ``fit`` is stopped
at the last step (``stop_step``), so this times the loop itself; one more
comparison times a whole epoch with its history evaluation (val and test
every epoch) and snapshots, as the demo trains, and one keeps 90%-sparse masks
(``fit``'s KeepMasks against multiplying gradients and weights by hand).

GPU mode: ResNet-20 on synthetic 50,000 x 3 x 32 x 32 images (uint8 values
scaled to [0, 1], CIFAR-10's format), bf16 autocast, channels_last, random crop
and flip on the device, SGD (lr 0.1, momentum 0.9, wd 5e-4), batch 512. The
bare loop draws its augmentation and data order on the GPU (airbench style);
``fit`` draws them on the CPU (the same experiment on every device) and moves
them. Reports images/s of both (training steps only, and a whole epoch with
its evaluation) and their ratio.

``--max-seconds`` starts no new round of a comparison after that long (a
shared machine can be slow); at least one round always runs.

Results go to ``--json`` (default ``benchmarks/results/train_speed.json`` on
the CPU, ``benchmarks/results/train_speed_<device>.json`` otherwise).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from analysis import device as devices  # noqa: E402
from analysis.data import Splits, dataset_info  # noqa: E402
from analysis.feed import place  # noqa: E402
from analysis.models import build_for  # noqa: E402
from analysis.sparsity.base import random_masks  # noqa: E402
from analysis.specs import ModelSpec, TrainSpec  # noqa: E402
from analysis.train import Snapshots, fit, lr_factor, steps_per_epoch, sub_seed  # noqa: E402
from analysis.train_step import sync  # noqa: E402
from analysis.training_types import PRECISIONS  # noqa: E402

SHAPES = {  # --data: dataset info name, (train, val, test) sizes
    "fashion-mnist-shape": ("fashion-mnist", (54000, 6000, 10000)),
    "cifar10-shape": ("cifar10", (50000, 5000, 10000)),
}


def synthetic(name: str, sizes: tuple[int, int, int], seed: int = 0) -> Splits:
    """Random images in a dataset's exact format: uint8 values / 255, (N, C, S, S), 10 classes."""
    info = dataset_info(SHAPES[name][0])
    gen = torch.Generator().manual_seed(seed)
    shape = (info.in_channels, info.image_size, info.image_size)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
        return x.float().div_(255.0), torch.randint(0, info.num_classes, (n,), generator=gen)

    (tx, ty), (vx, vy), (sx, sy) = (split(n) for n in sizes)
    return Splits(info, "synthetic", tx, ty, vx, vy, sx, sy)


def sparse_masks(model, density: float = 0.1) -> dict[str, torch.Tensor]:
    """Seeded random masks keeping ``density`` of every prunable weight (a 90%-sparse run's)."""
    params = dict(model.named_parameters())
    shapes = {n: params[n].shape for n in model.prunable_names()}
    return random_masks(shapes, dict.fromkeys(shapes, density), torch.Generator().manual_seed(0))


def autocast(device: torch.device, precision: str):
    """The bare loop's autocast (a disabled one for fp32)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def gpu_augment(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and flip drawn on x's device: the bare loop's own."""
    n, c, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), device=x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = shifts[:, 0, None] + torch.arange(h, device=x.device)
    cols = shifts[:, 1, None] + torch.arange(w, device=x.device)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    flip = torch.rand(n, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def bare_loop(
    model, data: Splits, spec: TrainSpec, steps: int, *, gpu_style: bool, masks=None
) -> float:
    """Seconds for ``steps`` steps of a plain loop: same optimizer, schedule, batch and order
    (and ``masks`` kept the plain way: gradients and weights multiplied by them)."""
    device = next(model.parameters()).device
    conv = gpu_style and device.type == "cuda"
    if conv:
        model = model.to(memory_format=torch.channels_last)
    params = dict(model.named_parameters())
    pairs = [
        (params[n], m.to(device=device, dtype=torch.float32)) for n, m in (masks or {}).items()
    ]
    with torch.no_grad():
        for p, m in pairs:
            p.mul_(m)
    net = torch.compile(model) if devices.compiling() else model
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    n, bs = len(data.train_x), spec.batch_size
    total = steps_per_epoch(n, bs) * spec.epochs
    if gpu_style:
        perm = torch.randperm(n, device=data.train_x.device)
    else:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(sub_seed(0, "data")))
    model.train()
    sync(device)
    start = time.perf_counter()
    for s in range(steps):
        idx = perm[s * bs : (s + 1) * bs]
        x, y = data.train_x[idx].to(device), data.train_y[idx].to(device)
        if spec.augment:
            x = gpu_augment(x)
        if conv:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = spec.lr * lr_factor(s, total, spec.schedule)
        with autocast(device, spec.precision):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p, m in pairs:
            p.grad.mul_(m)
        opt.step()
        with torch.no_grad():
            for p, m in pairs:
                p.mul_(m)
    sync(device)
    return time.perf_counter() - start


def fit_loop(
    model, data: Splits, spec: TrainSpec, steps: int, *, epoch: bool = False, masks=None
) -> float:
    """Seconds of prunescope's ``fit`` for ``steps`` steps (stopped: no epoch record), or for a
    whole epoch with its history evaluation and snapshots (``epoch``)."""
    device = next(model.parameters()).device
    sync(device)
    start = time.perf_counter()
    if epoch:
        fit(model, data, spec, seed=0, masks=masks, callbacks=[Snapshots()])
    else:
        fit(model, data, spec, seed=0, masks=masks, stop_step=steps)
    sync(device)
    return time.perf_counter() - start


def compare(
    model0, data, spec, steps, rounds, *, gpu_style, epoch=False, deadline=None, masks=None
) -> dict:
    """Interleaved rounds of ``fit`` and the bare loop from the same weights; medians and ratio."""
    fits, bares = [], []

    def one_fit() -> None:
        fits.append(fit_loop(copy.deepcopy(model0), data, spec, steps, epoch=epoch, masks=masks))

    def one_bare() -> None:
        model = copy.deepcopy(model0)
        bares.append(bare_loop(model, data, spec, steps, gpu_style=gpu_style, masks=masks))

    for r in range(rounds):
        runs = [one_fit, one_bare]
        for run in runs if r % 2 == 0 else runs[::-1]:  # ABBA: drift hits both alike
            run()
        if deadline is not None and time.perf_counter() > deadline:
            break
    fit_s, bare_s = statistics.median(fits), statistics.median(bares)
    paired = statistics.median(f / b for f, b in zip(fits, bares, strict=True))
    return {
        "steps": steps,
        "rounds": len(fits),
        "fit_seconds": fits,
        "bare_seconds": bares,
        "fit_median_s": fit_s,
        "bare_median_s": bare_s,
        "fit_steps_per_s": steps / fit_s,
        "bare_steps_per_s": steps / bare_s,
        "ratio_fit_over_bare": fit_s / bare_s,
        "ratio_paired_median": paired,  # median of each round's fit / bare: robust to load
        "loadavg": list(os.getloadavg()),
    }


def cpu_mode(args) -> dict:
    """The demo MLP on Fashion-MNIST-shaped data: threads 1 and 2, fp32 and bf16."""
    data = synthetic("fashion-mnist-shape", SHAPES["fashion-mnist-shape"][1])
    torch.manual_seed(0)
    model0 = build_for(ModelSpec(arch="mlp", width=512, depth=2), data.info)
    out: dict = {"mode": "cpu", "model": "mlp 784-512-512-10", "batch": 128, "results": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for precision in args.precisions:
            spec = TrainSpec(epochs=1, batch_size=128, lr=1e-3, precision=precision)
            steps = args.steps if precision == "fp32" else args.bf16_steps
            compare(model0, data, spec, 10, 1, gpu_style=False)  # warm-up, not counted
            deadline = time.perf_counter() + args.max_seconds
            res = compare(
                model0, data, spec, steps, args.rounds, gpu_style=False, deadline=deadline
            )
            out["results"][f"threads{threads}_{precision}"] = res
            print(
                f"threads={threads} {precision}: fit {res['fit_steps_per_s']:.1f} steps/s, "
                f"bare {res['bare_steps_per_s']:.1f}, ratio {res['ratio_fit_over_bare']:.3f}"
            )
    torch.set_num_threads(args.threads[0])
    spec = TrainSpec(epochs=1, batch_size=128, lr=1e-3)
    deadline = time.perf_counter() + args.max_seconds
    res = compare(
        model0,
        data,
        spec,
        args.steps,
        args.rounds,
        gpu_style=False,
        deadline=deadline,
        masks=sparse_masks(model0),
    )
    out["results"][f"masked90_threads{args.threads[0]}_fp32"] = res
    print(f"90% masks kept: ratio {res['ratio_fit_over_bare']:.3f}")
    per_epoch = steps_per_epoch(len(data.train_x), 128)
    deadline = time.perf_counter() + args.max_seconds
    res = compare(
        model0,
        data,
        spec,
        per_epoch,
        args.epoch_rounds,
        gpu_style=False,
        epoch=True,
        deadline=deadline,
    )
    out["results"][f"epoch_threads{args.threads[0]}_fp32"] = res
    print(f"whole epoch with history evaluation: ratio {res['ratio_fit_over_bare']:.3f}")
    out["summary"] = summary(out["results"], args)
    return out


def summary(results: dict, args) -> dict:
    """The headline figures: fit / bare ratios, fit's steps/s per thread count, bf16 vs fp32."""
    doc: dict = {"target_ratio_fit_over_bare": 1.3}
    for key, res in results.items():
        doc[f"ratio_{key}"] = round(res["ratio_fit_over_bare"], 3)
        doc[f"paired_ratio_{key}"] = round(res["ratio_paired_median"], 3)
        doc[f"fit_steps_per_s_{key}"] = round(res["fit_steps_per_s"], 2)
    for threads in args.threads:
        fp32, bf16 = results.get(f"threads{threads}_fp32"), results.get(f"threads{threads}_bf16")
        if fp32 and bf16:
            speed = bf16["fit_steps_per_s"] / fp32["fit_steps_per_s"]
            doc[f"bf16_speed_over_fp32_threads{threads}"] = round(speed, 3)
    doc["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return doc


def gpu_mode(args, device: torch.device) -> dict:
    """ResNet-20 (or ``--arch``) on CIFAR-10-shaped data, bf16, channels_last, images/s."""
    sizes = tuple(args.sizes) if args.sizes else SHAPES[args.data][1]
    data = place(synthetic(args.data, sizes), device)
    torch.manual_seed(0)
    model0 = build_for(ModelSpec(arch=args.arch), data.info).to(device)
    spec = TrainSpec(
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=args.batch,
        epochs=1,
        augment=True,
        precision=args.precision,
    )
    per_epoch = steps_per_epoch(len(data.train_x), args.batch)
    steps = min(per_epoch, args.steps or per_epoch)
    deadline = time.perf_counter() + args.max_seconds
    warm = min(steps, 10)
    compare(model0, data, spec, warm, 1, gpu_style=True)  # cuDNN autotuning, compile, caches
    two = dataclasses.replace(spec, epochs=2)  # stopping at `steps` < the end: no epoch record
    res = compare(model0, data, two, steps, args.rounds, gpu_style=True, deadline=deadline)
    images = steps * args.batch
    res["fit_images_per_s"] = images / res["fit_median_s"]
    res["bare_images_per_s"] = images / res["bare_median_s"]
    res["ratio_images_per_s"] = res["fit_images_per_s"] / res["bare_images_per_s"]
    out: dict = {
        "mode": "gpu",
        "device": devices.describe(device),
        "arch": args.arch,
        "data": args.data,
        "sizes": list(sizes),
        "batch": args.batch,
        "precision": args.precision,
        "compile": devices.compiling(),
        "channels_last": device.type == "cuda",
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "data_on_device": data.train_x.device.type == device.type,
        "train_steps": res,
        "targets": {"images_per_s": 30000, "ratio_vs_bare": 0.9},
    }
    print(
        f"{args.arch} {args.precision} batch {args.batch} on {devices.say(device)}: "
        f"fit {res['fit_images_per_s']:.0f} images/s, bare {res['bare_images_per_s']:.0f}, "
        f"ratio {res['ratio_images_per_s']:.3f}"
    )
    if time.perf_counter() < deadline:
        masked = compare(
            model0,
            data,
            two,
            steps,
            args.rounds,
            gpu_style=True,
            deadline=deadline,
            masks=sparse_masks(model0),
        )
        masked["fit_images_per_s"] = images / masked["fit_median_s"]
        masked["bare_images_per_s"] = images / masked["bare_median_s"]
        out["masked90_train_steps"] = masked
        print(
            f"90% masks kept: fit {masked['fit_images_per_s']:.0f} images/s, "
            f"ratio {masked['ratio_fit_over_bare']:.3f} (time)"
        )
    if steps == per_epoch and time.perf_counter() < deadline:
        epoch = compare(model0, data, spec, per_epoch, 1, gpu_style=True, epoch=True)
        epoch["epoch_seconds_with_evaluation"] = epoch["fit_median_s"]
        out["whole_epoch"] = epoch
        print(f"whole epoch with evaluation: {epoch['fit_median_s']:.2f} s")
    return out


def main() -> None:
    """Parse the options, run the mode asked for and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    ap.add_argument("--arch", default="mlp", choices=("mlp", "lenet", "vgg", "resnet20"))
    ap.add_argument("--data", default=None, choices=tuple(SHAPES))
    ap.add_argument("--steps", type=int, default=None, help="steps per timing (cap)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--epoch-rounds", type=int, default=4)
    ap.add_argument("--bf16-steps", type=int, default=50, help="CPU mode's steps in bf16")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--precision", default="bf16", help="GPU mode's precision")
    ap.add_argument("--batch", type=int, default=512, help="GPU mode's batch size")
    ap.add_argument("--sizes", type=int, nargs=3, default=None, help="train val test sizes")
    ap.add_argument("--compile", action="store_true", help="the torch.compile option")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="keep cuDNN's heuristics")
    ap.add_argument(
        "--max-seconds", type=float, default=90.0, help="no new round after this (per comparison)"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = devices.resolve(args.device)
    devices.set_compile(args.compile)
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark  # both loops alike
    gpu = args.arch != "mlp" or device.type != "cpu"
    if gpu:
        args.data = args.data or "cifar10-shape"
        args.rounds = args.rounds or 3
        out = gpu_mode(args, device)
        default = f"train_speed_{device.type}.json"
    else:
        args.steps, args.rounds = args.steps or 200, args.rounds or 5
        out = cpu_mode(args)
        default = "train_speed.json"
    out["torch"] = torch.__version__
    out["command"] = " ".join(["python3", "benchmarks/train_speed.py", *sys.argv[1:]])
    path = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
