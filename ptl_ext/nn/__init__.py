"""Neural-network building blocks: the BConv-Cells with their carried latent state."""

from .cells import (
    STATE_MODES,
    BConvCell,
    BConvCellV2,
    LatentStateCell,
    accumulate_eval_states,
    clone_states,
    reset_states,
    set_state_mode,
)

__all__ = [
    "BConvCell",
    "BConvCellV2",
    "LatentStateCell",
    "reset_states",
    "clone_states",
    "set_state_mode",
    "accumulate_eval_states",
    "STATE_MODES",
]
