"""The training methods of a ``ptl train`` run: STD (``--teacher``) and rolling back (``--rollback-periods``)."""

from .options import OptionError
from .report import format_table


def std_method(args, model, evaluator, size, device, info, evaluate=True):
    """STD (``--teacher``): ``(STD training method, teacher table rows)``; the teacher is evaluated once
    (not with ``evaluate=False``: no rows then).

    Without ``--teacher`` returns ``(None, [])``.
    """
    from ..models import count_parameters
    from ..train import STD, FrozenTeacher, load_checkpoint
    from ..train.checkpoint import model_from_checkpoint
    from ..train.distill import check_feature_sizes

    if not args.teacher:
        return None, []
    state = load_checkpoint(args.teacher)
    teacher_net = model_from_checkpoint(state, f"--teacher {args.teacher}")
    if (state["meta"]["height"], state["meta"]["width"]) != tuple(size):
        raise OptionError(
            f"--teacher {args.teacher}: trained on {state['meta']['height']}x{state['meta']['width']} "
            f"images, this run uses {size[0]}x{size[1]}"
        )
    parameters = count_parameters(teacher_net)  # before freezing: it counts trainable parameters
    teacher = FrozenTeacher(teacher_net, device, args.amp)
    check_feature_sizes(model, teacher)
    if not evaluate:
        return STD(teacher, args.std_lambda), []
    metrics = evaluator(teacher.model, device, args.amp, info)
    rows = [(f"teacher {state['meta']['arch']}", parameters, metrics)]
    if info.is_main:
        print(f"STD teacher {args.teacher}:\n{format_table(rows)}", flush=True)
    return STD(teacher, args.std_lambda), rows


def rollback_hook(args, model):
    """Rolling back (``--rollback-periods``): a :class:`~ptl_ext.train.RollingBack` method holding ``model``'s
    current (pre-trained) weights, or ``None``.

    ``--rollback-budget per_period`` gives every period ``--period-epochs`` epochs (the paper), ``shared``
    splits ``--epochs`` between the periods; ``--rollback-mode base_cy`` rolls nothing back (the paper's
    Figure-4 control); ``--rollback-keep N`` keeps only block N in period 2 (the paper's Table 1).
    """
    from ..train import RollbackSchedule, RollingBack

    if args.rollback_periods == 0:
        return None
    fields = dict(
        decay_epoch=args.period_decay_epoch,
        lr=args.lr,
        first_head_lr=10 * args.lr if args.head_lr is None else args.head_lr,
        kept_lr=args.lr / 10 if args.kept_lr is None else args.kept_lr,
        gamma=args.gamma,
        keep=args.rollback_keep,
        restore=args.rollback_mode != "base_cy",
    )
    if args.rollback_budget == "shared":
        schedule = RollbackSchedule.within(args.epochs, args.rollback_periods, **fields)
    else:
        schedule = RollbackSchedule(periods=args.rollback_periods, epochs_per_period=args.period_epochs, **fields)
    try:
        return RollingBack(model, schedule)
    except ValueError as exc:
        raise OptionError(f"--rollback-keep {args.rollback_keep}: {exc}") from None
