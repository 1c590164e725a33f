"""ReID evaluation: distances, CMC/mAP/mINP, exact sparse k-reciprocal re-ranking, alpha query expansion.

Names are imported from their submodules on first use (the settings in ``config`` need no torch).
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "compute_distance": "distance",
    "evaluate_rank": "metrics",
    "re_ranking": "rerank",
    "evaluate_features": "evaluate",
    "retrieval_distances": "evaluate",
    "aqe": "query_expansion",
    "RankResult": "metrics",
    "RerankConfig": "config",
    "AQEConfig": "config",
    "EvalConfig": "config",
    "rerank_config": "config",
    "METRICS": "config",
    "PROTOCOLS": "config",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = list(_EXPORTS)
