"""The one private torch API of the landscape engine, looked up in one place: oneDNN's fused Linear+ReLU.

``torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")`` computes
``relu(x @ w.T + b)`` in one oneDNN call (bias and ReLU fused into the matmul);
the bf16 engine uses it for the Linear+ReLU pairs of a Sequential (measured
-3..5% per grid point where it runs). It is private (underscored, no
documentation, no stability promise), so it is looked up and tried once per
process (:func:`fused_linear_relu`): where this torch lacks it, or oneDNN
cannot run it here (no bf16 inner product on this CPU), the engine keeps the
two public ops and says why. ``tests/test_landscape_private.py`` fails when
the locked torch no longer has it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

#: Where the private op lives: ``torch.ops.<namespace>.<name>``.
OP_NAMESPACE, OP_NAME = "mkldnn", "_linear_pointwise"


def private_op() -> Callable | None:
    """``torch.ops.mkldnn._linear_pointwise`` if this torch has it, else None (no call made)."""
    namespace = getattr(torch.ops, OP_NAMESPACE, None)
    try:
        return getattr(namespace, OP_NAME, None)
    except (AttributeError, RuntimeError):  # an op namespace can raise either on a miss
        return None


@cache
def fused_linear_relu() -> tuple[Callable | None, str]:
    """(the fused op, "why") when it exists and gives ``relu(linear(x))`` in bf16 here; else (None, why).

    Tried once per process on a (4, 8) x (8, 5) bf16 product against the two
    public ops (tolerance 2e-2, bf16's resolution).
    """
    op = private_op()
    if op is None:
        return None, f"this torch has no torch.ops.{OP_NAMESPACE}.{OP_NAME}"
    if not torch.backends.mkldnn.is_available():
        return None, "this torch was built without oneDNN (mkldnn)"
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=gen).bfloat16() for s in ((4, 8), (5, 8), (5,)))
    try:
        got = op(x, w, b, "relu", [], "")
    except RuntimeError as err:
        reason = str(err).split(". ")[0].strip() or type(err).__name__  # (oneDNN adds advice)
        return None, f"oneDNN cannot run the fused bf16 op on this CPU ({reason})"
    want = F.relu(F.linear(x, w, b))
    if got.shape != want.shape or not torch.allclose(got.float(), want.float(), atol=2e-2):
        return None, "the fused op's values differ from relu(linear(x)) here"
    return op, f"torch.ops.{OP_NAMESPACE}.{OP_NAME} (oneDNN fused Linear+ReLU)"


class LinearReLU(nn.Module):
    """``relu(linear(x))`` by the fused op; holds the Linear's own weight and bias Parameters."""

    def __init__(self, linear: nn.Linear, op: Callable) -> None:
        """Share ``linear``'s parameters (same names: ``weight``, ``bias``)."""
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in) -> (N, out)."""
        return self.op(x, self.weight, self.bias, "relu", [], "")


def fuse_linear_relu(model: nn.Module, skip: str) -> tuple[int, str]:
    """In every ``nn.Sequential``, fuse each Linear directly followed by a ReLU, in place.

    The Linear is replaced by a :class:`LinearReLU` holding its parameters
    (names unchanged) and the ReLU by an Identity. ``skip`` (the first layer,
    which the engine replaces by its precomputed output) is left alone.
    Returns (pairs fused, which path runs and why); 0 pairs where the fused op
    is unavailable (:func:`fused_linear_relu`).
    """
    op, why = fused_linear_relu()
    if op is None:
        return 0, why
    fused = 0
    for prefix, seq in list(model.named_modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for (cur, lin), (nxt, act) in zip(children, children[1:], strict=False):
            if f"{prefix}.{cur}".lstrip(".") == skip:
                continue
            if type(lin) is nn.Linear and type(act) is nn.ReLU and lin.bias is not None:
                setattr(seq, cur, LinearReLU(lin, op))
                setattr(seq, nxt, nn.Identity())
                fused += 1
    return fused, why
