"""H200 epoch cost: ceil(train images / batch) steps at the measured step time; unmeasured settings say so."""

import pytest

from ptl_ext.step_time import describe_epoch_cost, epoch_seconds, load_step_times


def test_the_file_holds_the_measured_networks_and_the_dataset_sizes():
    steps, images, source = load_step_times()
    measured = {(s.arch, s.batch, s.height, s.width): (s.ms_low, s.ms_high) for s in steps}
    assert measured[("resnet50", 32, 256, 128)] == (17, 36.7)
    assert measured[("ptl_mgn", 32, 384, 128)] == (50, 75.3)
    assert images["market1501"] == 12936 and images["msmt17"] == 32621 and images["cuhk03_detected"] == 7365
    assert "H200" in source


def test_epoch_time_is_steps_times_step_time():
    steps, low, high = epoch_seconds("ptl_resnet50", 32, 256, 128, "market1501")
    assert steps == 405  # ceil(12936 / 32)
    assert (low, high) == pytest.approx((405 * 0.022, 405 * 0.0423))
    assert epoch_seconds("ptl_resnet50", 64, 256, 128, "market1501") is None  # another batch: not measured


def test_the_line_says_what_is_not_measured():
    line = describe_epoch_cost("densenet161", 32, 256, 128, ["market1501"], 50)
    assert "405 steps, 22-44 s per epoch" in line and "50 epochs: 18-37 min" in line
    assert "not measured for resnet101 at batch 32, 288x144" in describe_epoch_cost(
        "resnet101", 32, 288, 144, ["market1501"], 40
    )
