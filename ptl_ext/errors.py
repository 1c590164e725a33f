"""Exception types of problems the user can fix (bad data, a used run folder, a mismatched checkpoint, ...).

Every :class:`UserError` carries a one-line message that names the file, folder or option and says what to
do, so a command-line front end can print it without a traceback; any other exception is a bug and keeps
its traceback. Each subclass also derives from the built-in type that code before it raised (``ValueError``,
``RuntimeError``, ...), so ``except ValueError`` keeps working.

A ``UserError`` raised in a DataLoader worker process reaches the main process re-created by torch from a
message holding the worker's whole traceback; the constructor keeps only the original one-line message
(the full text stays in :attr:`UserError.worker_traceback`).
"""

__all__ = [
    "UserError",
    "MissingPackageError",
    "OptionError",
    "RunFolderError",
    "ResumeMismatchError",
    "MethodMismatchError",
    "CheckpointError",
    "DataError",
    "ImageDecodeError",
    "ImageNotFoundError",
    "WeightsFileError",
    "WeightsMismatchError",
    "DivergenceError",
]

_WORKER_PREFIX = "Caught "
_WORKER_MARK = "Original Traceback"


def _worker_message(cls, message):
    """The original message inside torch's re-raised worker text, or ``None`` when ``message`` is not one."""
    if not (isinstance(message, str) and message.startswith(_WORKER_PREFIX) and _WORKER_MARK in message):
        return None
    last = message.rstrip("\n").rsplit("\n", 1)[-1]
    marker = f"{cls.__name__}: "
    return last.split(marker, 1)[1] if marker in last else None


class UserError(Exception):
    """Base of the errors caused by input the user controls; ``str(error)`` is one line saying what to do."""

    worker_traceback = None

    def __init__(self, *args):
        original = _worker_message(type(self), args[0]) if len(args) == 1 else None
        if original is not None:
            self.worker_traceback = args[0]
            args = (original,)
        super().__init__(*args)


class OptionError(UserError, ValueError):
    """An option value (from the command line, a config file or a run description) that cannot be used."""


class RunFolderError(UserError, RuntimeError):
    """The run folder cannot be used: it holds another run, another process holds it, or it is not writable."""


class ResumeMismatchError(UserError, ValueError):
    """A resume was asked with settings that differ from the checkpoint's; ``differences`` lists
    ``(option, saved value, given value)``."""

    def __init__(self, message, differences=()):
        super().__init__(message)
        self.differences = list(differences)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is missing, unreadable, corrupted, not a ptl_ext checkpoint or does not fit the run."""


class MethodMismatchError(CheckpointError):
    """A checkpoint was trained with another training method than the run resuming it.

    ``saved`` and ``given`` are the method names (e.g. ``"rolling_back"``, ``"std"``, ``"plain"``; combined
    methods join theirs with ``+``) so a front end can name the options that select the missing method.
    """

    def __init__(self, message, saved=None, given=None):
        super().__init__(message)
        self.saved, self.given = saved, given


class DataError(UserError, RuntimeError):
    """A dataset cannot be used as it is (unreadable images, too few identities, no valid query, ...)."""


class ImageDecodeError(DataError):
    """An image file exists but cannot be decoded."""


class ImageNotFoundError(UserError, FileNotFoundError):
    """An image file listed by a dataset does not exist."""


class WeightsFileError(UserError, ValueError):
    """A pre-trained weights file is not a usable state dict (unreadable, not tensors, non-finite values)."""


class WeightsMismatchError(WeightsFileError, RuntimeError):
    """A pre-trained weights file does not fit the network (another architecture, other layer shapes)."""


class MissingPackageError(UserError, ImportError):
    """An optional package a feature needs is not installed; the message gives the pip command."""


class DivergenceError(UserError, FloatingPointError):
    """Training produced a non-finite loss."""
