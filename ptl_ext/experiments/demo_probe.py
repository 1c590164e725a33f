"""A probe of a trained PTL network for the demo's ablations: how far the inputs of its fuse blocks'
BatchNorm layers at test time lie from the running statistics those layers learned in training.

In training the cells carry their state across batches (a state made by another image, at the same
batch position), so the fuse BatchNorm layers accumulate running statistics of side-stream outputs
made with that state; at test the cells start from zeros (the papers). A mean shift or a variance
ratio far from 1 means BatchNorm normalises test inputs with the statistics of another distribution.
"""

import torch


def _fuse_norms(model):
    norms = [(f"fuse{i}", fuse.bn) for i, fuse in enumerate(model.fuses)]
    return norms + [("final_fuse", model.final_fuse.bn)]


@torch.no_grad()
def bn_input_shift(model, loader, device="cpu"):
    """Per fuse BatchNorm, how test inputs compare with the layer's running statistics.

    Args:
        model: a :class:`~ptl_ext.models.PTLNet` (its ``fuses`` and ``final_fuse``); run in eval mode with
            whatever eval state its cells have (zeros by default).
        loader: batches ``(images, ...)`` (e.g. the query loader).
    Returns:
        ``{layer name: (shift, ratio)}``: ``shift`` is the mean over channels of ``|test mean − running mean|
        / sqrt(running var)`` (0: the means agree), ``ratio`` the mean over channels of ``test var / running
        var`` (1: the spreads agree).
    """
    sums, squares, counts, handles = {}, {}, {}, []
    norms = _fuse_norms(model)

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].float()
            sums[name] = sums.get(name, 0) + x.sum((0, 2, 3))
            squares[name] = squares.get(name, 0) + x.double().square().sum((0, 2, 3))
            counts[name] = counts.get(name, 0) + x.shape[0] * x.shape[2] * x.shape[3]

        return record

    was_training = model.training
    model.eval()
    try:
        for name, norm in norms:
            handles.append(norm.register_forward_hook(hook(name)))
        for batch in loader:
            model(batch[0].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    shift = {}
    for name, norm in norms:
        mean = sums[name] / counts[name]
        var = (squares[name] / counts[name] - mean.double().square()).float()
        running_var = norm.running_var + norm.eps
        shift[name] = (
            float(((mean - norm.running_mean).abs() / running_var.sqrt()).mean()),
            float((var / running_var).mean()),
        )
    return shift
