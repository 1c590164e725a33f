"""Neural-network building blocks: the BConv-Cells with their carried latent state."""

from .cells import BConvCell, BConvCellV2, LatentStateCell, reset_states

__all__ = ["BConvCell", "BConvCellV2", "LatentStateCell", "reset_states"]
