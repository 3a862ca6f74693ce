"""Every analysis computes on the device it is given, and gives the CPU's numbers there.

Each test runs a computation with ``Context(device=...)`` for every available
device (the ``device`` fixture: the CPU always, CUDA and MPS where present) and
compares with the same computation on the CPU, within the stated tolerance:
fp32 kernels of another device sum in other orders (losses to ~1e-5 relative;
an argmax may flip on a near-tie, so accuracies to a sample or two), and a value
quantised to a uint8 level can move by one level. Random draws (corruptions,
weight noise, directions, probes) come from CPU generators, so they are the same
on every device. The last tests run the computations that need no data on the
``meta`` device under a dispatch mode that records any operation mixing a CPU
tensor into a device computation (what CUDA refuses and MPS copies).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from analysis.api import Context
from analysis.batchnorm import bn_output_stats
from analysis.connectivity import ConnectivitySpec, compute_connectivity, mix_weights
from analysis.corruptions import COLOR_CORRUPTIONS, GRAY_CORRUPTIONS, corrupt
from analysis.landscape import (
    LandscapeSpec,
    PlaneSpec,
    SharpnessSpec,
    compute_landscape,
    compute_plane,
    compute_sharpness,
)
from analysis.models import build_for
from analysis.representations import FeaturesSpec, compute_features
from analysis.robustness import (
    CorruptedSpec,
    RobustnessSpec,
    compute_corrupted,
    compute_robustness,
    perturb,
)
from analysis.specs import DataSpec, ModelSpec, RunSpec, TrainSpec
from analysis.store import Store

DIGITS = DataSpec(name="digits", train_size=200)
MLP = ModelSpec(arch="mlp", width=32, depth=1)
VGG = ModelSpec(arch="vgg", width_mult=0.25)
TRAIN = TrainSpec(epochs=1, batch_size=50)
CPU = torch.device("cpu")


def run(model: ModelSpec = MLP, seed: int = 0) -> RunSpec:
    """A tiny digits run (trains in about a second)."""
    return RunSpec(data=DIGITS, model=model, train=TRAIN, seed=seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store for the module: the runs train once and are shared by every device."""
    return Store(tmp_path_factory.mktemp("devices") / "cache")


def on(store: Store, device: torch.device) -> Context:
    """A context computing on ``device``."""
    return Context(store=store, device=device)


def same_arrays(got: dict, want: dict, keys: tuple[str, ...], rtol: float) -> None:
    """Float arrays of ``keys`` equal to rtol (atol 1e-5)."""
    for k in keys:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=1e-5, err_msg=k)


def test_features_match_the_cpu(store, device):
    spec = FeaturesSpec(run=run(), subset_size=120)
    got = compute_features(spec, on(store, device))[0]["features.npz"]
    want = compute_features(spec, on(store, CPU))[0]["features.npz"]
    assert all(isinstance(v, np.ndarray) for v in got.values())
    same_arrays(got, want, ("features", "logits", "norm", "margin"), rtol=1e-4)
    np.testing.assert_allclose(got["angle"], want["angle"], atol=1e-2)  # degrees
    np.testing.assert_array_equal(got["indices"], want["indices"])
    assert (got["preds"] != want["preds"]).sum() <= 1


CORRUPTIONS = [
    *(("gray", n) for n in GRAY_CORRUPTIONS),
    *(("color", n) for n in COLOR_CORRUPTIONS),
]


@pytest.mark.parametrize("suite,name", CORRUPTIONS)
def test_corruptions_match_the_cpu(device, suite, name):
    shape = (6, 1, 28, 28) if suite == "gray" else (6, 3, 32, 32)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    for severity in (1, 5):
        got = corrupt(x.to(device), name, severity, seed=4)
        assert got.device.type == device.type
        want = corrupt(x, name, severity, seed=4)
        levels = ((got.cpu() - want).abs() * 255).round()
        assert levels.max() <= 1, (name, severity)  # one uint8 level at most
        assert (levels > 0).float().mean() <= 0.01, (name, severity)


def test_robustness_matches_the_cpu(store, device):
    corrupted = CorruptedSpec(dataset="digits", subset_size=100, names=("fog", "rotate", "glass_blur"), severities=(1, 5))  # fmt: skip
    images = compute_corrupted(corrupted, on(store, device))[0]["corrupted.npz"]["images"]
    ref = compute_corrupted(corrupted, on(store, CPU))[0]["corrupted.npz"]["images"]
    assert np.abs(images.astype(int) - ref).max() <= 1 and (images != ref).mean() <= 0.01
    spec = RobustnessSpec(run=run(), corrupted=corrupted, sigmas=(0.0, 0.3), trials=2)
    got = compute_robustness(spec, on(store, device))[0]["robustness.json"]
    want = compute_robustness(spec, on(store, CPU))[0]["robustness.json"]
    for part in ("corruption", "noise"):  # the same images and the same noise draws
        for a, b in zip(got[part], want[part], strict=True):
            assert a["accuracy"] == pytest.approx(b["accuracy"], abs=2 / 100)
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert all(r["pruned_stay_zero"] for r in got["noise"])


@pytest.mark.parametrize("alignment", ["weight", "activation"])
def test_connectivity_matches_the_cpu(store, device, alignment):
    spec = ConnectivitySpec(run_a=run(), run_b=run(seed=1), alignment=alignment, alphas=5,
                            train_subset=100, test_subset=100, matching_restarts=2)  # fmt: skip
    got, _ = compute_connectivity(spec, on(store, device))
    want, _ = compute_connectivity(spec, on(store, CPU))
    doc, ref = got["connectivity.json"], want["connectivity.json"]
    assert all(v.device.type == "cpu" for v in got["permutation.safetensors"].values())
    assert doc["matching_objective"] == pytest.approx(ref["matching_objective"], rel=1e-5)
    for k in ("train_loss", "test_loss"):
        np.testing.assert_allclose(doc["curve"][k], ref["curve"][k], rtol=1e-4)


def test_repair_on_a_batchnorm_pair_matches_the_cpu(store, device):
    spec = ConnectivitySpec(run_a=run(VGG), run_b=run(VGG, seed=1), alignment="weight",
                            repair=True, alphas=3, train_subset=100, test_subset=100,
                            matching_restarts=1)  # fmt: skip
    doc = compute_connectivity(spec, on(store, device))[0]["connectivity.json"]
    ref = compute_connectivity(spec, on(store, CPU))[0]["connectivity.json"]
    assert doc["bn"] == "repair"
    np.testing.assert_allclose(doc["curve"]["test_loss"], ref["curve"]["test_loss"], rtol=1e-3)


@pytest.mark.parametrize("dims", [1, 2])
def test_landscape_surface_matches_the_cpu(store, device, dims):
    spec = LandscapeSpec(run=run(VGG), dims=dims, grid=3, subset=60)  # BatchNorm reset per point
    got = compute_landscape(spec, on(store, device))[0]
    want = compute_landscape(spec, on(store, CPU))[0]
    np.testing.assert_allclose(got["surface.npz"]["loss"], want["surface.npz"]["loss"], rtol=1e-4)
    engine = got["landscape.json"]["engine"]
    assert engine["device"] == str(device) and engine["name"] in ("pointwise", "batched")


def test_plane_through_aligned_networks_matches_the_cpu(store, device):
    spec = PlaneSpec(runs=(run(), run(seed=1)), plane="models", align=True, grid=3, subset=60)
    got = compute_plane(spec, on(store, device))[0]
    want = compute_plane(spec, on(store, CPU))[0]
    np.testing.assert_allclose(got["plane.json"]["coords"], want["plane.json"]["coords"], rtol=1e-6)
    np.testing.assert_allclose(got["surface.npz"]["loss"], want["surface.npz"]["loss"], rtol=1e-4)


def test_sharpness_matches_the_cpu(store, device):
    """The same start vector and probes on every device; Lanczos amplifies rounding a little."""
    spec = SharpnessSpec(run=run(), topk=2, hutchinson_samples=6, batch=80, lanczos_iters=12)
    got = compute_sharpness(spec, on(store, device))[0]["sharpness.json"]
    want = compute_sharpness(spec, on(store, CPU))[0]["sharpness.json"]
    np.testing.assert_allclose(got["eigenvalues"], want["eigenvalues"], rtol=1e-3)
    assert got["trace"] == pytest.approx(want["trace"], rel=1e-3)


# ---------------------------------------------------------------------------
# no CPU tensor enters a device computation


class DeviceMixes(TorchDispatchMode):
    """Records every operation whose tensors lie on more than one device.

    A 0-d CPU tensor (a scalar) beside device tensors is allowed, as CUDA allows it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        devices = {t.device for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devices) > 1:
            self.mixed.append(f"{func} on {sorted(map(str, devices))}")
        return func(*args, **kwargs)


#: Corruptions that read values back (Poisson draws, Canny, a data-dependent length):
#: they cannot run on the meta device, which holds no data.
READS_VALUES = {"shot_noise", "canny_edges", "zigzag"}


@pytest.mark.parametrize("suite,name", [c for c in CORRUPTIONS if c[1] not in READS_VALUES])
def test_corruptions_create_no_cpu_tensors_for_a_device_input(suite, name):
    shape = (3, 1, 28, 28) if suite == "gray" else (3, 3, 32, 32)
    x = torch.rand(shape, device="meta")
    with DeviceMixes() as mode:
        out = corrupt(x, name, 5, seed=0)
    assert mode.mixed == [] and out.device.type == "meta"


def test_weight_noise_paths_and_bn_statistics_create_no_cpu_tensors():
    from analysis.data import dataset_info

    net = build_for(VGG, dataset_info("digits")).to("meta")
    state = dict(net.state_dict())
    names = [n for n, _ in net.named_parameters()]
    x = torch.rand(8, 1, 28, 28, device="meta")
    with DeviceMixes() as mode:
        noisy = perturb(state, names, 0.2, torch.Generator().manual_seed(0))
        mixed = mix_weights(state, noisy, 0.3)
        net.load_state_dict(mixed)
        stats = bn_output_stats(net, x)  # (a reset reads num_batches_tracked: not on meta)
    assert mode.mixed == [] and stats
    assert all(v.device.type == "meta" for v in (*noisy.values(), *mixed.values()))


def test_matching_statistics_create_no_cpu_tensors():
    """Weight matching's costs and activation matching's sums, up to the copy to scipy."""
    from analysis.data import dataset_info
    from analysis.permutation import _Costs, _Moments, check_same_architecture

    net = build_for(VGG, dataset_info("digits")).to("meta")
    ps = net.permutation_spec()
    state = dict(net.state_dict())
    sizes = check_same_architecture(ps, state, state)
    with DeviceMixes() as mode:
        costs = _Costs(ps, state, state, sizes)
        perm = {p: torch.arange(n, device="meta") for p, n in sizes.items()}
        for p in sizes:
            with pytest.raises(NotImplementedError, match="meta"):  # the copy to scipy
                costs.of(p, perm)
        moments = _Moments(8, torch.device("meta"))
        moments.add(torch.rand(5, 8, device="meta"), torch.rand(5, 8, device="meta"))
        moments.add(torch.rand(5, 8, device="meta"), torch.rand(5, 8, device="meta"))
    assert mode.mixed == [] and moments.cross.device.type == "meta"


def test_analyses_compute_fp32_in_full_precision_and_restore_the_settings():
    from analysis.device import full_fp32

    torch.backends.cudnn.allow_tf32, before = True, torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")  # as a training loop may leave it
    try:
        with pytest.raises(ValueError), full_fp32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
            assert torch.get_float32_matmul_precision() == "highest"
            raise ValueError
        assert torch.backends.cudnn.allow_tf32
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = before
