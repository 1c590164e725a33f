"""Everyday use of a trained network: feature extraction, ranked-result pictures and model export.

Sits on top of ``models``, ``data``, ``reid`` and ``train`` (checkpoints, the evaluator's feature path);
nothing below imports it.
"""

from .export import (
    FORMATS,
    check_exportable,
    export_checkpoint,
    export_model,
    load_exported,
    pure_pytorch_cells,
    run_exported,
)
from .extractor import Extraction, FeatureExtractor, UnreadableImagesError, extract_to_npz, parse_market_name
from .visualize import query_stats, write_ranked_items, write_ranked_results

__all__ = [
    "FORMATS",
    "check_exportable",
    "export_checkpoint",
    "export_model",
    "load_exported",
    "pure_pytorch_cells",
    "run_exported",
    "Extraction",
    "FeatureExtractor",
    "UnreadableImagesError",
    "extract_to_npz",
    "parse_market_name",
    "query_stats",
    "write_ranked_items",
    "write_ranked_results",
]
