"""Everyday use of a trained network: feature extraction, ranked-result pictures and model export.

Sits on top of ``models``, ``data``, ``reid`` and ``train`` (checkpoints, the evaluator's feature path);
nothing below imports it.
"""

from .extractor import Extraction, FeatureExtractor, UnreadableImagesError, extract_to_npz, parse_market_name
from .visualize import query_stats, write_ranked_results

__all__ = [
    "Extraction", "FeatureExtractor", "UnreadableImagesError", "extract_to_npz", "parse_market_name",
    "query_stats", "write_ranked_results",
]
