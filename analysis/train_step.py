"""One optimizer step on the model's device: precision, memory format, ``torch.compile``, sums.

:class:`Stepper` holds what a step needs beyond the loss itself: the autocast
of the spec's ``precision`` (``torch.autocast``; a ``torch.amp.GradScaler``
for fp16, Micikevicius et al. 2018), ``channels_last`` weights and inputs for
conv nets on CUDA (where cuDNN's NHWC kernels are fastest; CPUs keep NCHW),
and the ``torch.compile`` execution option (:func:`analysis.device.compiling`;
never part of a key), with the first step's extra seconds measured.
:class:`Tally` keeps an epoch's loss and accuracy sums on the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from analysis import device as devices
from analysis.errors import PrunescopeError
from analysis.training_types import (
    Callback,
    TrainState,
    autocast_for,
    check_precision,
    device_of,
)

#: On an accelerator, steps between reads of the running loss (one host sync each).
GUARD_EVERY = 50

#: Steps timed when compiling: the first, then the quickest of the rest is its plain cost.
TIMED_STEPS = 4

Loss = tuple[torch.Tensor, torch.Tensor | int]


class CompileError(PrunescopeError):
    """``torch.compile`` was asked for (the compile option) and failed."""


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether ``model`` trains in channels_last: a conv net on CUDA."""
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())


class Tally:
    """An epoch's sums of training loss and correct predictions, and the loss the guard sees.

    On the CPU each step's loss is read (free there), so the divergence guard
    sees every one, and sums are exact float64 as before. On an accelerator
    the sums stay on the device and ``state.loss`` becomes the running mean
    every :data:`GUARD_EVERY` steps and at the epoch's end (:meth:`flush`): a
    non-finite loss makes the sum non-finite, so none goes unseen.
    """

    def __init__(self, device: torch.device) -> None:
        """Empty sums for an epoch on ``device``."""
        self.every = 1 if device.type == "cpu" else GUARD_EVERY
        self.loss_sum: float | torch.Tensor = 0.0
        self.correct: int | torch.Tensor = 0
        self.seen = 0
        self.steps = 0

    def add(
        self, loss: torch.Tensor, correct: torch.Tensor | int, n: int, state: TrainState
    ) -> None:
        """Count one batch of ``n`` samples (before the step's callbacks run)."""
        self.seen += n
        self.steps += 1
        self.correct = self.correct + correct
        if self.every == 1:
            state.loss = float(loss.detach())
            self.loss_sum += state.loss * n
            return
        self.loss_sum = self.loss_sum + loss.detach().float() * n
        if self.steps % self.every == 0:
            self.flush(state)

    def flush(self, state: TrainState) -> None:
        """On an accelerator, read the running mean loss into ``state.loss`` (one sync)."""
        if self.every > 1 and self.seen:
            state.loss = float(self.loss_sum) / self.seen

    def sums(self) -> tuple[float, int, int]:
        """(loss sum, correct predictions, samples seen) of the epoch so far."""
        return float(self.loss_sum), int(self.correct), self.seen


class Stepper:
    """Forward, backward and optimizer step of one batch, on the model's device.

    Moves ``model`` to channels_last where :func:`wants_channels_last` (before
    the optimizer is made: the parameters stay the same objects) and wraps its
    forward and ``features`` in ``torch.compile`` when the compile option is on.
    Raises :class:`~analysis.training_types.PrecisionError` for a precision the
    device cannot run, before any step.
    """

    def __init__(self, model: nn.Module, precision: str) -> None:
        """Prepare ``model`` (in place) for training in ``precision`` on its device."""
        self.device = device_of(model)
        check_precision(precision, self.device)
        self.precision = precision
        channels_last = wants_channels_last(model, self.device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.compiled = devices.compiling()
        self.forward: Callable = torch.compile(model) if self.compiled else model
        self.features: Callable = torch.compile(model.features) if self.compiled else model.features
        use_scaler = precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type) if use_scaler else None
        self.times: list[float] = []

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (N, C, H, W) in the model's memory format."""
        return x.contiguous(memory_format=self.memory_format)

    def step(
        self,
        loss_fn: Callable[[], Loss],
        state: TrainState,
        callbacks: Sequence[Callback],
        tally: Tally,
        n: int,
    ) -> None:
        """One step: ``loss_fn()`` under autocast, backward, callbacks, optimizer step."""
        start = self._clock()
        optimizer = state.optimizer
        if self.compiled and not self.times:
            loss, correct = self._first(loss_fn, optimizer)
        else:
            loss, correct = self._forward_backward(loss_fn, optimizer)
        tally.add(loss, correct, n, state)
        for cb in callbacks:
            cb.before_step(state)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
        state.step += 1
        if start is not None:
            sync(self.device)
            self.times.append(time.perf_counter() - start)
        for cb in callbacks:
            cb.after_step(state)

    def _clock(self) -> float | None:
        """The start time of a step to time (the first few when compiling), else None."""
        if not self.compiled or len(self.times) >= TIMED_STEPS:
            return None
        sync(self.device)
        return time.perf_counter()

    def _forward_backward(
        self, loss_fn: Callable[[], Loss], optimizer: torch.optim.Optimizer
    ) -> Loss:
        """``loss_fn()`` under autocast, then backward (scaled for fp16) into fresh gradients."""
        with autocast_for(self.device, self.precision):
            loss, correct = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        return loss, correct

    def _first(self, loss_fn: Callable[[], Loss], optimizer: torch.optim.Optimizer) -> Loss:
        """The first compiled forward and backward, a failure of which names the compile option."""
        try:
            return self._forward_backward(loss_fn, optimizer)
        except torch.OutOfMemoryError:
            raise  # the batch does not fit: not the compiler's doing
        except Exception as err:  # noqa: BLE001  (any failure here is the compiler's to report)
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise CompileError(
                f"torch.compile failed ({type(err).__name__}: {first}); "
                "train without the compile option"
            ) from err

    @property
    def compile_seconds(self) -> float | None:
        """Extra seconds of the first compiled step over the quickest later one (None: not compiled)."""
        if not self.compiled or not self.times:
            return None
        rest = self.times[1:]
        return max(0.0, self.times[0] - (min(rest) if rest else 0.0))
