"""Weight quantization codes, and quantization-aware training as training callbacks.

:func:`quantize` is the code of :mod:`analysis.quantization` (post-training;
see there: uniform, symmetric, per output channel, nearest or stochastic
rounding, 1 bit = scaled sign). This module sits below the training loop, so
``[train] qat`` can train quantized networks (Li et al. 2017, "Training
Quantized Nets: A Deeper Understanding", Section 3):

- ``binaryconnect`` (BC; Courbariaux et al. 2015): float weights ``w_r`` are
  kept; every forward and backward pass sees ``Q(w_r)`` (``qat_bits`` bits,
  nearest rounding), and the optimizer updates ``w_r`` with that gradient.
  The network trained, evaluated and stored is ``Q(w_r)``. Deviation: the
  per-channel scale of :func:`quantize` replaces BC's clipping of ``w_r`` to
  [-1, 1] (the grid follows the weights' range instead).
- ``stochastic`` (SR): no float copy; after every optimizer step
  ``w <- Q_sr(w)``, stochastic rounding to ``qat_bits`` bits, its draws from
  a CPU generator seeded by the run (then moved to the weights' device).

Only the prunable weights (Conv2d and Linear weights) are quantized; masks
stay applied (a pruned weight is 0 and quantizes to 0).
"""

from __future__ import annotations

import torch

from analysis import seeding
from analysis.specs import TrainSpec, check_int
from analysis.training_types import Callback, TrainState

#: The bits a setting may ask for: 1 (binary) to 32.
MIN_BITS, MAX_BITS = 1, 32
#: Entropy word that separates the SR draws from every other stream of a run's seed.
SR_STREAM = 0x5152


def _round(x: torch.Tensor, lo: float, hi: float, uniform: torch.Tensor | None) -> torch.Tensor:
    """``x`` rounded to the integers in [lo, hi]: to nearest, or up with probability frac(x)."""
    if uniform is None:
        return torch.round(x).clamp(lo, hi)
    low = torch.floor(x)
    return (low + (uniform < x - low).to(x.dtype)).clamp(lo, hi)


def quantize(w: torch.Tensor, bits: int, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """``w`` (C_out, ...) quantized to ``bits`` per output channel, symmetric (see module doc).

    ``uniform``: U[0, 1) draws of ``w``'s shape on its device for stochastic
    rounding (None: to nearest). Zeros stay exactly zero; returns ``w``'s dtype.
    """
    check_int("quantize", "bits", bits, lo=MIN_BITS, hi=MAX_BITS)
    dtype = torch.float32 if w.device.type == "mps" else torch.float64
    x = w.to(dtype)
    flat = x.reshape(x.shape[0], -1)
    nonzero = x != 0
    if bits == 1:
        count = nonzero.reshape(x.shape[0], -1).sum(1).clamp(min=1)
        scale = flat.abs().sum(1) / count
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        scale = scale.view(-1, *[1] * (x.dim() - 1))
        if uniform is None:
            q = torch.sign(x)
        else:
            p = ((x / scale + 1) / 2).clamp(0, 1)
            q = torch.where(uniform.to(dtype) < p, 1.0, -1.0).to(dtype)
    else:
        levels = float(2 ** (bits - 1) - 1)
        amax = flat.abs().amax(1)
        scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
        scale = scale.view(-1, *[1] * (x.dim() - 1))
        q = _round(x / scale, -levels, levels, None if uniform is None else uniform.to(dtype))
    return (q * scale * nonzero.to(dtype)).to(w.dtype)


def prunable_weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The Conv2d and Linear weights of ``model``, in forward order."""
    params = dict(model.named_parameters())
    return [params[n] for n in model.prunable_names()]


class BinaryConnect(Callback):
    """Forward and backward through quantized weights; the optimizer updates float copies."""

    def __init__(self, bits: int) -> None:
        self.bits = bits

    def _quantize(self, state: TrainState) -> None:
        """Keep the float weights aside and put their quantized values in the model."""
        self._float = [w.detach().clone() for w in self._weights]
        with torch.no_grad():
            for w in self._weights:
                w.copy_(quantize(w, self.bits))

    def on_start(self, state: TrainState) -> None:
        self._weights = prunable_weights(state.model)
        self._quantize(state)

    def before_step(self, state: TrainState) -> None:
        with torch.no_grad():  # the gradient was taken at Q(w_r): apply it to w_r
            for w, f in zip(self._weights, self._float, strict=True):
                w.copy_(f)

    def after_step(self, state: TrainState) -> None:
        self._quantize(state)


class StochasticRounding(Callback):
    """After every optimizer step, round each weight stochastically to ``bits`` bits."""

    def __init__(self, bits: int, seed: int) -> None:
        self.bits = bits
        self.generator = seeding.generator(seeding.seed_63(seed, SR_STREAM))

    def _round(self) -> None:
        """Replace each weight by a stochastic rounding of it (draws on the CPU, then moved)."""
        with torch.no_grad():
            for w in self._weights:
                u = torch.rand(w.shape, generator=self.generator, dtype=torch.float64)
                w.copy_(quantize(w, self.bits, u.to(w.device)))

    def on_start(self, state: TrainState) -> None:
        self._weights = prunable_weights(state.model)
        self._round()

    def after_step(self, state: TrainState) -> None:
        self._round()


def qat_callbacks(spec: TrainSpec, seed: int) -> list[Callback]:
    """The callbacks of ``spec.qat`` (none for ``"none"``), seeded by the run's ``seed``."""
    qat = getattr(spec, "qat", "none")
    if qat == "binaryconnect":
        return [BinaryConnect(spec.qat_bits)]
    if qat == "stochastic":
        return [StochasticRounding(spec.qat_bits, seed)]
    return []
