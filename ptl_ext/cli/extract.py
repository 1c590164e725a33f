"""``ptl extract``: features of image files or folders from a checkpoint, written to an ``.npz`` file."""

DESCRIPTION = (
    "Extract the features of images (files or folders, searched recursively) with a `ptl train` "
    "checkpoint, at its input size and normalisation, flip-summed like `ptl eval`, and write them "
    "atomically to an .npz file with the file names (and, for Market-style names, pids and cameras)."
)


def add_options(parser):
    """The options of ``ptl extract`` (defaults from :class:`~ptl_ext.deploy.FeatureExtractor` and
    :func:`~ptl_ext.deploy.extract_to_npz`)."""
    from ..deploy.extractor import FeatureExtractor, extract_to_npz
    from .option_types import count, default_of, flag

    def default(name):
        return default_of(FeatureExtractor, name)

    parser.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE", help="image files or folders")
    parser.add_argument("--checkpoint", required=True, help="a last.pt / best.pt of `ptl train`")
    parser.add_argument("--out", required=True, help="output .npz file (written only when extraction succeeds)")
    parser.add_argument(
        "--batch-size", type=count(), default=default("batch_size"), help="images per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=count(0), default=default("workers"), help="image-decoding worker processes (default: 0)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    flag(parser, "flip", default("flip"), "sum each image's and its mirror's features (as ptl eval)")
    flag(parser, "normalize", default("normalize"), "L2-normalise the features")
    flag(
        parser,
        "skip_unreadable",
        default_of(extract_to_npz, "skip_unreadable"),
        "leave unreadable images out and list them (default: stop with the list, writing nothing)",
    )
    flag(parser, "progress", default_of(extract_to_npz, "progress"), "progress bar")


def run_extract(args):
    """Extract and write ``args.out``; returns the :class:`ptl_ext.deploy.Extraction`."""
    from ..deploy import FeatureExtractor, extract_to_npz
    from ..runs.device import select_device

    extractor = FeatureExtractor(
        args.checkpoint,
        device=select_device(args.device),
        batch_size=args.batch_size,
        flip=args.flip,
        normalize=args.normalize,
        workers=args.workers,
    )
    result = extract_to_npz(
        extractor, args.inputs, args.out, progress=args.progress, skip_unreadable=args.skip_unreadable
    )
    print(f"wrote {result.features.shape[0]} features of size {result.features.shape[1]} to {args.out}")
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}")
    return result
