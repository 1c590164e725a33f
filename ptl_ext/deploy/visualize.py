"""Ranked retrieval results as pictures: one PNG strip per query and an ``index.html`` showing them.

A strip shows the query (blue border), then its top-K gallery images in ranking order (distance, ties
by gallery index, as the evaluator ranks) with a coloured border: green for the query's identity
seen by another camera (a match), red for another identity, grey for an item the Market protocol
ignores (the query's identity seen by the query's own camera) and for junk (pid -1), which the
dataset readers drop and which is therefore left out of AP here too. AP and rank-1 of each query come
from the evaluator's own per-query statistics (:func:`ptl_ext.ops.reid_rank_stats`).
"""

import html
import os

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .. import _checks, ops
from .._io import atomic_write
from ..reid import _validate

__all__ = ["SELECTIONS", "COLOURS", "query_stats", "ranked_table", "write_ranked_results", "write_ranked_items"]

SELECTIONS = ("first", "random", "worst")
COLOURS = {"query": (40, 90, 200), "match": (0, 170, 60), "wrong": (215, 30, 30), "ignored": (150, 150, 150)}
THUMB = (64, 128)  # width, height of each image in a strip
BORDER, GAP, LABEL_H, HEADER_H = 5, 6, 44, 22
JUNK_PID = -1


def query_stats(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per-query ``(first [Q] int64, ap [Q] float64)`` of the Market protocol without junk (pid -1) gallery items.

    ``first`` is the 1-based rank of the first match among the items that count (0: no valid match).
    """
    dist, q_pids, g_pids, q_camids, g_camids = _checked(distmat, q_pids, g_pids, q_camids, g_camids)
    keep = g_pids != JUNK_PID
    first, ap, _ = ops.reid_rank_stats(dist[:, keep], q_pids, g_pids[keep], q_camids, g_camids[keep])
    return first.cpu(), ap.cpu()


def _checked(distmat, q_pids, g_pids, q_camids, g_camids):
    """Validated ``distmat`` and int64 id vectors on its device (ids may be lists, arrays or tensors)."""
    dist = _validate.matrix(distmat, "distmat", "Q")
    q, g = dist.shape

    def ids(x, name, n, what):
        return _validate.ids(np.asarray(x) if isinstance(x, (list, tuple)) else x, name, n, what, dist.device)

    rows, columns = "query rows of distmat", "gallery columns of distmat"
    return (
        dist,
        ids(q_pids, "q_pids", q, rows),
        ids(g_pids, "g_pids", g, columns),
        ids(q_camids, "q_camids", q, rows),
        ids(g_camids, "g_camids", g, columns),
    )


def ranked_table(distmat, q_pids, g_pids, q_camids, g_camids, topk):
    """``(order [Q, k] int64, kinds [Q, k] list of str)``: the top-``k`` gallery indices of every query and
    each one's kind, ``"match"``, ``"wrong"`` or ``"ignored"`` (see the module docstring)."""
    dist, q_pids, g_pids, q_camids, g_camids = _checked(distmat, q_pids, g_pids, q_camids, g_camids)
    k = min(_checks.positive_int(topk, "topk"), dist.shape[1])
    order = torch.argsort(dist, dim=1, stable=True)[:, :k]
    same = g_pids[order] == q_pids[:, None]
    ignored = (same & (g_camids[order] == q_camids[:, None])) | (g_pids[order] == JUNK_PID)
    kinds = np.where(ignored.cpu().numpy(), "ignored", np.where(same.cpu().numpy(), "match", "wrong"))
    return order.cpu(), kinds.tolist()


def _select(first, ap, num_queries, select, seed):
    """Indices of the queries to draw: the first ``num_queries``, a seeded random sample (in index
    order), or the ``num_queries`` lowest-AP queries with a valid match (worst first)."""
    q = first.numel()
    n = q if num_queries is None else min(num_queries, q)
    if select == "first":
        return list(range(n))
    if select == "random":
        generator = torch.Generator().manual_seed(seed)
        return sorted(torch.randperm(q, generator=generator)[:n].tolist())
    valid = torch.nonzero(first > 0).squeeze(1)
    order = torch.argsort(ap[valid], stable=True)
    return valid[order][:n].tolist()


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def _thumbnail(path):
    """The image at ``path`` resized to ``THUMB``, or a dark placeholder marked unreadable."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB").resize(THUMB, Image.BILINEAR)
    except (OSError, ValueError):
        tile = Image.new("RGB", THUMB, (40, 40, 40))
        ImageDraw.Draw(tile).text((4, THUMB[1] // 2), "unreadable", fill=(230, 230, 230), font=_font(10))
        return tile


def _strip(query_path, query_label, header, gallery):
    """The PNG image of one query: ``gallery`` is a list of ``(path, kind, label)``."""
    cell_w, cell_h = THUMB[0] + 2 * BORDER, THUMB[1] + 2 * BORDER
    width = cell_w * (1 + len(gallery)) + GAP * len(gallery) + 3 * GAP
    height = HEADER_H + cell_h + LABEL_H
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(13), _font(11)
    draw.text((GAP, 4), header, fill=(0, 0, 0), font=font)
    cells = [(query_path, "query", query_label)] + gallery
    x = GAP
    for i, (path, kind, label) in enumerate(cells):
        draw.rectangle([x, HEADER_H, x + cell_w - 1, HEADER_H + cell_h - 1], fill=COLOURS[kind])
        canvas.paste(_thumbnail(path), (x + BORDER, HEADER_H + BORDER))
        for line_no, line in enumerate(label.split("\n")):
            draw.text((x + 2, HEADER_H + cell_h + 2 + 13 * line_no), line, fill=(0, 0, 0), font=small)
        x += cell_w + (3 * GAP if i == 0 else GAP)
    return canvas


def _save_png(image, path):
    atomic_write(path, lambda fh: image.save(fh, format="PNG"))


def _html(entries, topk, select, total_queries, num_valid, mean_ap):
    rows = []
    for e in entries:
        ap = "no valid match" if e["ap"] is None else f"AP {e['ap']:.3f}"
        rank1 = "" if e["ap"] is None else f" · rank-1 {'yes' if e['rank1'] else 'no'}"
        rows.append(
            f"<section><h2>query {e['query']}: {html.escape(e['name'])} (pid {e['pid']}, camera {e['camid']})</h2>\n"
            f'<p class="stats">{ap}{rank1}</p>\n'
            f'<img src="{html.escape(e["png"])}" alt="top-{topk} results of query {e["query"]}"></section>'
        )
    overall = "" if mean_ap is None else f" mAP over the {num_valid} queries with a valid match: {mean_ap:.3f}."
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ranked results (top {topk})</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
section {{ margin-bottom: 1.2em; }} h2 {{ font-size: 1em; margin: 0.2em 0; }}
.stats {{ margin: 0.1em 0 0.3em; }} .key span {{ padding: 0 0.4em; color: white; }}
</style></head><body>
<h1>Ranked results: top {topk}</h1>
<p>{len(entries)} of {total_queries} queries ({select}).{overall}</p>
<p class="key"><span style="background:rgb{COLOURS["query"]}">query</span>
<span style="background:rgb{COLOURS["match"]}">same identity</span>
<span style="background:rgb{COLOURS["wrong"]}">different identity</span>
<span style="background:rgb{COLOURS["ignored"]}">ignored (same camera, or junk)</span></p>
{chr(10).join(rows)}
</body></html>
"""


def write_ranked_results(
    distmat,
    q_paths,
    g_paths,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    out_dir,
    topk=10,
    num_queries=20,
    select="first",
    seed=0,
):
    """Draw the top-``topk`` gallery images of chosen queries and write ``out_dir/index.html``.

    Args:
        distmat: ``[Q, G]`` distances (smaller is closer; plain or re-ranked), tensor or numpy array.
        q_paths, g_paths: ``Q`` and ``G`` image paths; q_pids, q_camids: ``[Q]`` ints; g_pids, g_camids: ``[G]``.
        out_dir: folder for ``query_<index>.png`` (one per drawn query) and ``index.html``.
        topk: gallery images per strip (at most G); num_queries: how many queries (``None``: all).
        select: ``"first"`` queries, a ``"random"`` sample (``seed``) or the ``"worst"`` by AP (queries
            with a valid match only, lowest AP first).

    Returns:
        One dict per drawn query: ``query`` (index), ``name``, ``pid``, ``camid``, ``png`` (file name),
        ``ap`` (``None`` without a valid match), ``rank1`` (bool), ``ranked`` (gallery indices) and ``kinds``.
    """
    dist, q_pids, g_pids, q_camids, g_camids = _checked(distmat, q_pids, g_pids, q_camids, g_camids)
    q, g = dist.shape
    for name, paths, n in (("q_paths", q_paths, q), ("g_paths", g_paths, g)):
        if not isinstance(paths, (list, tuple)) or len(paths) != n:
            raise ValueError(
                f"{name} must be a list of {n} image paths (one per distmat "
                f"{'row' if name == 'q_paths' else 'column'}), got "
                f"{len(paths) if isinstance(paths, (list, tuple)) else type(paths).__name__}"
            )
    _checks.choice(select, "select", SELECTIONS)
    if num_queries is not None:
        _checks.positive_int(num_queries, "num_queries")
    seed = _checks.integer(seed, "seed")
    first, ap = query_stats(dist, q_pids, g_pids, q_camids, g_camids)
    order, kinds = ranked_table(dist, q_pids, g_pids, q_camids, g_camids, topk)
    chosen = _select(first, ap, num_queries, select, seed)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    q_pids, q_camids, g_pids, g_camids = (t.cpu().tolist() for t in (q_pids, q_camids, g_pids, g_camids))
    entries = []
    for qi in chosen:
        valid = bool(first[qi] > 0)
        entry = {
            "query": qi,
            "name": os.path.basename(os.fspath(q_paths[qi])),
            "pid": q_pids[qi],
            "camid": q_camids[qi],
            "png": f"query_{qi:05d}.png",
            "ap": float(ap[qi]) if valid else None,
            "rank1": valid and int(first[qi]) == 1,
            "ranked": order[qi].tolist(),
            "kinds": kinds[qi],
        }
        gallery = [
            (os.fspath(g_paths[gi]), kind, f"{rank}. pid {g_pids[gi]}\ncam {g_camids[gi]}\nd {float(dist[qi, gi]):.3g}")
            for rank, (gi, kind) in enumerate(zip(entry["ranked"], entry["kinds"]), 1)
        ]
        score = "no valid match" if not valid else f"AP {entry['ap']:.3f}   rank-1 {'yes' if entry['rank1'] else 'no'}"
        header = f"query {qi}  pid {entry['pid']}  cam {entry['camid']}   {score}"
        strip = _strip(os.fspath(q_paths[qi]), f"query\npid {entry['pid']}\ncam {entry['camid']}", header, gallery)
        _save_png(strip, os.path.join(out_dir, entry["png"]))
        entries.append(entry)
    valid_all = first > 0
    mean_ap = float(ap[valid_all].mean()) if bool(valid_all.any()) else None
    page = _html(entries, order.shape[1], select, q, int(valid_all.sum()), mean_ap)
    atomic_write(os.path.join(out_dir, "index.html"), lambda fh: fh.write(page), binary=False)
    return entries


def write_ranked_items(distmat, query, gallery, out_dir, **options):
    """:func:`write_ranked_results` for the ``(path, pid, camid)`` lists of a :class:`ptl_ext.data.ReIDData`
    (``data.query``, ``data.gallery``) in the order of ``distmat``'s rows and columns; ``options`` are
    ``topk``, ``num_queries``, ``select`` and ``seed``."""
    for name, items in (("query", query), ("gallery", gallery)):
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, (list, tuple)) and len(i) == 3 for i in items):
            raise ValueError(f"{name} must be a list of (path, pid, camid) items")
    q_paths, q_pids, q_camids = (list(column) for column in zip(*query)) if query else ([], [], [])
    g_paths, g_pids, g_camids = (list(column) for column in zip(*gallery)) if gallery else ([], [], [])
    return write_ranked_results(distmat, q_paths, g_paths, q_pids, g_pids, q_camids, g_camids, out_dir, **options)
