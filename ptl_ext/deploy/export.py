"""Export of the eval-mode network (image batch ``[B, 3, H, W]`` -> features ``[B, D]``) for deployment.

Formats: ``"onnx"`` (torch's ``torch.export``-based ONNX exporter; needs the ``onnx`` and
``onnxscript`` packages), ``"torchscript"`` (``torch.jit.trace``; torch marks TorchScript as
deprecated but still loads and runs it) and ``"exported-program"`` (``torch.export``, a ``.pt2``
file for ``torch.export.load``). The batch axis is dynamic in every format.

The BConv-Cells: in eval mode every cell starts from a zero state, so the cell update is a pure
function of its gates. During export each cell's update is swapped for its pure-PyTorch
decomposition (:func:`ptl_ext.reference.bconv_cell_update`: sigmoid, tanh, products), so the
exported file holds only standard operators and runs without ``ptl_ext`` or its compiled library;
the swap is undone afterwards. A network in training mode (it would classify, and carry states from
batch to batch) or one holding a non-zero carried state is refused.
"""

import contextlib
import os
import warnings

import torch
from torch import nn

from .. import _checks, reference
from .._io import atomic_write
from ..errors import MissingPackageError
from ..nn.cells import LatentStateCell
from ._model import load_network, meta_input_size

__all__ = [
    "FORMATS",
    "export_model",
    "export_checkpoint",
    "pure_pytorch_cells",
    "check_exportable",
    "load_exported",
    "run_exported",
]

FORMATS = ("onnx", "torchscript", "exported-program")
EXTENSIONS = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}
INPUT_NAME, OUTPUT_NAME = "images", "features"


@contextlib.contextmanager
def pure_pytorch_cells(model):
    """Within the block every cell of ``model`` uses :func:`ptl_ext.reference.bconv_cell_update` (pure
    PyTorch operators) instead of the compiled op; each cell's own update function is restored after."""
    cells = [m for m in model.modules() if isinstance(m, LatentStateCell)]
    saved = [cell.update_fn for cell in cells]
    for cell in cells:
        cell.update_fn = reference.bconv_cell_update
    try:
        yield model
    finally:
        for cell, fn in zip(cells, saved):
            cell.update_fn = fn


def check_exportable(model):
    """Raise ``ValueError`` unless ``model`` is an ``nn.Module`` in eval mode whose cells hold no non-zero state."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError(
            "model is in training mode; call model.eval() first: export writes the eval-mode network "
            "(images -> features), whose cells start from a zero state"
        )
    for name, module in model.named_modules():
        if isinstance(module, LatentStateCell) and module.states is not None:
            if any(bool(s.ne(0).any()) for s in module.states):
                raise ValueError(
                    f"model: cell {name or type(module).__name__} carries a non-zero latent state from "
                    "training; call ptl_ext.nn.reset_states(model) before exporting"
                )


def _example(model, input_size, batch=2):
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, *input_size, generator=generator).to(device)


def _write_onnx(program, path, opset):
    try:
        import onnx  # noqa: F401  (the exporter needs both; say which to install before it fails deeper)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise MissingPackageError(
            f"ONNX export needs the onnx and onnxscript packages ({exc}): pip install onnx onnxscript"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        onnx_program = torch.onnx.export(
            program,
            (),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            verbose=False,
            external_data=False,
        )
    # ONNXProgram.save writes a path; write beside the target, then rename over it
    atomic_write(path, lambda fh: fh.write(onnx_program.model_proto.SerializeToString()))


def export_model(model, format, path, input_size, opset=None, check=True):
    """Export ``model`` (eval mode, zero cell states) as ``format`` to ``path`` (written atomically).

    Args:
        model: the network; ``model(images [B, 3, H, W])`` must return features ``[B, D]`` (the
            eval-mode forward of every ``ptl_ext`` network). It is traced on its own device.
        format: ``"onnx"``, ``"torchscript"`` or ``"exported-program"``.
        path: output file (``.onnx`` and ``.pt`` by convention; ``.pt2``, required, for an exported program).
        input_size: ``(H, W)`` of the images (the checkpoint's training size); the batch is dynamic.
        opset: ONNX opset version (default: the exporter's); ONNX only.
        check: run the exported file on a batch of 3 random images (a batch size other than the
            example's) and compare with the eager features (ONNX: needs onnxruntime, else skipped).

    Returns:
        ``{"path", "format", "input_size", "feature_dim", "max_abs_diff", "max_abs_feature"}``; the last two
        are ``None`` when not checked.
    """
    _checks.choice(format, "format", FORMATS)
    check_exportable(model)
    input_size = _checks.size_pair(input_size, "input_size")
    if opset is not None and format != "onnx":
        raise ValueError(f"opset applies to the onnx format only, not to {format!r}")
    if opset is not None:
        _checks.integer(opset, "opset", minimum=7)
    path = os.fspath(path)
    if format == "exported-program" and not path.endswith(".pt2"):
        raise ValueError(
            f"path: torch.export.load reads .pt2 files; name the exported-program file *.pt2, got {path!r}"
        )
    input_size = tuple(input_size)
    example = _example(model, input_size)
    with pure_pytorch_cells(model), torch.no_grad():
        feature_dim = int(model(example).shape[1])
        if format == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(model, example, check_trace=False)
                atomic_write(path, lambda fh: torch.jit.save(traced, fh))
        else:
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},), strict=False)
            if format == "exported-program":
                atomic_write(path, lambda fh: torch.export.save(program, fh))
            else:
                _write_onnx(program, path, opset)
    report = {
        "path": path,
        "format": format,
        "input_size": input_size,
        "feature_dim": feature_dim,
        "max_abs_diff": None,
        "max_abs_feature": None,
    }
    if check:  # against the network as it runs in eager mode, with its own (compiled) cell update
        probe = _example(model, input_size, batch=3)
        with torch.no_grad():
            expected = model(probe).float().cpu()
        got = run_exported(path, format, probe)
        if got is not None:
            report["max_abs_diff"] = float((got - expected).abs().max())
            report["max_abs_feature"] = float(expected.abs().max())
    return report


def export_checkpoint(checkpoint, format, path, input_size=None, opset=None, check=True):
    """:func:`export_model` of the network a ``ptl train`` checkpoint (path or loaded state) describes, on the
    CPU in eval mode, at the checkpoint's training size unless ``input_size`` is given. Returns the report."""
    if isinstance(checkpoint, nn.Module):
        raise TypeError(
            "checkpoint must be a checkpoint path or a loaded checkpoint; export a module with export_model"
        )
    model, meta = load_network(checkpoint, "checkpoint")
    size = input_size or meta_input_size(meta)
    return export_model(model.cpu().eval(), format, path, size, opset=opset, check=check)


def load_exported(path, format):
    """The runnable of an exported file: a TorchScript module, an ExportedProgram's module, or an
    onnxruntime ``InferenceSession`` (raises ``ImportError`` naming onnxruntime when it is missing)."""
    _checks.choice(format, "format", FORMATS)
    if format == "torchscript":
        with warnings.catch_warnings():  # torch marks TorchScript deprecated; it still loads and runs
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(path, map_location="cpu")
    if format == "exported-program":
        return torch.export.load(path).module()
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingPackageError("running an ONNX file needs onnxruntime: pip install onnxruntime") from exc
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def run_exported(path, format, images):
    """Features ``[B, D]`` float32 (CPU) of ``images [B, 3, H, W]`` from an exported file; ``None`` for
    ONNX when onnxruntime is not installed. TorchScript and ExportedProgram files run on the images' device."""
    if format == "onnx":
        try:
            session = load_exported(path, format)
        except ImportError:
            return None
        return torch.from_numpy(session.run(None, {INPUT_NAME: images.detach().cpu().float().numpy()})[0])
    module = load_exported(path, format)
    if format == "torchscript":
        module = module.to(images.device)
    with torch.no_grad():
        return module(images).float().cpu()
