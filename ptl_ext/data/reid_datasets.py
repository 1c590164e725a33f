"""Readers for person re-identification datasets.

Every reader returns a :class:`ReIDData` whose ``train``/``query``/``gallery`` lists hold
``(path, pid, camid)`` tuples. Training pids are relabelled to ``0..N-1``; query/gallery
pids keep the dataset's own ids (0 stays a distractor); camera ids are 0-based. Images
with pid −1 (junk) are dropped everywhere.

A reader accepts the dataset folder itself or a parent folder holding it under one of
its usual names (e.g. ``Market-1501-v15.09.15``), and says exactly what is missing.
"""

import os
import re
from dataclasses import dataclass, field

from .image import IMAGE_EXTENSIONS

MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")
_NAME_PATTERN = re.compile(r"^(-?\d+)_c(\d+)")

# Offsets that keep the two halves of the merged Market+Duke set apart.
MERGED_DUKE_PID_OFFSET = 100000
MERGED_DUKE_CAM_OFFSET = 6
# The largest person id a file name or list may give: ids stay exact in int64 arrays, float64 and the
# merged set's offsets (real datasets use at most 7 digits).
MAX_PID = 2**31 - 1


@dataclass
class ReIDData:
    """A ReID dataset split: lists of ``(path: str, pid: int, camid: int)``.

    ``protocol`` names the evaluation protocol of :func:`ptl_ext.reid.evaluate_rank`.
    """

    name: str
    train: list
    query: list
    gallery: list
    protocol: str = "market"
    root: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def num_train_pids(self):
        """Number of training identities (labels are ``0..num_train_pids-1``)."""
        return len({pid for _, pid, _ in self.train})

    @property
    def num_train_cams(self):
        """Number of distinct cameras in the training split."""
        return len({cam for _, _, cam in self.train})

    def summary(self):
        """A small table of ids / images / cameras per split."""
        lines = [f"{self.name} ({self.root})", f"  {'split':<8} {'ids':>6} {'images':>8} {'cameras':>8}"]
        for split in ("train", "query", "gallery"):
            items = getattr(self, split)
            pids = {pid for _, pid, _ in items}
            cams = {cam for _, _, cam in items}
            lines.append(f"  {split:<8} {len(pids):>6} {len(items):>8} {len(cams):>8}")
        return "\n".join(lines)


def _resolve_root(root, dataset, candidates, required):
    """The folder holding every ``required`` entry: ``root`` itself or ``root/<candidate>``."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{dataset}: root folder does not exist: {root}")
    for folder in (root, *(os.path.join(root, c) for c in candidates)):
        if os.path.isdir(folder) and all(os.path.exists(os.path.join(folder, r)) for r in required):
            return folder
    missing = [r for r in required if not os.path.exists(os.path.join(root, r))]
    raise FileNotFoundError(
        f"{dataset}: {root} is not a {dataset} folder: missing {', '.join(missing)} "
        f"(looked in {root} and in its subfolders {', '.join(candidates)})"
    )


def _list_images(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def parse_person_name(name, source, num_cams=None):
    """``(pid, camera)`` of a Market-style file name (``0001_c1s1_000151_00.jpg`` -> ``(1, 1)``; the camera
    as written, 1-based), or ``None`` when the base name does not start with ``PID_cCAM``.

    Checked where the name is read, before anything is computed from it: ``ValueError`` naming ``source``
    (the dataset or option) and the file when the pid is outside ``-1..MAX_PID`` (huge numbers would wrap or
    overflow in int64 arrays later), or the camera is ``c0`` or above ``num_cams`` (Market-1501, DukeMTMC-reID,
    CUHK03-NP and MSMT17 number their cameras from 1).
    """
    match = _NAME_PATTERN.match(os.path.basename(name))
    if match is None:
        return None
    pid_text, cam_text = match.group(1), match.group(2)
    if len(pid_text) > 12 or not -1 <= int(pid_text) <= MAX_PID:
        raise ValueError(f"{source}: {name} has person id {pid_text}; expected an id in -1..{MAX_PID}")
    cam = int(cam_text) if len(cam_text) <= 6 else -1
    if cam < 1 or (num_cams is not None and cam > num_cams):
        cameras = f"a camera in 1..{num_cams}" if num_cams is not None else "a camera >= 1"
        raise ValueError(
            f"{source}: {name} has camera c{cam_text}; expected {cameras} (cameras are numbered from 1: c0 is invalid)"
        )
    return int(pid_text), cam


def _parse_folder(folder, dataset, num_cams):
    """``(path, raw pid, 0-based camid)`` for every image of a Market-style folder, junk dropped."""
    items = []
    for fname in _list_images(folder):
        parsed = parse_person_name(os.path.join(folder, fname), dataset, num_cams)
        if parsed is None:
            raise ValueError(f"{dataset}: file name {os.path.join(folder, fname)} does not follow PID_cCAM...")
        pid, cam = parsed
        if pid == -1:
            continue
        items.append((os.path.join(folder, fname), pid, cam - 1))
    if not items:
        raise FileNotFoundError(f"{dataset}: no images in {folder}")
    return items


def relabel(items):
    """Map the pids of ``(path, pid, camid)`` items to ``0..N-1`` in sorted order of the raw pids."""
    mapping = {pid: label for label, pid in enumerate(sorted({pid for _, pid, _ in items}))}
    return [(path, mapping[pid], cam) for path, pid, cam in items]


def _market_style(root, dataset, candidates, num_cams, protocol="market"):
    folder = _resolve_root(root, dataset, candidates, MARKET_SPLITS)
    train, query, gallery = (_parse_folder(os.path.join(folder, s), dataset, num_cams) for s in MARKET_SPLITS)
    return ReIDData(dataset, relabel(train), query, gallery, protocol=protocol, root=folder)


def market1501(root):
    """Market-1501: ``bounding_box_train``, ``query``, ``bounding_box_test``, 6 cameras."""
    return _market_style(root, "market1501", ("Market-1501-v15.09.15", "market1501", "Market-1501"), 6)


def dukemtmc_reid(root):
    """DukeMTMC-reID: Market layout, 8 cameras."""
    return _market_style(root, "dukemtmc_reid", ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid"), 8)


def cuhk03_np(root, variant="labeled"):
    """CUHK03-NP (new protocol) ``labeled`` or ``detected``: ``<root>/<variant>/`` in Market layout."""
    if variant not in ("labeled", "detected"):
        raise ValueError(f"cuhk03_np: variant must be 'labeled' or 'detected', got {variant!r}")
    parent = _resolve_root(root, "cuhk03_np", ("cuhk03-np", "cuhk03_np", "CUHK03-NP"), (variant,))
    return _market_style(os.path.join(parent, variant), f"cuhk03_np_{variant}", (), 2)


_MSMT_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
_MSMT_DIRS = (("train", "test"), ("mask_train_v2", "mask_test_v2"))


def _read_msmt_list(list_path, image_dir):
    items = []
    with open(list_path) as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"msmt17: {list_path}:{line_no}: expected 'relative/path.jpg pid', got {line!r}")
            rel, pid = parts[0], parts[1]
            if not pid.lstrip("-").isdigit() or len(pid) > 12 or not -1 <= int(pid) <= MAX_PID:
                raise ValueError(f"msmt17: {list_path}:{line_no}: person id {pid!r} is not an integer in -1..{MAX_PID}")
            pid = int(pid)
            fields = os.path.basename(rel).split("_")
            if len(fields) < 3 or not fields[2].isdigit():
                raise ValueError(f"msmt17: {list_path}:{line_no}: cannot read the camera from {rel!r}")
            cam = int(fields[2])
            if not 1 <= cam <= 15:
                raise ValueError(f"msmt17: {list_path}:{line_no}: camera {cam} is outside 1..15")
            items.append((os.path.join(image_dir, rel), pid, cam - 1))
    missing = [path for path, _, _ in items if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"msmt17: {len(missing)} images listed in {list_path} are missing, e.g. {missing[0]}")
    return items


def msmt17(root):
    """MSMT17 (V1 ``train``/``test`` or V2 ``mask_*_v2`` folders) with its ``list_*.txt`` files.

    Training uses ``list_train`` + ``list_val`` (the validation ids are training ids).
    """
    for train_dir, test_dir in _MSMT_DIRS:
        try:
            folder = _resolve_root(
                root, "msmt17", ("MSMT17_V1", "MSMT17_V2", "MSMT17", "msmt17"), (*_MSMT_LISTS, train_dir, test_dir)
            )
            break
        except FileNotFoundError as exc:
            error = exc
    else:
        raise FileNotFoundError(f"{error} (V2 uses mask_train_v2/mask_test_v2 instead of train/test)")
    lists = {name: os.path.join(folder, name) for name in _MSMT_LISTS}
    train = _read_msmt_list(lists["list_train.txt"], os.path.join(folder, train_dir)) + _read_msmt_list(
        lists["list_val.txt"], os.path.join(folder, train_dir)
    )
    query = _read_msmt_list(lists["list_query.txt"], os.path.join(folder, test_dir))
    gallery = _read_msmt_list(lists["list_gallery.txt"], os.path.join(folder, test_dir))
    return ReIDData("msmt17", relabel(train), query, gallery, root=folder)


def market_duke(root):
    """Market-1501 + DukeMTMC-reID merged; ``root`` holds both datasets' folders.

    Training ids are relabelled jointly (Market's first). In query/gallery Duke pids are
    shifted by ``MERGED_DUKE_PID_OFFSET`` and Duke cameras by ``MERGED_DUKE_CAM_OFFSET`` so
    the two halves never match each other.
    """
    market, duke = market1501(root), dukemtmc_reid(root)
    if market.root == duke.root:
        raise FileNotFoundError(
            f"market_duke: {root} must hold a Market-1501 folder and a DukeMTMC-reID folder side by side, "
            "not be one of them"
        )

    def shift(items, pid_offset):
        return [(p, pid + pid_offset, cam + MERGED_DUKE_CAM_OFFSET) for p, pid, cam in items]

    train = market.train + shift(duke.train, market.num_train_pids)
    return ReIDData(
        "market_duke",
        train,
        market.query + shift(duke.query, MERGED_DUKE_PID_OFFSET),
        market.gallery + shift(duke.gallery, MERGED_DUKE_PID_OFFSET),
        root=os.fspath(root),
        extra={"market_root": market.root, "duke_root": duke.root},
    )
