"""Neural-network building blocks: the BConv-Cells with their carried latent state."""

from .cells import BConvCell, BConvCellV2, LatentStateCell, clone_states, reset_states

__all__ = ["BConvCell", "BConvCellV2", "LatentStateCell", "clone_states", "reset_states"]
