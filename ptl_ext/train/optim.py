"""Optimiser set-up: named parameter groups with their own learning rates, SGD-M and a step schedule.

An optimizer factory is called as ``factory(model, config) -> (optimizer, scheduler)``; the
scheduler is stepped once per epoch. Methods with other groups (rolling back) pass their own.
"""

import torch


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


def sgd_step_optimizer(model, config):
    """Default factory: SGD with momentum (Nesterov option) and weight decay, ``StepLR`` per epoch.

    The head (``model.head``) learns at ``config.head_lr`` (``None`` = ``config.lr``), everything
    else at ``config.lr``.
    """
    head_lr = config.lr if config.head_lr is None else config.head_lr
    lrs = {"head": head_lr} if hasattr(model, "head") else {}
    optimizer = torch.optim.SGD(
        param_groups(model, lrs, config.lr),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    return optimizer, scheduler
