"""ReID evaluation: distances, CMC/mAP/mINP, exact sparse k-reciprocal re-ranking, alpha query expansion."""

from .config import AQEConfig, EvalConfig, RerankConfig, rerank_config
from .distance import METRICS, compute_distance
from .evaluate import evaluate_features, retrieval_distances
from .metrics import PROTOCOLS, RankResult, evaluate_rank
from .query_expansion import aqe
from .rerank import re_ranking

__all__ = [
    "compute_distance",
    "evaluate_rank",
    "re_ranking",
    "evaluate_features",
    "retrieval_distances",
    "aqe",
    "RankResult",
    "RerankConfig",
    "AQEConfig",
    "EvalConfig",
    "rerank_config",
    "METRICS",
    "PROTOCOLS",
]
