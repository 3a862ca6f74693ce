"""Label noise for double-descent studies: a seeded fraction of training labels made wrong.

Nakkiran et al. 2020 ("Deep Double Descent") and Zhang et al. 2017 ("Understanding
deep learning requires rethinking generalization") corrupt a fraction ``p`` of
the training labels. Here exactly ``round(p * n)`` examples of the training fold
are chosen by the split seed and each gets a label drawn uniformly from the
*other* classes, so the fraction of wrong labels is ``p`` exactly (a uniform
draw over all classes would leave ``p / K`` of them right). Validation and
test labels stay clean.
"""

from __future__ import annotations

import torch

#: Random stream of the label noise (distinct from the split's streams).
_STREAM_LABEL_NOISE = 7


def noisy_labels(
    labels: torch.Tensor, fraction: float, num_classes: int, seed: int
) -> torch.Tensor:
    """A copy of ``labels`` (N,) int64 with ``round(fraction * N)`` of them replaced by wrong ones.

    The chosen examples and their new labels come from a CPU generator seeded
    by ``seed`` (the data split's seed), so every device and every run of the
    same data spec sees the same noisy labels. ``fraction`` 0 returns the
    labels unchanged (a copy). Raises ValueError for a fraction outside [0, 1)
    or fewer than 2 classes.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"label noise must be in [0, 1), got {fraction}")
    out = labels.clone()
    n_noisy = round(fraction * len(labels))
    if n_noisy == 0:
        return out
    if num_classes < 2:
        raise ValueError("label noise needs at least 2 classes")
    gen = torch.Generator().manual_seed(seed * 1000 + _STREAM_LABEL_NOISE)
    chosen = torch.randperm(len(labels), generator=gen)[:n_noisy]
    # An offset in 1..K-1 added modulo K: uniform over the other K - 1 classes.
    offset = torch.randint(1, num_classes, (n_noisy,), generator=gen)
    out[chosen] = (labels[chosen].cpu() + offset).remainder(num_classes).to(out.device, out.dtype)
    return out
