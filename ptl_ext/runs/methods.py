"""The training methods of a run: STD (``teacher``) and rolling back (``rollback_periods``)."""

from ..errors import OptionError
from .report import format_table


def std_method(spec, model, evaluator, size, device, info, evaluate=True):
    """STD (``spec.method.teacher``): ``(STD training method, teacher table rows)``; the teacher is evaluated
    once (not with ``evaluate=False``: no rows then).

    Without a teacher returns ``(None, [])``.
    """
    from ..models import count_parameters
    from ..train import STD, FrozenTeacher, load_checkpoint
    from ..train.checkpoint import model_from_checkpoint
    from ..train.distill import check_feature_sizes

    path = spec.method.teacher
    if not path:
        return None, []
    state = load_checkpoint(path)
    teacher_net = model_from_checkpoint(state, f"--teacher {path}")
    if (state["meta"]["height"], state["meta"]["width"]) != tuple(size):
        raise OptionError(
            f"--teacher {path}: trained on {state['meta']['height']}x{state['meta']['width']} "
            f"images, this run uses {size[0]}x{size[1]}"
        )
    parameters = count_parameters(teacher_net)  # before freezing: it counts trainable parameters
    amp = spec.train.amp
    teacher = FrozenTeacher(teacher_net, device, amp)
    check_feature_sizes(model, teacher)
    if not evaluate:
        return STD(teacher, spec.method.std_lambda), []
    metrics = evaluator(teacher.model, device, amp, info)
    rows = [(f"teacher {state['meta']['arch']}", parameters, metrics)]
    if info.is_main:
        print(f"STD teacher {path}:\n{format_table(rows)}", flush=True)
    return STD(teacher, spec.method.std_lambda), rows


def rollback_hook(spec, model):
    """Rolling back (``spec.method.rollback_periods``): a :class:`~ptl_ext.train.RollingBack` method holding
    ``model``'s current (pre-trained) weights, or ``None``.

    ``rollback_budget`` ``per_period`` gives every period ``period_epochs`` epochs (the paper), ``shared``
    splits ``epochs`` between the periods; ``rollback_mode`` ``base_cy`` rolls nothing back (the paper's
    Figure-4 control); ``rollback_keep`` N keeps only block N in period 2 (the paper's Table 1). The head's
    rate in the first period is ``head_lr`` (default ``head_lr_factor × lr``), the kept blocks' in later
    periods ``kept_lr`` (default ``lr / kept_lr_divisor``), both factors from the TrainConfig.
    """
    from ..train import RollbackSchedule, RollingBack

    method, train = spec.method, spec.train
    if method.rollback_periods == 0:
        return None
    fields = dict(
        decay_epoch=method.period_decay_epoch,
        lr=train.lr,
        first_head_lr=train.head_lr_factor * train.lr if train.head_lr is None else train.head_lr,
        kept_lr=train.lr / train.kept_lr_divisor if method.kept_lr is None else method.kept_lr,
        gamma=train.gamma,
        keep=method.rollback_keep,
        restore=method.rollback_mode != "base_cy",
    )
    if method.rollback_budget == "shared":
        schedule = RollbackSchedule.within(train.epochs, method.rollback_periods, **fields)
    else:
        schedule = RollbackSchedule(periods=method.rollback_periods, epochs_per_period=method.period_epochs, **fields)
    try:
        return RollingBack(model, schedule)
    except ValueError as exc:
        raise OptionError(f"--rollback-keep {method.rollback_keep}: {exc}") from None
