"""``learned-supermask``: a mask learned on the untrained network, whose weights never change.

Zhou et al. 2019 ("Deconstructing Lottery Tickets") show that masks alone, on
the initial weights, reach far above chance ("supermasks"), and learn them
directly; Ramanujan et al. 2020 ("What's Hidden in a Randomly Weighted Neural
Network?") give the procedure used here, *edge-popup*: every prunable weight
gets a score; the forward pass keeps each layer's top ``1 - sparsity``
fraction of weights by |score| (the rest are zero), and the scores learn by
straight-through gradients, ``dL/d|s| = dL/dw_eff * w`` (the mask is treated
as the identity on the way back; the ranking and the gradient both use |s|). The weights stay at the seeded initialisation
(optionally Ramanujan et al.'s *signed constant*: ``sign(w)`` times the
layer's initial standard deviation), BatchNorm's affine parameters stay at
their initial 1 and 0, and only the scores train, with SGD (momentum 0.9,
weight decay 5e-4, the run's batch size, epochs and learning-rate schedule,
the method's own ``lr``, Ramanujan et al.'s 0.1 by default). Scores start
Kaiming-uniform, drawn from the run's seeded CPU generator.

Corners cut, said here: training is fp32 without augmentation (the recipe's
``precision`` and ``augment`` are not used), and the sparsity is layerwise
(Ramanujan et al.'s ``k`` per layer), the output layer included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.func import functional_call

from analysis.sparsity.base import Method, Param, kept_dense, require_positive
from analysis.train import evaluate, lr_factor
from analysis.training_types import MethodOutput, RunContext, apply_masks, state_of


def top_fraction(scores: torch.Tensor, keep: float) -> torch.Tensor:
    """bool mask (scores' shape) of the ``round(keep * n)`` (at least 1) largest |scores|."""
    n = scores.numel()
    k = max(1, round(keep * n))
    flat = scores.detach().abs().flatten()
    mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
    mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view_as(scores)


class LearnedSupermask(Method):
    """Edge-popup: learn which initial weights to keep; the weights never train."""

    name = "learned-supermask"
    params = (
        Param("lr", float, 0.1, "SGD learning rate of the scores", lo=1e-6, hi=10.0),
        Param(
            "signed_constant",
            bool,
            False,
            "weights set to sign(w) x the layer's initial std (Ramanujan et al.)",
        ),
    )

    def check_sparsity(self, sparsity: float) -> None:
        """Needs a sparsity above 0."""
        require_positive(self.name, sparsity)

    def run(self, ctx: RunContext) -> MethodOutput:
        """Learn the scores for the run's epochs; the masked initial network is the result."""
        s = ctx.spec.sparsity
        model = ctx.build()
        names = model.prunable_names()
        frozen = {n: p.detach() for n, p in model.named_parameters()}
        if s.opt("signed_constant"):
            with torch.no_grad():
                for n in names:
                    frozen[n].copy_(frozen[n].sign() * frozen[n].std())
        init = state_of(model)
        scores = self._scores(ctx, frozen, set(names) - kept_dense(s, names))
        history = self._train(ctx, model, frozen, scores, 1.0 - s.sparsity)
        masks = {
            n: top_fraction(scores[n], 1.0 - s.sparsity)
            if n in scores
            else torch.ones_like(frozen[n], dtype=torch.bool)
            for n in names
        }
        apply_masks(model, masks)
        notes = {"score_lr": s.opt("lr"), "signed_constant": s.opt("signed_constant")}
        return MethodOutput(state_of(model), masks, history, init, {}, notes)

    @staticmethod
    def _scores(ctx: RunContext, frozen: dict, names: set[str]) -> dict[str, torch.Tensor]:
        """Kaiming-uniform scores (bound sqrt(6 / fan_in)) from the run's CPU generator."""
        gen = ctx.generator("prune")
        out = {}
        for n in sorted(names):
            w = frozen[n]
            bound = math.sqrt(6.0 / max(w[0].numel(), 1))
            draw = (torch.rand(w.shape, generator=gen) * 2.0 - 1.0) * bound
            out[n] = draw.to(w.device).requires_grad_(True)
        return out

    def _train(self, ctx, model, frozen, scores, keep) -> list[dict]:
        """SGD on the scores over the run's epochs; one history row per epoch."""
        spec, data = ctx.spec.train, ctx.data
        lr = ctx.spec.sparsity.opt("lr")
        opt = torch.optim.SGD(scores.values(), lr=lr, momentum=0.9, weight_decay=5e-4)
        x_all, y_all = data.train_x, data.train_y
        device = next(model.parameters()).device
        total = ctx.total_steps()
        step, history = 0, []
        model.train()
        for epoch in range(spec.epochs):
            order = torch.randperm(len(y_all), generator=ctx.generator("data", epoch))
            for start in range(0, len(order) - spec.batch_size + 1, spec.batch_size):
                idx = order[start : start + spec.batch_size]
                x, y = x_all[idx].to(device), y_all[idx].to(device)
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(step, total, spec.schedule)
                weights = dict(frozen)
                for n, score in scores.items():
                    size = score.abs()  # the ranking is by |score|, so the gradient is too
                    gate = top_fraction(score, keep).to(score.dtype)
                    # Straight through: the forward pass sees w * mask, the backward pass
                    # gives |score| the gradient w * dL/dw_eff (the mask as the identity).
                    weights[n] = frozen[n] * (gate + size - size.detach())
                loss = F.cross_entropy(functional_call(model, weights, (x,)), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            history.append(self._record(model, frozen, scores, keep, data, epoch, step))
            model.train()
        return history

    @staticmethod
    def _record(model, frozen, scores, keep, data, epoch: int, step: int) -> dict:
        """Test and validation loss and accuracy of the masked initial network now."""
        masked = {
            n: frozen[n] * top_fraction(s, keep).to(frozen[n].dtype) for n, s in scores.items()
        }
        saved = {n: p.detach().clone() for n, p in model.named_parameters() if n in masked}
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in masked:
                    p.copy_(masked[n])
        test_loss, test_acc = evaluate(model, data.test_x, data.test_y)
        val = evaluate(model, data.val_x, data.val_y) if len(data.val_y) else (None, None)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in saved:
                    p.copy_(saved[n])
        return {
            "epoch": epoch + 1,
            "step": step,
            "phase": "supermask",
            "test_loss": test_loss,
            "test_acc": test_acc,
            "val_loss": val[0],
            "val_acc": val[1],
        }
