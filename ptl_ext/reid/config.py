"""The options of evaluation, k-reciprocal re-ranking and alpha query expansion, checked once where they are made."""

from dataclasses import dataclass

from .. import _checks

METRICS = ("euclidean", "cosine")  # the feature distances of compute_distance


@dataclass(frozen=True)
class RerankConfig:
    """k-reciprocal re-ranking options (Zhong et al., CVPR 2017); the one home of their defaults.

    Attributes:
        k1: size of the k-reciprocal neighbourhoods (an integer >= 1; ``k1 + 1 <= Q + G`` at use).
        k2: query-expansion neighbours of V (an integer >= 1; 1 disables it; ``k2 <= Q + G`` at use).
        lambda_value: weight of the original distance in the final one, in [0, 1].
    """

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3

    def __post_init__(self):
        object.__setattr__(self, "k1", _checks.positive_int(self.k1, "k1"))
        object.__setattr__(self, "k2", _checks.positive_int(self.k2, "k2"))
        object.__setattr__(self, "lambda_value", _checks.real(self.lambda_value, "lambda_value", 0.0, 1.0))

    def check_size(self, total):
        """Raise a ValueError unless ``total = Q + G`` features are enough for ``k1`` and ``k2``."""
        if self.k1 + 1 > total:
            raise ValueError(
                f"k1 + 1 = {self.k1 + 1} neighbours are needed but there are only Q + G = {total} features"
            )
        if self.k2 > total:
            raise ValueError(f"k2 = {self.k2} exceeds the number of features Q + G = {total}")


def rerank_config(rerank, k1=None, k2=None, lambda_value=None):
    """The :class:`RerankConfig` that ``rerank`` asks for, or ``None`` for no re-ranking.

    ``rerank`` is a :class:`RerankConfig` (then ``k1``, ``k2``, ``lambda_value`` must be ``None``) or a bool;
    with ``True`` the given ``k1``, ``k2``, ``lambda_value`` replace the defaults. With ``False`` they are
    still checked (so a bad value fails at once, not when re-ranking is turned on), then unused.
    """
    given = {name: v for name, v in (("k1", k1), ("k2", k2), ("lambda_value", lambda_value)) if v is not None}
    if isinstance(rerank, RerankConfig):
        if given:
            raise ValueError(f"pass {', '.join(given)} inside the RerankConfig given as rerank, not beside it")
        return rerank
    config = RerankConfig(**given)
    return config if _checks.boolean(rerank, "rerank") else None


@dataclass(frozen=True)
class AQEConfig:
    """Alpha query expansion options (see :func:`ptl_ext.reid.aqe`).

    Attributes:
        k: neighbours averaged into each feature, itself included (an integer >= 0; 0 turns expansion off).
        alpha: exponent of the cosine-similarity weights (a number >= 0).
    """

    k: int = 0
    alpha: float = 3.0

    def __post_init__(self):
        object.__setattr__(self, "k", _checks.integer(self.k, "aqe_k", minimum=0))
        object.__setattr__(self, "alpha", _checks.real(self.alpha, "aqe_alpha", 0.0))

    @property
    def enabled(self):
        """True when expansion is on (``k >= 1``)."""
        return self.k >= 1


PROTOCOLS = ("market", "cuhk03")


@dataclass(frozen=True)
class EvalConfig:
    """Options of :func:`ptl_ext.reid.evaluate_features` and :func:`ptl_ext.reid.retrieval_distances`; the one
    home of their defaults. Build it from the functions' keywords with :meth:`from_options`.

    Attributes:
        metric: ``"euclidean"`` (squared) or ``"cosine"``; re-ranking needs ``"euclidean"``.
        normalize: L2-normalise the features first (default ``True``, the one default of the library:
            :class:`ptl_ext.train.ReIDEvaluator`, ``ptl train`` and ``ptl eval`` read it; ``False`` ranks the
            features as given).
        rerank: a :class:`RerankConfig`, or ``None`` for no re-ranking; aqe: an :class:`AQEConfig`.
        max_rank, protocol, num_draws, seed: as in :func:`ptl_ext.reid.evaluate_rank`.
        backend: re-ranking's neighbour search (``"auto"``, ``"torch"``, ``"faiss"``); search: its GEMM format
            (see :func:`ptl_ext.reid.knn.knn_graph`). block_rows: query rows per block (``None``: about 2^24
            distances per block).
    """

    metric: str = "euclidean"
    normalize: bool = True
    rerank: RerankConfig = None
    aqe: AQEConfig = AQEConfig()
    max_rank: int = 50
    protocol: str = "market"
    backend: str = "auto"
    search: str = "auto"
    block_rows: int = None
    num_draws: int = 10
    seed: int = 0

    def __post_init__(self):
        from .knn import BACKENDS
        from .screen import SEARCH_FORMATS

        _checks.choice(self.metric, "metric", METRICS)
        _checks.boolean(self.normalize, "normalize")
        if self.rerank is not None and not isinstance(self.rerank, RerankConfig):
            raise TypeError(f"rerank must be a RerankConfig or None, got {type(self.rerank).__name__}")
        if self.rerank is not None and self.metric != "euclidean":
            raise ValueError(
                "rerank=True works on squared euclidean distances: pass metric='euclidean' "
                "(with normalize=True for cosine-like ranking)"
            )
        if not isinstance(self.aqe, AQEConfig):
            raise TypeError(f"aqe must be an AQEConfig, got {type(self.aqe).__name__}")
        _checks.positive_int(self.max_rank, "max_rank")
        _checks.choice(self.protocol, "protocol", PROTOCOLS)
        _checks.choice(self.backend, "backend", BACKENDS)
        _checks.choice(self.search, "search", SEARCH_FORMATS)
        if self.block_rows is not None:
            _checks.positive_int(self.block_rows, "block_rows")
        _checks.positive_int(self.num_draws, "num_draws")
        _checks.integer(self.seed, "seed")

    @classmethod
    def from_options(
        cls, rerank=False, k1=None, k2=None, lambda_value=None, aqe_k=AQEConfig.k, aqe_alpha=AQEConfig.alpha, **options
    ):
        """The config of the functions' keywords: ``rerank`` as in :func:`rerank_config` (a bool with ``k1``,
        ``k2``, ``lambda_value``, or a :class:`RerankConfig`), ``aqe_k``/``aqe_alpha`` for :class:`AQEConfig`,
        the other attributes by name (an unknown name is a TypeError naming it)."""
        unknown = sorted((set(options) - set(cls.__dataclass_fields__)) | ({"aqe"} & set(options)))
        if unknown:
            raise TypeError(f"unexpected option {unknown[0]!r}")
        return cls(rerank=rerank_config(rerank, k1, k2, lambda_value), aqe=AQEConfig(aqe_k, aqe_alpha), **options)
