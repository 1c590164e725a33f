import os

import pytest

from ptl_ext.data import (
    REID_DATASETS,
    cuhk03_np,
    dukemtmc_reid,
    load_reid_dataset,
    market1501,
    market_duke,
    msmt17,
)
from ptl_ext.data.reid_datasets import MERGED_DUKE_CAM_OFFSET, MERGED_DUKE_PID_OFFSET


def touch(folder, names):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        open(os.path.join(folder, name), "wb").close()


MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s2_003301_02.jpg",
        "0011_c6s4_002202_01.jpg",
        "-1_c1s1_000000_00.jpg",
        "Thumbs.db",
    ],
    "query": ["0003_c1s1_000101_00.jpg", "0005_c4s2_010101_00.jpg"],
    "bounding_box_test": [
        "0003_c2s1_000201_01.jpg",
        "0005_c1s1_000301_01.jpg",
        "0000_c3s1_000401_01.jpg",
        "-1_c5s1_000501_01.jpg",
        "-1_c6s1_000601_01.jpg",
    ],
}


def write_market(root, layout=MARKET, name_map=None):
    for split, names in layout.items():
        touch(os.path.join(root, split), [name_map(n) if name_map else n for n in names])


def test_market_reads_names_pids_cameras_and_drops_junk(tmp_path):
    write_market(tmp_path)
    data = market1501(tmp_path)
    assert data.protocol == "market"
    assert len(data.train) == 4 and len(data.query) == 2 and len(data.gallery) == 3
    assert data.num_train_pids == 3 and data.num_train_cams == 4
    by_name = {os.path.basename(p): (pid, cam) for p, pid, cam in data.train}
    # raw pids 2, 7, 11 relabelled to 0, 1, 2; cameras 0-based
    assert by_name["0002_c2s1_000551_01.jpg"] == (0, 1)
    assert by_name["0007_c3s2_003301_02.jpg"] == (1, 2)
    assert by_name["0011_c6s4_002202_01.jpg"] == (2, 5)
    gallery = sorted((pid, cam) for _, pid, cam in data.gallery)
    assert gallery == [(0, 2), (3, 1), (5, 0)]  # distractor pid 0 kept, junk -1 dropped
    assert sorted(pid for _, pid, _ in data.query) == [3, 5]
    assert all(os.path.isabs(p) or p.startswith(str(tmp_path)) for p, _, _ in data.query)
    assert "train" in data.summary() and "gallery" in data.summary()


def test_market_found_in_its_usual_subfolder(tmp_path):
    write_market(tmp_path / "Market-1501-v15.09.15")
    data = load_reid_dataset("market1501", tmp_path)
    assert data.root == str(tmp_path / "Market-1501-v15.09.15")
    assert len(data.train) == 4


def test_wrong_folder_names_what_is_missing(tmp_path):
    touch(tmp_path / "bounding_box_train", ["0001_c1s1_000001_00.jpg"])
    with pytest.raises(FileNotFoundError, match="missing query, bounding_box_test"):
        market1501(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        market1501(tmp_path / "nowhere")


def test_bad_names_and_cameras_are_errors(tmp_path):
    write_market(tmp_path)
    touch(tmp_path / "query", ["0004_c7s1_000001_00.jpg"])  # Market has 6 cameras
    with pytest.raises(ValueError, match="camera in 1..6"):
        market1501(tmp_path)
    # the same camera is fine for Duke (8 cameras)
    assert len(dukemtmc_reid(tmp_path).query) == 3
    touch(tmp_path / "query", ["holiday.jpg"])
    with pytest.raises(ValueError, match="PID_cCAM"):
        dukemtmc_reid(tmp_path)


def test_empty_split_is_an_error(tmp_path):
    write_market(tmp_path)
    for name in os.listdir(tmp_path / "query"):
        os.remove(tmp_path / "query" / name)
    with pytest.raises(FileNotFoundError, match="no images in .*query"):
        market1501(tmp_path)


def test_duke_layout(tmp_path):
    layout = {
        "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c8_f0046500.jpg", "0005_c1_f0000001.jpg"],
        "query": ["0010_c3_f0000100.jpg"],
        "bounding_box_test": ["0010_c7_f0000200.jpg", "0011_c1_f0000300.jpg"],
    }
    write_market(tmp_path / "DukeMTMC-reID", layout)
    data = dukemtmc_reid(tmp_path)
    assert data.num_train_pids == 2 and data.num_train_cams == 3
    assert sorted((pid, cam) for _, pid, cam in data.gallery) == [(10, 6), (11, 0)]


def test_cuhk03_np_variants(tmp_path):
    root = tmp_path / "cuhk03-np"
    for variant, n in (("labeled", 3), ("detected", 2)):
        write_market(
            root / variant,
            {
                "bounding_box_train": [f"{i:04d}_c1_{i}.png" for i in range(1, n + 1)] + ["0001_c2_9.png"],
                "query": ["0100_c1_1.png"],
                "bounding_box_test": ["0100_c2_2.png"],
            },
        )
    labeled = cuhk03_np(tmp_path, "labeled")
    detected = load_reid_dataset("cuhk03_detected", root)
    assert labeled.name == "cuhk03_np_labeled" and labeled.num_train_pids == 3 and len(labeled.train) == 4
    assert detected.num_train_pids == 2 and detected.num_train_cams == 2
    with pytest.raises(ValueError, match="variant"):
        cuhk03_np(tmp_path, "both")
    with pytest.raises(FileNotFoundError, match="missing labeled"):
        cuhk03_np(tmp_path / "cuhk03-np" / "labeled", "labeled")


def write_msmt(root, train_dir="train", test_dir="test"):
    train = [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0000/0000_001_05_0303morning_0016_0.jpg 0",
        "0001/0001_000_15_0303noon_0001_1.jpg 1",
    ]
    val = ["0002/0002_000_02_0303noon_0002_0.jpg 2"]
    query = ["0000/0000_000_03_0303morning_0001_0.jpg 0"]
    gallery = ["0000/0000_001_04_0303morning_0002_0.jpg 0", "0001/0001_002_01_0303noon_0003_0.jpg 1"]
    for name, lines, folder in (
        ("list_train.txt", train, train_dir),
        ("list_val.txt", val, train_dir),
        ("list_query.txt", query, test_dir),
        ("list_gallery.txt", gallery, test_dir),
    ):
        (root / name).write_text("\n".join(lines) + "\n")
        for line in lines:
            rel = line.split()[0]
            touch(root / folder / os.path.dirname(rel), [os.path.basename(rel)])


def test_msmt17_lists(tmp_path):
    root = tmp_path / "MSMT17_V1"
    root.mkdir()
    write_msmt(root)
    data = msmt17(tmp_path)
    assert len(data.train) == 4 and data.num_train_pids == 3
    assert sorted(cam for _, _, cam in data.train) == [0, 1, 4, 14]
    assert [(pid, cam) for _, pid, cam in data.query] == [(0, 2)]
    assert all(p.startswith(str(root / "test")) for p, _, _ in data.gallery)


def test_msmt17_v2_folders_and_missing_images(tmp_path):
    write_msmt(tmp_path, "mask_train_v2", "mask_test_v2")
    assert len(msmt17(tmp_path).gallery) == 2
    os.remove(tmp_path / "mask_test_v2" / "0001" / "0001_002_01_0303noon_0003_0.jpg")
    with pytest.raises(FileNotFoundError, match="1 images listed in .*list_gallery.txt are missing"):
        msmt17(tmp_path)


def test_msmt17_wrong_folder(tmp_path):
    (tmp_path / "list_train.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="list_val.txt"):
        msmt17(tmp_path)


def test_market_duke_merge_relabels_ids(tmp_path):
    write_market(tmp_path / "market1501")
    write_market(
        tmp_path / "DukeMTMC-reID",
        {
            "bounding_box_train": ["0002_c7_f0000001.jpg", "0009_c1_f0000002.jpg"],
            "query": ["0003_c8_f0000003.jpg"],
            "bounding_box_test": ["0003_c1_f0000004.jpg"],
        },
    )
    data = market_duke(tmp_path)
    assert data.num_train_pids == 3 + 2  # Duke pid 2 is not Market pid 2
    duke_train = [(pid, cam) for p, pid, cam in data.train if "DukeMTMC" in p]
    assert sorted(duke_train) == [(3, 6 + MERGED_DUKE_CAM_OFFSET), (4, 0 + MERGED_DUKE_CAM_OFFSET)]
    duke_query = [(pid, cam) for p, pid, cam in data.query if "DukeMTMC" in p]
    assert duke_query == [(3 + MERGED_DUKE_PID_OFFSET, 7 + MERGED_DUKE_CAM_OFFSET)]
    assert len(data.gallery) == 4
    with pytest.raises(FileNotFoundError, match="side by side"):
        market_duke(tmp_path / "market1501")
    only_market = tmp_path / "only_market"
    write_market(only_market / "market1501")
    with pytest.raises(FileNotFoundError, match="dukemtmc_reid"):
        market_duke(only_market)


def test_registry_names():
    assert set(REID_DATASETS) == {
        "market1501",
        "dukemtmc_reid",
        "cuhk03_labeled",
        "cuhk03_detected",
        "msmt17",
        "market_duke",
    }
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_reid_dataset("viper", ".")
