"""``ptl export``: the eval-mode network of a checkpoint as ONNX, TorchScript or an ExportedProgram."""

DESCRIPTION = (
    "Export the evaluation network of a `ptl train` checkpoint (an image batch in, features out, "
    "dynamic batch axis). Cells start from a zero state in evaluation, so they are exported as plain "
    "sigmoid/tanh/product operators: the file needs neither ptl-ext nor its compiled library. The "
    "written file is checked against the live network and the largest difference printed."
)


def add_options(parser):
    """The options of ``ptl export``."""
    from ..deploy import FORMATS
    from .option_types import Number, flag

    parser.add_argument("--checkpoint", required=True, help="a last.pt / best.pt of `ptl train`")
    parser.add_argument(
        "--format", choices=FORMATS, required=True, help="onnx, torchscript or exported-program (a .pt2 file)"
    )
    parser.add_argument("--out", required=True, help="output file (written atomically)")
    parser.add_argument("--opset", type=Number(int, 7), default=None, help="ONNX opset (default: the exporter's)")
    flag(parser, "check", True, "run the written file and compare it with the network's own features")


def run_export(args):
    """Export as ``args`` says; returns the export report dict."""
    from ..deploy import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.format, args.out, opset=args.opset, check=args.check)
    height, width = report["input_size"]
    line = (
        f"wrote {report['format']} {report['path']}: images [N, 3, {height}, {width}] -> [N, {report['feature_dim']}]"
    )
    if report["max_abs_diff"] is not None:
        line += (
            f"; largest difference to the network {report['max_abs_diff']:.3g} "
            f"(features up to {report['max_abs_feature']:.3g})"
        )
    print(line)
    return report
