"""Atomic file output: a temp file in the target's folder, flushed and fsynced, then renamed over it.

A crash or a full disk mid-write leaves any previous file at the target intact. Temp files are
named ``.tmp-*`` so that a run can clean the ones a killed process left behind. The temp file is created
with ``O_EXCL`` (a link planted at its name is never followed) and the rename replaces a link at the
target instead of writing through it. The file gets the mode a plain ``open`` would give it
(``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
"""

import errno
import os
import tempfile

TEMP_PREFIX = ".tmp-"


def atomic_write(path, write, binary=True):
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it to ``path``.

    ``binary``: open the temp file in ``"wb"`` (default) or ``"w"`` (text, newline ``""``) mode.
    An ``ENOSPC`` error is re-raised as ``OSError`` saying "no space left on device while writing PATH".
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if _is_disk_full(exc):
            raise OSError(errno.ENOSPC, f"no space left on device while writing {path}") from exc
        raise


def current_umask():
    """The process's umask (read from ``/proc/self/status`` where it can be, without changing it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _is_disk_full(exc):
    """Whether ``exc`` (or an error it wraps, e.g. torch's ``inline_container`` message) is a full disk."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "unexpected pos" in str(exc) or "No space left" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
