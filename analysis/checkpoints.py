"""Reading checkpoints safely: safetensors, or ``torch.load(weights_only=True)``; never pickle.

A checkpoint must also be what it claims: every key of the architecture, each
with the right shape and dtype, and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from analysis.errors import CheckpointError


def check_state(
    model: nn.Module, state: dict[str, torch.Tensor], *, what: str = "checkpoint"
) -> None:
    """Raise CheckpointError unless ``state`` matches ``model``'s keys, shapes and dtypes."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} is not a mapping of names to tensors")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{what} does not match the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for key, ref in expected.items():
        got = state[key]
        if got.shape != ref.shape:
            raise CheckpointError(
                f"{what}: {key} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
            )
        if got.dtype != ref.dtype:
            raise CheckpointError(f"{what}: {key} has dtype {got.dtype}, expected {ref.dtype}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{what}: {key} holds NaN or inf")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a user-supplied checkpoint without running code from it.

    ``.safetensors`` files are read with safetensors; anything else only with
    ``torch.load(weights_only=True)``, which refuses pickled objects other than
    tensors and plain containers (a pickle carrying a payload is refused).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to parse means "not a checkpoint"
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a mapping of names to tensors")
    return state
