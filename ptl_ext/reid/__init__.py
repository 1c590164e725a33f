"""ReID evaluation: distances, CMC/mAP/mINP, exact sparse k-reciprocal re-ranking (SPEC section 5)."""

from .distance import compute_distance
from .evaluate import evaluate_features
from .metrics import RankResult, evaluate_rank
from .rerank import re_ranking

__all__ = ["compute_distance", "evaluate_rank", "re_ranking", "evaluate_features", "RankResult"]
