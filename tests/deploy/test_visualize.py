"""Ranked-result pictures: one PNG per query, an index.html referencing each, border colours by match kind."""

import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ptl_ext import reid
from ptl_ext.deploy import query_stats, write_ranked_items, write_ranked_results
from ptl_ext.deploy.visualize import BORDER, COLOURS, GAP, HEADER_H, THUMB

Q_PIDS, Q_CAMS = [1, 2], [0, 0]
G_PIDS, G_CAMS = [1, 1, 3, -1, 2], [0, 1, 1, 1, 1]
DIST = torch.tensor(
    [
        [0.1, 0.2, 0.3, 0.4, 0.5],  # g0 same pid+cam, g1 match, g2 other, g3 junk, g4 other
        [0.1, 0.5, 0.2, 0.3, 0.4],
    ]
)  # g0 other, g2 other, g3 junk, g4 match, g1 other


@pytest.fixture()
def images(tmp_path):
    paths = []
    for i in range(7):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (20, 40), (30 * i, 255 - 30 * i, 128)).save(path)
        paths.append(str(path))
    return paths[:2], paths[2:]


def border_colours(png, count):
    """Colour of the top-left border pixel of each of the ``count`` cells of a strip."""
    image = Image.open(png).convert("RGB")
    cell_w = THUMB[0] + 2 * BORDER
    xs = [GAP] + [GAP + cell_w + 3 * GAP + i * (cell_w + GAP) for i in range(count - 1)]
    return [image.getpixel((x + 1, HEADER_H + 1)) for x in xs]


def test_strips_show_the_known_ranking_with_its_colours(images, tmp_path):
    q_paths, g_paths = images
    out = tmp_path / "vis"
    entries = write_ranked_results(
        DIST, q_paths, g_paths, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, out, topk=5, num_queries=None
    )
    assert [e["ranked"] for e in entries] == [[0, 1, 2, 3, 4], [0, 2, 3, 4, 1]]
    assert entries[0]["kinds"] == ["ignored", "match", "wrong", "ignored", "wrong"]
    assert entries[1]["kinds"] == ["wrong", "wrong", "ignored", "match", "wrong"]
    assert entries[0]["ap"] == pytest.approx(1.0) and entries[0]["rank1"]
    assert entries[1]["ap"] == pytest.approx(1 / 3) and not entries[1]["rank1"]  # junk g3 does not count
    for entry in entries:
        colours = border_colours(out / entry["png"], 6)
        assert colours == [COLOURS["query"]] + [COLOURS[k] for k in entry["kinds"]]
    page = (out / "index.html").read_text()
    assert "AP 1.000 · rank-1 yes" in page and "AP 0.333 · rank-1 no" in page


def test_one_png_per_query_and_the_html_references_each(images, tmp_path):
    q_paths, g_paths = images
    torch.manual_seed(0)
    q_paths, q_pids, q_cams = q_paths * 4, Q_PIDS * 4, Q_CAMS * 4
    dist = torch.rand(8, 5)
    entries = write_ranked_results(
        dist,
        q_paths,
        g_paths,
        q_pids,
        G_PIDS,
        q_cams,
        G_CAMS,
        tmp_path / "vis",
        topk=3,
        num_queries=5,
        select="random",
        seed=3,
    )
    pngs = sorted(f for f in os.listdir(tmp_path / "vis") if f.endswith(".png"))
    assert len(pngs) == 5 == len(entries) and sorted(e["png"] for e in entries) == pngs
    page = (tmp_path / "vis" / "index.html").read_text()
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == pngs
    again = write_ranked_results(
        dist,
        q_paths,
        g_paths,
        q_pids,
        G_PIDS,
        q_cams,
        G_CAMS,
        tmp_path / "again",
        topk=3,
        num_queries=5,
        select="random",
        seed=3,
    )
    assert [e["query"] for e in again] == [e["query"] for e in entries]
    assert all(len(e["ranked"]) == 3 for e in entries)


def test_worst_queries_come_first_and_ap_matches_the_evaluator(images, tmp_path):
    q_paths, g_paths = images
    g_pids = [1, 1, 3, 0, 2]  # no junk: the evaluator's own mAP must agree
    torch.manual_seed(1)
    dist = torch.rand(6, 5)
    q_pids, q_cams = [1, 2, 1, 2, 1, 2], [0, 0, 1, 1, 0, 0]
    first, ap = query_stats(dist, q_pids, g_pids, q_cams, G_CAMS)
    result = reid.evaluate_rank(dist, np.array(q_pids), np.array(g_pids), np.array(q_cams), np.array(G_CAMS))
    valid = first > 0
    assert float(ap[valid].mean()) == pytest.approx(result.mAP)
    entries = write_ranked_results(
        dist,
        q_paths * 3,
        g_paths,
        q_pids,
        g_pids,
        q_cams,
        G_CAMS,
        tmp_path / "vis",
        topk=2,
        num_queries=3,
        select="worst",
    )
    aps = [e["ap"] for e in entries]
    assert aps == sorted(aps) and aps[0] == pytest.approx(float(ap[valid].min()))


def test_bad_arguments_are_named(images, tmp_path):
    q_paths, g_paths = images
    args = (DIST, q_paths, g_paths, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, tmp_path)
    with pytest.raises(ValueError, match="select"):
        write_ranked_results(*args, select="best")
    with pytest.raises(ValueError, match="topk"):
        write_ranked_results(*args, topk=0)
    with pytest.raises(ValueError, match="g_paths"):
        write_ranked_results(DIST, q_paths, g_paths[:2], *args[3:])
    with pytest.raises(ValueError, match="g_pids"):
        write_ranked_results(DIST, q_paths, g_paths, Q_PIDS, G_PIDS[:3], *args[5:])


def test_an_unreadable_gallery_image_is_drawn_as_a_placeholder(images, tmp_path):
    q_paths, g_paths = images
    missing = [str(tmp_path / "gone.png")] + g_paths[1:]
    entries = write_ranked_results(
        DIST, q_paths, missing, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, tmp_path / "vis", topk=2, num_queries=1
    )
    assert os.path.isfile(tmp_path / "vis" / entries[0]["png"])


def test_dataset_items_give_the_same_pictures(images, tmp_path):
    q_paths, g_paths = images
    query = list(zip(q_paths, Q_PIDS, Q_CAMS))
    gallery = list(zip(g_paths, G_PIDS, G_CAMS))
    entries = write_ranked_items(DIST, query, gallery, tmp_path / "vis", topk=5, num_queries=None)
    direct = write_ranked_results(
        DIST, q_paths, g_paths, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, tmp_path / "direct", topk=5, num_queries=None
    )
    assert entries == direct
    with pytest.raises(ValueError, match="gallery"):
        write_ranked_items(DIST, query, g_paths, tmp_path / "vis")
