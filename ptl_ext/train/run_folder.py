"""The run folder of a training: checked before training, held under an exclusive lock, never mixed.

A folder that already holds a run (``last.pt``, ``best.pt`` or ``metrics.csv``) is refused unless the
run resumes (continues it) or overwrites it explicitly (its run files are then removed first, so no old
``best.pt`` outlives the new run). While a run holds the folder, an advisory ``fcntl.flock`` lock on
``.run.lock`` keeps any other run out; the kernel releases it when the process ends, also after a crash
or ``kill -9`` (the lock file left behind then is harmless: the next run locks it again). Temporaries
of interrupted atomic writes (``.tmp-*``) are removed once the lock is held.
"""

import fcntl
import os
import stat
import warnings
import weakref

from .._io import TEMP_PREFIX
from ..errors import RunFolderError

__all__ = ["RunFolder", "RUN_FILES", "LOCK_NAME"]

RUN_FILES = ("last.pt", "best.pt", "metrics.csv")  # their presence means the folder holds a run
CHECKPOINTS = ("last.pt", "best.pt")
OUTPUT_FILES = RUN_FILES + ("curves.png",)
LOCK_NAME = ".run.lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _release(fd, lock_path, owner):
    """Remove the lock file (still holding the lock, so nobody else holds that inode) and unlock.

    Only in the process that took the lock: a forked child (a DataLoader worker) must not free it."""
    if os.getpid() != owner:
        return
    try:
        os.unlink(lock_path)
    except OSError:
        pass
    os.close(fd)


class RunFolder:
    """The output folder ``path`` of one run; :meth:`acquire` checks it, locks it and prepares it.

    Args:
        path: the run folder (created when missing).
        resume: the run continues the one in the folder (its files are kept).
        overwrite: the run replaces the one in the folder (its run files and ``curves.png`` are removed).
    Usable as a context manager (``with RunFolder(out) as folder:``); :meth:`release` (or the end of the
    process) frees it.

    Raises (:meth:`acquire`): :class:`~ptl_ext.errors.RunFolderError` when ``path`` is a file, lies under a
    file, is not writable, holds a run (without ``resume``/``overwrite``) or is held by another process
    (the message names the folder and the holder's pid).
    """

    def __init__(self, path, *, resume=False, overwrite=False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"run folder must be a path, got {path!r}")
        if not os.fspath(path).strip():
            raise RunFolderError(f"run folder must be a non-empty path, got {os.fspath(path)!r}")
        if not isinstance(resume, bool) or not isinstance(overwrite, bool):
            raise TypeError(f"resume and overwrite must be true or false, got {resume!r} and {overwrite!r}")
        if resume and overwrite:
            raise ValueError("a run cannot both resume and overwrite the run in its folder: choose one")
        self.path, self.resume, self.overwrite = os.fspath(path), resume, overwrite
        self._finalizer = None

    @property
    def lock_path(self):
        """The lock file inside the folder."""
        return os.path.join(self.path, LOCK_NAME)

    @property
    def held(self):
        """Whether this object holds the folder's lock."""
        return self._finalizer is not None and self._finalizer.alive

    def run_files(self):
        """The run files (:data:`RUN_FILES`) present in the folder."""
        return [name for name in RUN_FILES if os.path.exists(os.path.join(self.path, name))]

    def acquire(self):
        """Check and create the folder, take its lock, then refuse a used folder or clear it; returns ``self``.

        Order: folder checks (a file, under a file, not writable), the lock (another run holds it), the
        used-folder rule, then stale temporaries (and, with ``overwrite``, the old run's files) are removed.
        """
        if self.held:
            return self
        self._make_folder()
        fd = self._lock()
        self._finalizer = weakref.finalize(self, _release, fd, self.lock_path, os.getpid())
        try:
            used = self.run_files()
            if used and not self.resume and not any(name in CHECKPOINTS for name in used):
                # killed before its first checkpoint (e.g. save_every > 1): nothing to resume, so the
                # folder holds no run; its metrics rows describe epochs that were lost and go with it
                warnings.warn(
                    f"run folder {self.path}: a run stopped there before its first checkpoint; starting "
                    f"again (removing {', '.join(used)})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._remove_stale(OUTPUT_FILES)
                used = []
            if used and not (self.resume or self.overwrite):
                raise RunFolderError(
                    f"run folder {self.path} already holds a run ({', '.join(used)}): resume it, "
                    "overwrite it explicitly, or choose another folder"
                )
            self._remove_stale(OUTPUT_FILES if self.overwrite else ())
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        """Unlock the folder and remove its lock file (nothing when not held)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _make_folder(self):
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunFolderError(f"run folder {self.path} is a file, not a folder: choose another output folder")
        try:
            os.makedirs(self.path, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            parent = next((p for p in _ancestors(self.path) if os.path.exists(p) and not os.path.isdir(p)), None)
            raise RunFolderError(
                f"cannot create run folder {self.path}: {parent or 'a folder above it'} is a file"
            ) from None
        except PermissionError:
            raise RunFolderError(f"cannot create run folder {self.path}: permission denied") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunFolderError(f"run folder {self.path} is not writable: permission denied")

    def _lock(self):
        """Open the lock file and take an exclusive ``flock`` on it; returns the descriptor."""
        for _ in range(10):  # retried when the holder removed the file between our open and our lock
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
            except PermissionError:
                raise RunFolderError(f"run folder {self.path} is not writable: permission denied") from None
            except OSError:  # ELOOP: the lock file is a symbolic link, never followed
                if not os.path.islink(self.lock_path):
                    raise
                raise RunFolderError(
                    f"run folder {self.path}: its lock file {LOCK_NAME} is a symbolic link; remove it "
                    "(a link is never followed: taking the lock would truncate the file it points to)"
                ) from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise RunFolderError(f"run folder {self.path}: its lock file {LOCK_NAME} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise RunFolderError(
                    f"run folder {self.path} is in use by another run (pid {holder or 'unknown'}): "
                    "wait for it to finish or choose another folder"
                ) from None
            except OSError as exc:  # a file system without flock (some network mounts): run unlocked
                warnings.warn(
                    f"run folder {self.path}: cannot lock it ({exc.strerror}); another run could use "
                    "it at the same time",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return fd
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            os.close(fd)
        raise RunFolderError(f"run folder {self.path}: could not take its lock (other runs keep starting there)")

    def _remove_stale(self, names):
        for name in os.listdir(self.path):
            if name.startswith(TEMP_PREFIX) or name in names or name in (f + ".tmp" for f in OUTPUT_FILES):
                os.remove(os.path.join(self.path, name))


def _ancestors(path):
    path = os.path.abspath(path)
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return None
    return text if text.isdigit() else None
