"""``dessilbi``: the solution path of DessiLBI, and the subnet at an early-stopped point of it.

Fu et al. 2020 ("Exploring Structural Sparsity of Deep Networks via
Differential Inclusion Paths", ICML). The weights ``W`` are lifted to a pair
``(W, Gamma)`` coupled by the loss ``L(W) + ||W - Gamma||^2 / (2 nu)``; ``W``
follows gradient descent on it while ``Gamma`` follows the linearized Bregman
iteration (eq. 10 of the paper; the authors' ``slbi_opt.SLBI.step``)::

    W     <- W - kappa * alpha * (grad L(W) + (W - Gamma) / nu)     (grad L: SGD momentum)
    Z     <- Z + (alpha / nu) * (W_old - Gamma)
    Gamma <- kappa * prox(Z)

with the group-lasso proximal map over filters (conv) and neurons (linear),
``prox(Z)_g = max(0, 1 - lam / ||Z_g||) Z_g``, so a unit enters the support of
``Gamma`` once its accumulated ``||Z_g||`` passes ``lam``. ``Z`` starts at zero,
so the support starts empty and grows along the path: important filters and
neurons are selected first (the inverse-scale-space picture). The defaults are
the authors' (``kappa = 1``, ``mu = nu = 100``, ``lr = alpha = 0.1``, momentum
0.9, ``lambda = 1``; DessiLBI ``code/slbi_opt.py``, ``example/lottery``).

The run stores its path in ``metrics.notes["path"]``: for every epoch (0: the
start) and every lifted layer, the support fraction and which units are on (a
hex bit string, unit 0 the lowest bit), and the path's test accuracy. The
subnet (the paper's "winning ticket from DessiLBI", Section 5.3) ranks every
layer's units as the authors' ``update_prune_order`` does, ``||W_g|| - e_g``
with ``e_g`` the epoch unit ``g`` entered the support (never: 2000), at an
early-stopped epoch: ``stop_epoch``, or by default the first epoch whose support
holds ``1 - sparsity`` of the lifted units. Each layer keeps its best
``1 - sparsity`` units (``unit = "channels"``, as ``l1-structured``, whose
channel groups and masks it shares: producer rows and consumer columns), and
the masked network trains on with the run's recipe: from the seeded
initialisation (``retrain = "init"``, the authors' ``lottery_ticket.py``) or
from the path's weights at that epoch (``"path"``).

Deviations: the authors' fc layers use an element-wise lasso map; here every
lifted layer (filters and neurons) is grouped, as the paper's structural
sparsity asks. Weight decay (the run's ``train.weight_decay``) enters the
gradient before momentum. The iteration replaces the run's optimizer for the
path phase (the run's learning-rate schedule is kept, scaled to ``lr``), so
fp16 (whose gradient scaler needs that optimizer) is refused.
"""

from __future__ import annotations

from typing import Any

import torch

from analysis.api import Analysis, Study, status_record
from analysis.api import get as get_result
from analysis.errors import SpecError
from analysis.sparsity.base import Method, Param, kept_dense, require_positive
from analysis.sparsity.l1_structured import (
    channel_groups,
    channel_masks,
    channels_to_remove,
    keep_top,
)
from analysis.specs import RunSpec, check_float
from analysis.training_types import (
    Callback,
    MethodOutput,
    RunContext,
    TrainState,
    apply_masks,
    state_of,
)

#: The entry epoch of a unit that never entered the support (the authors' 2000).
NEVER = 2000


def group_prox(z: torch.Tensor, lam: float) -> torch.Tensor:
    """Group soft-thresholding over the rows of ``z`` (out, ...): ``max(0, 1 - lam/||z_g||) z_g``.

    The proximal map of ``lam * sum_g ||Gamma_g||_2`` (group lasso), one group per
    filter (conv, (out, in, kh, kw)) or neuron (linear, (out, in)).
    """
    norms = z.reshape(len(z), -1).norm(dim=1)
    scale = (1.0 - lam / norms.clamp_min(1e-30)).clamp_min(0.0)
    return z * scale.view(-1, *([1] * (z.dim() - 1)))


def support_bits(on: torch.Tensor) -> str:
    """Hex string of a (n,) bool support, unit i at bit i (``int(s, 16) >> i & 1``)."""
    value = 0
    for i in torch.nonzero(on.cpu()).flatten().tolist():
        value |= 1 << i
    return format(value, "x")


def bits_support(bits: str, n: int) -> list[bool]:
    """The (n,) support a :func:`support_bits` string encodes."""
    value = int(bits, 16)
    return [bool(value >> i & 1) for i in range(n)]


class LBIPath(Callback):
    """The DessiLBI iteration as a training callback, recording the support of Gamma per epoch.

    ``before_step`` takes the step itself (after backward, before the run's
    optimizer) and hands the optimizer no gradient (``grad = None``: torch
    optimizers skip such parameters). The step size is the loop's current
    learning rate (``fit(lr_scale=lr / train.lr)`` makes it ``lr`` times the schedule).
    Z, Gamma and the momentum live on the parameters' device.
    """

    def __init__(
        self,
        lifted: dict[str, str],
        *,
        kappa: float,
        nu: float,
        lam: float,
        momentum: float,
        weight_decay: float,
    ) -> None:
        """``lifted``: {producer weight name: channel group}, the weights paired with a Gamma."""
        self.lifted, self.kappa, self.nu, self.lam = lifted, kappa, nu, lam
        self.momentum, self.weight_decay = momentum, weight_decay
        self.on: dict[str, list[str]] = {name: [] for name in lifted}
        self.fraction: dict[str, list[float]] = {name: [] for name in lifted}
        self.entry: dict[str, torch.Tensor] = {}

    def on_start(self, state: TrainState) -> None:
        """Z = Gamma = 0 (an empty support) for every lifted weight; record epoch 0."""
        params = dict(state.model.named_parameters())
        self.weights = {name: params[name] for name in self.lifted}
        self.z = {name: torch.zeros_like(w) for name, w in self.weights.items()}
        self.gamma = {name: torch.zeros_like(w) for name, w in self.weights.items()}
        self.buffers: dict[torch.Tensor, torch.Tensor] = {}
        self.by_param = {w: name for name, w in self.weights.items()}
        self.entry = {
            name: torch.full((len(w),), NEVER, dtype=torch.long) for name, w in self.weights.items()
        }
        self._record(0)

    @torch.no_grad()
    def before_step(self, state: TrainState) -> None:
        """One DessiLBI step on every parameter of the optimizer (lifted or plain SGD)."""
        for group in state.optimizer.param_groups:
            alpha = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if self.weight_decay and p.dim() > 1:
                    grad = grad + self.weight_decay * p
                buf = self.buffers.get(p)
                buf = grad.clone() if buf is None else buf.mul_(self.momentum).add_(grad)
                self.buffers[p] = buf
                name = self.by_param.get(p)
                if name is None:
                    p.add_(buf, alpha=-alpha * self.kappa)
                else:
                    self._lifted_step(name, p, buf, alpha)
                p.grad = None

    def _lifted_step(self, name: str, w: torch.Tensor, buf: torch.Tensor, alpha: float) -> None:
        """W, Z and Gamma of one lifted weight (eq. 10 of Fu et al. 2020)."""
        gamma = self.gamma[name]
        coupling = (w - gamma) / self.nu  # d/dW of ||W - Gamma||^2 / (2 nu); -d/dGamma
        self.z[name].add_(coupling, alpha=alpha)
        w.add_(buf + coupling, alpha=-alpha * self.kappa)
        self.gamma[name] = self.kappa * group_prox(self.z[name], self.lam)

    def on_epoch_end(self, state: TrainState) -> None:
        """Record which units of every lifted layer are in the support of Gamma."""
        self._record(state.epoch + 1)

    def support(self, name: str) -> torch.Tensor:
        """(n,) bool: the units of ``name`` whose group of Gamma is nonzero."""
        return self.gamma[name].reshape(len(self.gamma[name]), -1).norm(dim=1).cpu() > 0

    def _record(self, epoch: int) -> None:
        """Append the support of every lifted layer at ``epoch``; note first entries."""
        for name in self.lifted:
            on = self.support(name)
            self.on[name].append(support_bits(on))
            self.fraction[name].append(float(on.float().mean()))
            entered = on & (self.entry[name] == NEVER)
            self.entry[name][entered] = epoch

    def entry_at(self, name: str, epoch: int) -> torch.Tensor:
        """(n,) the epoch each unit of ``name`` entered the support, counting epochs <= ``epoch``."""
        entry = self.entry[name].clone()
        entry[entry > epoch] = NEVER
        return entry


def stop_epoch(path: LBIPath, sparsity: float, asked: int) -> tuple[int, bool]:
    """(the early-stopped epoch, whether the support held ``1 - sparsity`` of the units there).

    ``asked`` > 0 is taken as given (capped at the path's last epoch); 0 means
    the first epoch whose support over all lifted units reaches ``1 - sparsity``
    (the last epoch if none does).
    """
    last = len(next(iter(path.fraction.values()), [0])) - 1
    sizes = {name: len(path.entry[name]) for name in path.lifted}
    total = max(sum(sizes.values()), 1)
    held = [
        sum(path.fraction[n][e] * sizes[n] for n in path.lifted) / total for e in range(last + 1)
    ]
    if asked > 0:
        epoch = min(asked, last)
        return epoch, held[epoch] >= 1.0 - sparsity - 1e-12
    for epoch, fraction in enumerate(held):
        if fraction >= 1.0 - sparsity - 1e-12:
            return epoch, True
    return last, False


class DessiLBI(Method):
    """DessiLBI's path (W, Gamma) and the subnet its support selects at an early-stopped epoch."""

    name = "dessilbi"
    unit = "channels"
    params = (
        Param(
            "kappa", float, 1.0, "damping kappa: Gamma = kappa prox(Z), W steps kappa*lr", 0, 1e4
        ),
        Param("nu", float, 100.0, "coupling nu of ||W - Gamma||^2 / (2 nu) (authors' mu)", 0, 1e6),
        Param(
            "lr", float, 0.1, "step size alpha of the iteration (times the run's schedule)", 0, 10
        ),
        Param("lam", float, 1.0, "group-lasso strength lambda of the proximal map", 0, 1e6),
        Param("stop_epoch", int, 0, "epoch whose support ranks the units (0: first to hold)", 0),
        Param("retrain", str, "init", "train the subnet from", options=("init", "path")),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def check_options(self, options: dict) -> None:
        """kappa, nu, lr and lam must be positive (0 stops the path or divides by zero)."""
        for field in ("kappa", "nu", "lr", "lam"):
            check_float(f"method {self.name!r}", field, options[field], 0.0, None, lo_open=True)

    def check_run(self, spec: RunSpec, steps: int) -> None:
        """The path steps the weights itself: no fp16 (its gradient scaler needs the optimizer)."""
        if spec.train.precision == "fp16":
            raise SpecError(
                "train.precision",
                "'fp32' or 'bf16' (DessiLBI takes its own steps, without fp16's gradient scaler)",
                spec.train.precision,
                owner=f"method {self.name!r}",
            )
        stop = spec.sparsity.opt("stop_epoch")
        if stop > spec.train.epochs:
            raise SpecError(
                "stop_epoch",
                f"an int in the range [0, {spec.train.epochs}] (the path's epochs)",
                stop,
                owner=f"method {self.name!r}",
            )

    def run(self, ctx: RunContext) -> MethodOutput:
        """Train along the DessiLBI path, then train the subnet of its early-stopped support."""
        s = ctx.spec.sparsity
        self.check_run(ctx.spec, ctx.total_steps())
        model = ctx.build()
        init = state_of(model)
        groups = {producer: group for group, producer, _ in channel_groups(model)}
        path = LBIPath(
            groups,
            kappa=s.opt("kappa"),
            nu=s.opt("nu"),
            lam=s.opt("lam"),
            momentum=ctx.spec.train.momentum,
            weight_decay=ctx.spec.train.weight_decay,
        )
        scale = s.opt("lr") / ctx.spec.train.lr
        walk = ctx.fit(model, phase="DessiLBI path", callbacks=[path], lr_scale=scale)
        epoch, reached = stop_epoch(path, s.sparsity, s.opt("stop_epoch"))
        step = 0 if epoch == 0 else walk.history[epoch - 1]["step"]
        model.load_state_dict(walk.snapshots[step])
        dense = kept_dense(s, model.prunable_names())
        masks, kept = subnet_masks(model, path, epoch, s.sparsity, dense)
        if s.opt("retrain") == "init":
            model.load_state_dict(init)
        apply_masks(model, masks)
        start = state_of(model)
        fit = ctx.fit(model, masks, phase="retrain subnet")
        notes = {
            "path": path_record(path, walk.history),
            "stop_epoch": epoch,
            "support_reached": reached,
            "retrain": s.opt("retrain"),
            "kept_units": kept,
        }
        history = [dict(h, phase="retrain") for h in fit.history]
        start_state = init if s.opt("retrain") == "init" else start
        return MethodOutput(state_of(model), masks, history, start_state, fit.snapshots, notes)


def subnet_masks(
    model: torch.nn.Module,
    path: LBIPath,
    epoch: int,
    sparsity: float,
    dense: set[str] | frozenset[str] = frozenset(),
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Masks keeping each lifted layer's best ``1 - sparsity`` units at ``epoch`` of the path.

    A unit group touching a ``dense`` weight (the ``keep_dense`` option) keeps every unit.

    A unit's score is the authors' prune order ``||W_g||_2 - e_g`` (``model``
    holds the path's weights at ``epoch``; ``e_g`` its entry epoch into the
    support, :data:`NEVER` if it had not entered by then). Returns (masks, kept units per layer).
    """
    params = dict(model.named_parameters())
    touching = {g for g, _, axes in channel_groups(model) if dense & {k for k, _ in axes}}
    keep, kept = {}, {}
    for name, group in path.lifted.items():
        if group in touching:
            continue
        w = params[name].detach()
        norms = w.reshape(len(w), -1).norm(dim=1).cpu().double()
        score = norms - path.entry_at(name, epoch).double()
        keep[group] = keep_top(score, channels_to_remove(len(w), sparsity))
        kept[name] = int(keep[group].sum())
    return channel_masks(model, keep), kept


def path_record(path: LBIPath, history: list[dict]) -> dict:
    """The path as stored in the run's notes: epochs, test accuracy, per-layer support."""
    epochs = list(range(len(next(iter(path.fraction.values()), [0]))))
    return {
        "epochs": epochs,
        "test_acc": [None, *[h.get("test_acc") for h in history]][: len(epochs)],
        "layers": {
            name: {
                "group": group,
                "units": len(path.entry[name]),
                "support": path.fraction[name],
                "on": path.on[name],
            }
            for name, group in path.lifted.items()
        },
    }


# ---------------------------------------------------------------------------
# the study's ``dessilbi`` section: the path of every dessilbi run (stored with the run)


def summarize_paths(study: Study, store: Any) -> list[dict]:
    """The ``dessilbi`` section of ``show --json``: per dessilbi run, its stored path."""
    out = []
    for spec in study.runs():
        if spec.sparsity.method != DessiLBI.name:
            continue
        record = status_record(spec, store)
        item = {"label": spec.label, "seed": spec.seed, **record}
        if record["status"] == "cached":
            metrics = get_result(spec, store=store, compute=False).metrics
            notes = metrics.get("notes", {})
            item.update({k: notes.get(k) for k in PATH_FIELDS})
            item["requested_sparsity"] = metrics["requested_sparsity"]
            item["achieved_sparsity"] = metrics["achieved_sparsity"]
            item["test_acc"] = metrics["test_acc"]
        out.append(item)
    return out


#: Notes of a dessilbi run copied into its ``dessilbi`` record (docs/summary.md).
PATH_FIELDS = ("path", "stop_epoch", "support_reached", "retrain", "kept_units")


def no_specs(study: Study) -> list:
    """The ``dessilbi`` part asks for nothing beyond the study's runs."""
    return []


#: The ``dessilbi`` part: nothing of its own to compute (the runs part trains the runs).
ANALYSIS = Analysis(name="dessilbi", kinds=(), specs=no_specs, summarize=summarize_paths)
