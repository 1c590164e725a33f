"""A folder cache of things the demo rebuilds from settings alone (datasets, pre-trained backbones).

An entry is the folder ``ROOT/KIND-KEY`` where ``KEY`` is a digest of the settings that made it; a
changed setting is another key, so a stale entry is never reused. An entry is built in a temp folder
and renamed into place only when complete (with its ``settings.json`` last), so an interrupted build
is rebuilt next time. The root is ``--cache``, else ``$PTL_CACHE``, else ``$XDG_CACHE_HOME/ptl_ext``
(``~/.cache/ptl_ext``).
"""

import hashlib
import json
import os
import shutil
import tempfile

from .. import _io

SETTINGS_FILE = "settings.json"


def default_cache_root():
    """``$PTL_CACHE``, else ``$XDG_CACHE_HOME/ptl_ext``, else ``~/.cache/ptl_ext``."""
    if os.environ.get("PTL_CACHE"):
        return os.environ["PTL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ptl_ext")


def settings_key(settings):
    """A 16-hex-digit digest of a JSON-able ``settings`` dict (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_folder(root, kind, settings):
    """``ROOT/KIND-KEY`` of ``settings``."""
    return os.path.join(root, f"{kind}-{settings_key(settings)}")


def cached(root, kind, settings, build):
    """The folder of the ``kind`` entry made from ``settings``, built by ``build(folder)`` when absent.

    Returns ``(folder, reused)``; ``reused`` is ``True`` when a complete entry with equal settings was found.
    """
    folder = entry_folder(root, kind, settings)
    marker = os.path.join(folder, SETTINGS_FILE)
    if os.path.isfile(marker):
        with open(marker) as fh:
            if json.load(fh) == json.loads(json.dumps(settings)):
                return folder, True
        shutil.rmtree(folder)  # a digest collision or a hand-edited entry: rebuild it
    elif os.path.isdir(folder):
        shutil.rmtree(folder)  # incomplete
    os.makedirs(root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".tmp-{kind}-", dir=root)
    try:
        build(work)
        text = json.dumps(settings, indent=1, sort_keys=True)
        _io.atomic_write(os.path.join(work, SETTINGS_FILE), lambda fh: fh.write(text), binary=False)
        try:
            os.replace(work, folder)
        except OSError:  # another process finished the same entry first
            if not os.path.isfile(marker):
                raise
            shutil.rmtree(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder, False
