"""Neural-network building blocks: the BConv-Cells with their carried latent state.

Names are imported from their submodules on first use (``STATE_MODES`` needs no torch).
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "BConvCell": "cells",
    "BConvCellV2": "cells",
    "LatentStateCell": "cells",
    "reset_states": "cells",
    "clone_states": "cells",
    "set_state_mode": "cells",
    "accumulate_eval_states": "cells",
    "STATE_MODES": "modes",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = list(_EXPORTS)
