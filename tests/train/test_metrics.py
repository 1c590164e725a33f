from ptl_ext.train.metrics import plot_curves, read_csv, write_csv

HISTORY = [
    {"epoch": 1, "lr": 0.01, "loss": 2.0, "ce": 2.0, "train_acc": 0.1, "time_s": 1.0},
    {
        "epoch": 2,
        "lr": 0.01,
        "loss": 1.5,
        "ce": 1.5,
        "train_acc": 0.3,
        "time_s": 1.0,
        "mAP": 0.25,
        "rank1": 0.5,
        "rank5": 0.7,
        "rank10": 0.8,
        "mINP": 0.1,
        "custom": 7.0,
    },
]


def test_csv_roundtrip_with_missing_values(tmp_path):
    write_csv(tmp_path / "m.csv", HISTORY)
    rows = read_csv(tmp_path / "m.csv")
    assert [r["loss"] for r in rows] == [2.0, 1.5]
    assert rows[0]["mAP"] is None and rows[1]["mAP"] == 0.25 and rows[1]["custom"] == 7.0
    header = (tmp_path / "m.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["epoch", "lr", "loss"] and header[-1] == "custom"


def test_png_written(tmp_path):
    plot_curves(tmp_path / "c.png", HISTORY, "mAP", "run")
    data = (tmp_path / "c.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    plot_curves(tmp_path / "e.png", [{"epoch": 1, "loss": 1.0, "top1_error": 0.4}], "top1_error")
    assert (tmp_path / "e.png").stat().st_size > 5000
