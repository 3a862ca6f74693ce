"""Filter-normalised random directions (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", sec. 4).

A Gaussian direction ``d`` is drawn for every parameter, then each filter
(conv: output channel; linear: output neuron) is rescaled to the norm of the
weight's filter, ``d_f <- d_f / ||d_f|| * ||w_f||``. Raw directions depend only
on the seed and each parameter's own name and shape, so runs of one
architecture (dense and pruned) share them, and so do two architectures where
they share a parameter (a ResNet with and without shortcuts). Biases and BatchNorm parameters (every parameter
of one dimension) get a zero direction by default; with ``include_bias_bn``
their direction is the parameter itself, ``d = w``, as Li et al.'s reference code
does (``net_plotter.normalize_directions_for_weights`` with ``ignore=''``): each
element is a filter of norm ``|w|`` and the random draw is replaced by w itself.
Sparse networks with ``respect_mask`` (our convention, not in Li et al.): the
direction is zero on pruned weights and each filter is normalised over its
surviving weights only, so every point of the surface keeps the run's sparsity.
Directions are drawn and normalised on the CPU (a seeded ``torch.Generator``)
and moved to the computation's device by the engine, so a surface is the same
experiment on every device.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn

from analysis.sparsity.base import Masks

Params = dict[str, torch.Tensor]


def trainable(model: nn.Module) -> Params:
    """The model's parameters by state-dict name (detached)."""
    return {n: p.detach() for n, p in model.named_parameters()}


def random_directions(params: Params, seed: int, index: int) -> Params:
    """Raw N(0, 1) directions for every parameter, seeded by (seed, index, name) only.

    Each parameter draws from its own generator, seeded by the seed, the
    direction index and a CRC-32 of its name, so a parameter's direction
    depends on nothing else: networks that share a parameter (its name and
    shape) share its direction even when they differ elsewhere, e.g. a ResNet
    with and without shortcuts, or the same network trained with another batch
    size (Li et al. 2018's side-by-side Figures 5 and 7).
    """
    out = {}
    for name, p in sorted(params.items()):
        entropy = np.random.SeedSequence([seed, index, zlib.crc32(name.encode())]).generate_state(2)
        gen = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
        out[name] = torch.randn(p.shape, generator=gen, dtype=torch.float32)
    return out


def filter_normalize(
    direction: Params,
    params: Params,
    masks: Masks | None = None,
    *,
    include_bias_bn: bool = False,
) -> Params:
    """Li et al. 2018's filter normalisation: ``d_f <- d_f / ||d_f|| * ||w_f||`` per filter.

    A filter is an output channel (conv, (out, in, kh, kw)) or an output neuron
    (linear, (out, in)). 1-D parameters (biases, BatchNorm) get ``0``, or
    ``w`` itself with ``include_bias_bn`` (Li et al.'s code). With ``masks``,
    the direction is zeroed on pruned weights first, so each filter is
    normalised over its surviving weights (a filter with none stays 0).
    """
    out = {}
    masks = masks or {}
    for name, w in params.items():
        d = direction[name].to(w.dtype)
        if w.dim() <= 1:
            out[name] = w.clone() if include_bias_bn else torch.zeros_like(w)
            continue
        if name in masks:
            d = d * masks[name].to(d.dtype)
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = w.flatten(1).norm(dim=1)
        scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30), torch.zeros_like(w_norm))
        out[name] = d * scale.view(-1, *([1] * (d.dim() - 1)))
    return out


def surface_directions(
    model: nn.Module,
    masks: Masks | None,
    *,
    dims: int,
    seed: int,
    respect_mask: bool = True,
    include_bias_bn: bool = False,
) -> list[Params]:
    """``dims`` filter-normalised random directions for ``model``'s parameters (Li et al. 2018)."""
    params = trainable(model)
    use = masks if respect_mask else None
    return [
        filter_normalize(
            random_directions(params, seed, i), params, use, include_bias_bn=include_bias_bn
        )
        for i in range(dims)
    ]
