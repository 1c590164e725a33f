"""Optimiser set-up: named parameter groups with their own learning rates, the optimiser and the schedule.

An optimizer factory is called as ``factory(model, config) -> (optimizer, scheduler)``; the
scheduler is stepped once per epoch. Methods with other groups (rolling back) pass their own groups to
:func:`make_optimizer`, so every method uses the optimiser that ``TrainConfig.optimizer`` names.

The options beyond the papers' SGD recipe are those of the usual strong ReID baseline (Luo et al., "Bag of
Tricks and a Strong Baseline for Deep Person Re-identification", 2019, and the defaults of the torchreid and
fast-reid libraries): Adam (or AdamW, decoupled weight decay) with a base rate of a few 1e-4, and a linear
warm-up of the learning rate over the first epochs, starting from a fraction of it.
"""

import torch

from .config import OPTIMIZERS

__all__ = ["OPTIMIZERS", "param_groups", "make_optimizer", "make_scheduler", "warmup_factor", "sgd_step_optimizer"]


def param_groups(model, lrs, default_lr):
    """Split ``model``'s trainable parameters into named groups by attribute prefix.

    Args:
        model: the (unwrapped) network.
        lrs: ordered ``{prefix: lr}``, e.g. ``{"head": 0.1}``; a parameter joins the first group whose
            prefix starts its name (``"head"`` matches ``head.layers.0.weight``).
        default_lr: learning rate of the parameters no prefix matches (group ``"rest"``).
    Returns:
        a list of ``{"name", "params", "lr"}`` dicts (empty groups left out).
    """
    groups = {prefix: [] for prefix in lrs}
    rest = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        prefix = next((p for p in lrs if name == p or name.startswith(p + ".")), None)
        (groups[prefix] if prefix is not None else rest).append(parameter)
    out = [{"name": prefix, "params": params, "lr": lrs[prefix]} for prefix, params in groups.items() if params]
    if rest:
        out.append({"name": "rest", "params": rest, "lr": default_lr})
    if not out:
        raise ValueError("param_groups: the model has no trainable parameters")
    return out


def make_optimizer(groups, config):
    """The optimiser ``config.optimizer`` names over ``groups`` (each group keeps its own ``lr``).

    ``sgd``: momentum ``config.momentum`` (Nesterov option) and L2 weight decay; ``adam``: betas
    ``(config.adam_beta1, config.adam_beta2)`` and L2 weight decay added to the gradient (as Luo et al.);
    ``adamw``: the same betas with decoupled weight decay. ``config`` is a
    :class:`~ptl_ext.train.TrainConfig`; ``groups`` as :func:`param_groups` returns them.
    """
    decay = config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay
        )
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(groups, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), weight_decay=decay)


def warmup_factor(epoch, warmup_epochs, start_factor):
    """The warm-up multiplier of the learning rate at 0-based ``epoch``: ``start_factor`` at epoch 0, rising
    linearly to 1 at ``warmup_epochs`` and 1 afterwards (1 throughout when ``warmup_epochs`` is 0)."""
    if epoch >= warmup_epochs:
        return 1.0
    return start_factor + (1.0 - start_factor) * epoch / warmup_epochs


def make_scheduler(optimizer, config):
    """The per-epoch schedule of ``config``: the rate times ``gamma`` every ``step_size`` epochs, times the
    linear warm-up (:func:`warmup_factor`) over the first ``config.warmup_epochs`` epochs.

    Without warm-up this is torch's ``StepLR``; with it a ``LambdaLR`` of the product of the two factors
    (the step decay counts epochs from the start of the run, warm-up included, as the strong baseline does).
    """
    if config.warmup_epochs == 0:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    warmup, start, step, gamma = config.warmup_epochs, config.warmup_factor, config.step_size, config.gamma

    def factor(epoch):
        return warmup_factor(epoch, warmup, start) * gamma ** (epoch // step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def sgd_step_optimizer(model, config):
    """Default factory: the optimiser of ``config.optimizer`` (SGD with momentum by default) and the step
    schedule with its optional warm-up (:func:`make_scheduler`).

    The head (``model.head``) learns at ``config.head_lr`` (``None`` = ``config.lr``), everything
    else at ``config.lr``.
    """
    head_lr = config.lr if config.head_lr is None else config.head_lr
    lrs = {"head": head_lr} if hasattr(model, "head") else {}
    optimizer = make_optimizer(param_groups(model, lrs, config.lr), config)
    return optimizer, make_scheduler(optimizer, config)
