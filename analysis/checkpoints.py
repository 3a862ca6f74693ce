"""Reading checkpoints safely: safetensors, or ``torch.load(weights_only=True)``; never pickle.

A checkpoint must also be what it claims: every key of the architecture, each
with the right shape and dtype, and nothing else; masks, when given, must be
0/1 tensors of the prunable weights' shapes that the weights respect.
``prunescope check`` uses :func:`inspect_checkpoint` to vet a colleague's file.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

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


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (library messages can be pages long)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


#: Bytes a checkpoint may hold beyond its tensors' data (names, headers, pickle opcodes).
OVERHEAD_BYTES = 1 << 20


def expected_bytes(model: nn.Module) -> int:
    """The bytes of ``model``'s state dict's tensor data (what a checkpoint of it holds)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def check_archive(path: Path, limit: int | None) -> None:
    """Refuse a file larger than ``limit`` bytes, and a zip whose records are compressed or too big.

    torch writes its zip checkpoints uncompressed (``ZIP_STORED``); a compressed
    record can inflate a 1 MB file to gigabytes, so it is refused before anything
    is inflated, as is any archive whose records add up to more than ``limit``.
    """
    import zipfile

    size = path.stat().st_size
    if limit is not None and size > limit:
        raise CheckpointError(
            f"{path} has {size:,} bytes, more than the {limit:,} a checkpoint of this model "
            "can hold; refused"
        )
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({_first_line(err)})") from None
    packed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise CheckpointError(
            f"{path} holds compressed records ({packed[0]}...), which torch never writes; refused"
        )
    inflated = sum(r.file_size for r in records)
    if limit is not None and inflated > limit:
        raise CheckpointError(
            f"{path} unpacks to {inflated:,} bytes, more than the {limit:,} a checkpoint of "
            "this model can hold; refused"
        )


def read_checkpoint(path: str | Path, *, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Read a user-supplied checkpoint without running code from it.

    ``.safetensors`` files are read with safetensors; anything else only with
    ``torch.load(weights_only=True)``, which refuses pickled objects other than
    tensors and plain containers (a pickle carrying a payload is refused).
    A ``{"state_dict": {...}}`` wrapper is unwrapped. ``limit``: the most bytes
    the file (and, for a zip, its records) may hold, checked before loading.

    Raises:
        CheckpointError: one line naming the problem (missing, too large,
            compressed, pickled code, not tensors, sparse tensors).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    check_archive(path, limit)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # noqa: BLE001 - any parse failure means "not safetensors"
            raise CheckpointError(
                f"{path} is not a valid safetensors file ({_first_line(err)}); refused"
            ) from None
    else:
        try:
            with warnings.catch_warnings():
                # torch warns of any pickle protocol but 2 before it reads a byte; what it
                # then refuses is said below in one line, and a file it accepts is fine
                warnings.filterwarnings(
                    "ignore", message="Detected pickle protocol", category=UserWarning
                )
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            # torch's message is a page of advice, including "retry with weights_only=False":
            # keep only what the file tried to import
            text = str(err)
            found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", text)
            detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
            what = (
                f"it imports {found.group(1)}"
                if found
                else (detail.group(1).strip() if detail else "unsupported pickle content")
            )
            raise CheckpointError(
                f"{path} was refused: it pickles objects other than tensors, which could run "
                f"code ({what}); nothing from it was run. Send safetensors instead"
            ) from None
        except Exception as err:  # noqa: BLE001 - any failure to parse means "not a checkpoint"
            raise CheckpointError(
                f"{path} is not a readable checkpoint ({_first_line(err)}); refused"
            ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path} does not hold a mapping of names to tensors")
    sparse = [k for k, v in state.items() if v.layout != torch.strided]
    if sparse:
        raise CheckpointError(f"{path}: {sparse[0]} is a sparse tensor; dense tensors only")
    return state


def check_masks(
    model: nn.Module, masks: dict[str, torch.Tensor], *, what: str = "masks"
) -> dict[str, torch.Tensor]:
    """Validate pruning masks against ``model`` (with its weights loaded); return them as bool.

    Every key must be a prunable weight of the architecture, with its shape,
    holding only 0/1 (bool or numeric), and the weight must be exactly zero
    wherever its mask is 0 (a mask that does not match its weights is refused).
    """
    prunable = set(model.prunable_names())
    params = dict(model.named_parameters())
    unexpected = sorted(set(masks) - prunable)
    if unexpected:
        raise CheckpointError(
            f"{what}: {unexpected[:5]} are not prunable weights of the architecture "
            f"(prunable: {sorted(prunable)[:8]})"
        )
    out = {}
    for name, mask in masks.items():
        weight = params[name].detach()
        if mask.shape != weight.shape:
            raise CheckpointError(
                f"{what}: {name} has shape {tuple(mask.shape)}, expected {tuple(weight.shape)}"
            )
        if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
            raise CheckpointError(f"{what}: {name} holds values other than 0 and 1")
        mask = mask.bool()
        if bool((weight[~mask] != 0).any()):
            raise CheckpointError(
                f"{what}: {name} is masked but its weight is not zero where the mask is 0"
            )
        out[name] = mask
    return out


def inspect_checkpoint(
    path: str | Path, run: Any, *, masks_path: str | Path | None = None
) -> dict[str, Any]:
    """Validate a colleague's checkpoint against ``run``'s model and evaluate it (read-only).

    ``run`` is a RunSpec of the study: its data and model decide what the
    checkpoint must hold. Masks come from ``masks_path``, else from a
    ``masks.safetensors`` beside the checkpoint (a store entry's layout), else
    none (sparsity is then read from the exact zeros). Returns the per-layer
    sparsity of the prunable weights, the overall sparsity, and the test loss
    and accuracy on the study's data. Nothing is written anywhere.
    """
    from analysis.data import load
    from analysis.models import build_for
    from analysis.train import evaluate

    path = Path(path)
    data = load(run.data)
    model = build_for(run.model, data.info)
    limit = expected_bytes(model) + OVERHEAD_BYTES
    state = read_checkpoint(path, limit=limit)
    check_state(model, state, what=f"checkpoint {path.name}")
    model.load_state_dict(state)
    beside = path.with_name("masks.safetensors")
    if masks_path is None and beside.is_file() and beside != path:
        masks_path = beside
    masks = {}
    if masks_path is not None:
        raw = read_checkpoint(masks_path, limit=limit)
        masks = check_masks(model, raw, what=f"masks {Path(masks_path).name}")
    params = dict(model.named_parameters())
    layers = {}
    kept = total = 0
    for name in model.prunable_names():
        weight = params[name].detach()
        alive = int(masks[name].sum()) if name in masks else int((weight != 0).sum())
        layers[name] = 1.0 - alive / max(weight.numel(), 1)
        kept += alive
        total += weight.numel()
    test_loss, test_acc = evaluate(model.eval(), data.test_x, data.test_y)
    return {
        "path": str(path),
        "tensors": len(state),
        "masks": str(masks_path) if masks_path is not None else None,
        "layer_sparsity": layers,
        "sparsity": 1.0 - kept / max(total, 1),
        "test_loss": test_loss,
        "test_acc": test_acc,
        "data_source": data.source,
    }
