"""Contract tests for every registered model: a new entry in MODELS is tested with no new code.

The core check is the permutation symmetry that Git Re-Basin (Ainsworth et al.
2023) relies on: permuting hidden units with the model's own spec leaves the
function unchanged, and moves the activations at its perm_points accordingly.
"""

from __future__ import annotations

import ast
import dataclasses
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from analysis.errors import PrunescopeError, SpecError
from analysis.models import MODELS, InputGeometry, PrunableNet, build_for, from_spec
from analysis.permspec import (
    PermutationError,
    PermutationSpec,
    apply_permutation,
    identity_permutation,
    invert_permutation,
    perm_sizes,
    permutation_spec_from_axes_to_perm,
    random_permutation,
)
from analysis.specs import ARCHS, ModelSpec

#: Small widths keep the file fast: mlp 32x2, conv nets at a quarter width.
SMALL = {"width": 32, "depth": 2, "width_mult": 0.25}
#: (in_channels, image_size): MNIST-like and CIFAR-like inputs.
GEOMETRIES = {1: 28, 3: 32}
NUM_CLASSES = 10
CASES = [pytest.param(arch, c, id=f"{arch}-{c}ch") for arch in MODELS for c in GEOMETRIES]


def make(arch: str, in_channels: int, image_size: int | None = None, seed: int = 0) -> PrunableNet:
    """A small freshly built model (seeded) in eval mode."""
    torch.manual_seed(seed)
    size = image_size or GEOMETRIES[in_channels]
    net = from_spec(ModelSpec(arch=arch, **SMALL), geometry(in_channels, image_size=size))
    return net.eval()


def geometry(in_channels: int, **fields) -> InputGeometry:
    """The MNIST-like (1) or CIFAR-like (3) input geometry, any field overridden."""
    base = {
        "in_channels": in_channels,
        "image_size": GEOMETRIES[in_channels],
        "num_classes": NUM_CLASSES,
        "mean": (0.4,) * in_channels,
        "std": (0.25,) * in_channels,
    }
    return InputGeometry(**(base | fields))


def images(in_channels: int, n: int = 8, seed: int = 1) -> torch.Tensor:
    """Random raw images (n, C, S, S) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    side = GEOMETRIES[in_channels]
    return torch.rand(n, in_channels, side, side, generator=g)


@torch.no_grad()
def make_nontrivial(arch: str, in_channels: int) -> PrunableNet:
    """A model whose biases, BN affine params and BN running stats are all non-constant."""
    net = make(arch, in_channels)
    g = torch.Generator().manual_seed(2)
    for name, p in net.named_parameters():
        if p.dim() == 1:  # biases and BN gammas/betas are constant at init: perturb them
            base = 1.0 if name.endswith("weight") else 0.0
            p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
    net.train()
    for seed in range(3):  # BN running stats move away from (0, 1)
        net(images(in_channels, n=16, seed=10 + seed))
    return net.eval()


def nontrivial_permutation(net: PrunableNet, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random permutation in which no permutation of length >= 2 is the identity."""
    state = net.state_dict()
    perm = random_permutation(net.permutation_spec(), state, torch.Generator().manual_seed(seed))
    # Tiny layers (2 channels) draw the identity often; a cyclic shift is never the identity.
    return {
        p: idx.roll(1) if torch.equal(idx, torch.arange(len(idx))) else idx
        for p, idx in perm.items()
    }


def load_into_fresh(arch: str, in_channels: int, state: dict[str, torch.Tensor]) -> PrunableNet:
    """A differently seeded model of the same shape with ``state`` loaded (strict)."""
    fresh = make(arch, in_channels, seed=123)
    fresh.load_state_dict(state)
    return fresh.eval()


def assert_same_function(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Outputs equal up to float32 reassociation error, relative to their scale."""
    scale = max(1.0, a.abs().max().item())
    torch.testing.assert_close(b, a, atol=1e-5 * scale, rtol=1e-5, msg=lambda m: f"{what}: {m}")


def capture(net: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs of the named submodules on input x."""
    out: dict[str, torch.Tensor] = {}
    handles = [
        net.get_submodule(name).register_forward_hook(
            lambda _m, _i, o, name=name: out.__setitem__(name, o.detach())
        )
        for name in names
    ]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return out


# ---------------------------------------------------------------------------
# the registry


def test_registry_matches_spec_literal() -> None:
    """Every arch a ModelSpec allows has a builder, and vice versa."""
    assert set(MODELS) == set(ARCHS)


def test_unknown_arch_lists_valid_names() -> None:
    """An unknown arch is a SpecError naming every valid architecture."""
    with pytest.raises(SpecError):
        ModelSpec(arch="transformer")
    spec = ModelSpec()
    object.__setattr__(spec, "arch", "transformer")  # bypass validation, reach the registry
    with pytest.raises(SpecError) as err:
        from_spec(spec, geometry(1, mean=(0.5,), std=(0.5,)))
    for name in MODELS:
        assert repr(name) in str(err.value)
    assert "'transformer'" in str(err.value)


def test_bad_build_args_are_spec_errors() -> None:
    """Mean/std that do not match in_channels are rejected with a SpecError."""
    with pytest.raises(SpecError, match="mean"):
        from_spec(ModelSpec(), geometry(3, mean=(0.5,), std=(0.5,) * 3))
    with pytest.raises(SpecError, match="std"):
        from_spec(ModelSpec(), geometry(1, mean=(0.5,), std=(0.0,)))


@pytest.mark.parametrize("arch", list(MODELS))
def test_from_spec_reads_any_input_info_and_small_images_work(arch: str) -> None:
    """from_spec takes any object with the input fields; 8x8 (sklearn digits) inputs work."""
    info = types.SimpleNamespace(
        in_channels=1, image_size=8, num_classes=3, mean=(0.3,), std=(0.2,)
    )
    net = from_spec(ModelSpec(arch=arch, **SMALL), info).eval()
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    assert build_for is from_spec  # the older name is the same builder


def _imported_modules(path: Path) -> set[str]:
    """Every ``analysis.*`` module a file imports, at any depth (TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("analysis")}


def test_models_and_the_matchers_do_not_import_each_other() -> None:
    """The models declare symmetries with analysis.permspec; the matchers never import models."""
    root = Path(__file__).resolve().parents[1] / "analysis"
    for path in (root / "models").glob("*.py"):
        assert "analysis.permutation" not in _imported_modules(path), path.name
    for name in ("permutation.py", "permspec.py"):
        imported = _imported_modules(root / name)
        assert not any(m.startswith("analysis.models") for m in imported), name
    assert "analysis.permutation" not in _imported_modules(root / "permspec.py")


# ---------------------------------------------------------------------------
# the PrunableNet contract


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_shapes_head_and_prunable_names(arch: str, in_channels: int) -> None:
    """Logits (N, classes), features (N, feature_dim), a Linear head, conv/linear weight names."""
    net = make(arch, in_channels)
    x = images(in_channels, n=5)
    with torch.no_grad():
        assert net(x).shape == (5, NUM_CLASSES)
        feats = net.features(x)
        assert feats.shape == (5, net.feature_dim)
        assert torch.equal(net.head(feats), net(x))
    assert isinstance(net.head, nn.Linear)
    assert net.head.in_features == net.feature_dim

    state = net.state_dict()
    names = net.prunable_names()
    expected = [
        f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    assert names == expected
    assert names[-1] == "head.weight"
    assert all(k in state and state[k].dim() in (2, 4) for k in names)
    # normalisation lives in the model but not in its state dict
    assert not any(k.startswith("input_") for k in state)
    assert {"input_mean", "input_std"} <= {n for n, _ in net.named_buffers()}


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_permutation_spec_covers_the_state_dict(arch: str, in_channels: int) -> None:
    """Every state key but num_batches_tracked is declared, with one entry per axis."""
    net = make(arch, in_channels)
    state = net.state_dict()
    ps = net.permutation_spec()
    declared = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(ps.axes_to_perm) == declared
    for key, axes in ps.axes_to_perm.items():
        assert len(axes) == state[key].dim(), key
    sizes = perm_sizes(ps, state)  # raises if a permutation's axes disagree in size
    for p, axes in ps.perm_to_axes.items():
        assert all(state[k].shape[a] == sizes[p] for k, a in axes)
    # hidden layers permute their outputs; the classes (head rows) never move
    for key in net.prunable_names():
        assert (ps.axes_to_perm[key][0] is None) == (key == "head.weight"), key
    assert ps.axes_to_perm["head.weight"][1] is not None
    assert set(net.perm_points()) == set(ps.perm_to_axes)
    module_names = {n for n, _ in net.named_modules()}
    assert set(net.perm_points().values()) <= module_names


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_permutation_leaves_the_function_unchanged(arch: str, in_channels: int) -> None:
    """A random permutation from the model's own spec changes weights but not outputs."""
    net = make_nontrivial(arch, in_channels)
    state = net.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    ps = net.permutation_spec()
    perm = nontrivial_permutation(net)
    permuted = apply_permutation(ps, perm, state)

    assert list(permuted) == list(state)
    assert all(torch.equal(state[k], before[k]) for k in state), "input state was mutated"
    for key, axes in ps.axes_to_perm.items():
        if any(p is not None and len(perm[p]) > 1 for p in axes):
            assert not torch.equal(permuted[key], state[key]), f"{key} was not permuted"
    for key in state:
        if key.endswith("num_batches_tracked"):
            assert permuted[key] is state[key]

    x = images(in_channels)
    with torch.no_grad():
        expected = net(x)
        got = load_into_fresh(arch, in_channels, permuted)(x)
    assert_same_function(expected, got, "permuted model")

    restored = apply_permutation(ps, invert_permutation(perm), permuted)
    assert all(torch.equal(restored[k], state[k]) for k in state)


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_each_permutation_alone_is_a_symmetry(arch: str, in_channels: int) -> None:
    """Every single permutation (others identity) is a symmetry: pinpoints a wrong axis."""
    net = make_nontrivial(arch, in_channels)
    state = net.state_dict()
    ps = net.permutation_spec()
    full = nontrivial_permutation(net, seed=1)
    x = images(in_channels)
    with torch.no_grad():
        expected = net(x)
        for p in ps.perm_to_axes:
            perm = identity_permutation(ps, state) | {p: full[p]}
            got = load_into_fresh(arch, in_channels, apply_permutation(ps, perm, state))(x)
            assert_same_function(expected, got, f"permutation {p}")


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_a_broken_spec_breaks_the_function(arch: str, in_channels: int) -> None:
    """Forgetting one axis (the head's input) changes the outputs: the check has teeth."""
    net = make_nontrivial(arch, in_channels)
    ps = net.permutation_spec()
    axes = dict(ps.axes_to_perm)
    del axes["head.weight"]
    broken = permutation_spec_from_axes_to_perm(axes)
    state = net.state_dict()
    permuted = apply_permutation(broken, nontrivial_permutation(net), state)
    x = images(in_channels)
    with torch.no_grad():
        expected = net(x)
        got = load_into_fresh(arch, in_channels, permuted)(x)
    assert not torch.allclose(expected, got, atol=1e-4)


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_perm_points_carry_their_permutation(arch: str, in_channels: int) -> None:
    """Activations at perm_points of the permuted model are the original's, permuted on dim 1."""
    net = make_nontrivial(arch, in_channels)
    ps = net.permutation_spec()
    perm = nontrivial_permutation(net, seed=3)
    permuted = load_into_fresh(arch, in_channels, apply_permutation(ps, perm, net.state_dict()))
    points = net.perm_points()
    x = images(in_channels)
    original = capture(net, list(points.values()), x)
    moved = capture(permuted, list(points.values()), x)
    for p, module in points.items():
        a, b = original[module], moved[module]
        assert a.shape[1] == len(perm[p]), f"{p} at {module}: dim 1 is {a.shape[1]}"
        assert_same_function(a.index_select(1, perm[p]), b, f"{p} at {module}")


@pytest.mark.parametrize(("arch", "in_channels"), CASES)
def test_masks_permute_with_their_weights(arch: str, in_channels: int) -> None:
    """A masks dict keyed by prunable names (a subset of keys) permutes like the weights."""
    net = make_nontrivial(arch, in_channels)
    state = net.state_dict()
    ps = net.permutation_spec()
    perm = nontrivial_permutation(net, seed=4)
    masks = {k: state[k] > 0 for k in net.prunable_names()}
    moved_masks = apply_permutation(ps, perm, masks)
    moved_state = apply_permutation(ps, perm, state)
    assert list(moved_masks) == list(masks)
    for k, m in moved_masks.items():
        assert m.dtype == torch.bool
        assert torch.equal(m, moved_state[k] > 0), k


# ---------------------------------------------------------------------------
# the permutation module's validation


def tiny_spec() -> tuple[PermutationSpec, dict[str, torch.Tensor]]:
    """A two-layer MLP spec (3 -> 4 -> 2) and a matching state dict."""
    ps = permutation_spec_from_axes_to_perm(
        {"a.weight": ("P", None), "a.bias": ("P",), "b.weight": (None, "P"), "b.bias": (None,)}
    )
    state = {
        "a.weight": torch.randn(4, 3),
        "a.bias": torch.randn(4),
        "b.weight": torch.randn(2, 4),
        "b.bias": torch.randn(2),
    }
    return ps, state


def test_spec_structure_and_errors() -> None:
    """perm_to_axes is derived; missing keys, size clashes and bad perms raise PermutationError."""
    ps, state = tiny_spec()
    assert ps.perm_to_axes == {"P": (("a.weight", 0), ("a.bias", 0), ("b.weight", 1))}
    assert issubclass(PermutationError, PrunescopeError)
    assert dataclasses.is_dataclass(ps)

    with pytest.raises(PermutationError, match="a.bias"):
        perm_sizes(ps, {k: v for k, v in state.items() if k != "a.bias"})
    with pytest.raises(PermutationError, match="different sizes"):
        random_permutation(ps, state | {"a.bias": torch.randn(5)}, torch.Generator())
    with pytest.raises(PermutationError, match="same permutation on two axes"):
        permutation_spec_from_axes_to_perm({"w": ("P", "P")})
    with pytest.raises(PermutationError, match="length"):
        apply_permutation(ps, {"P": torch.arange(3)}, state)
    with pytest.raises(PermutationError, match="not a permutation"):
        apply_permutation(ps, {"P": torch.tensor([0, 0, 1, 2])}, state)
    with pytest.raises(PermutationError, match="no permutation named"):
        apply_permutation(ps, {}, state)


def test_apply_permutation_convention() -> None:
    """new[i] = old[perm[i]] on every declared axis; identity is a no-op; inverse undoes."""
    ps, state = tiny_spec()
    idx = torch.tensor([2, 0, 3, 1])
    out = apply_permutation(ps, {"P": idx}, state)
    assert torch.equal(out["a.weight"], state["a.weight"][idx])
    assert torch.equal(out["b.weight"], state["b.weight"][:, idx])
    assert out["b.bias"] is state["b.bias"]
    ident = apply_permutation(ps, identity_permutation(ps, state), state)
    assert all(torch.equal(ident[k], state[k]) for k in state)
    inv = invert_permutation({"P": idx})["P"]
    assert torch.equal(idx[inv], torch.arange(4))
