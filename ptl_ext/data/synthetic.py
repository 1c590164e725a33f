"""A synthetic person re-identification dataset written in the Market-1501 layout.

Identities differ by clothing: upper-body colour and pattern (solid, stripes, checks, two
halves), lower-body colour and cut, skin, hair, bags and build. Cameras differ by lighting
(gain, colour cast, contrast), background, viewpoint (horizontal shift, scale, front / back /
side views that change what is visible) and occlusion (poles and low obstacles). Every image
also gets pose, position and noise jitter, so matching across cameras has to be learned.
The output depends only on the arguments: the same seed writes the same files, byte for byte.

Two domains share the renderer. ``domain="target"`` (the default) is the ReID set the methods are
fine-tuned and tested on. ``domain="source"`` plays ImageNet's role for pre-training: its people come
from other random streams (disjoint from the target's for the same seed) and its cameras from other
ranges (:data:`CAMERA_RANGES`: brighter, warmer light, lighter and finer backgrounds, centred tighter
crops, balanced viewpoints, little occlusion or noise), so going from source to target is a domain shift.
"""

import os

import numpy as np

from .. import _checks
from .image import write_image
from .reid_datasets import MARKET_SPLITS

PALETTE = np.array(
    [
        (0.80, 0.10, 0.10),
        (0.10, 0.25, 0.75),
        (0.10, 0.55, 0.20),
        (0.90, 0.80, 0.15),
        (0.08, 0.08, 0.08),
        (0.92, 0.92, 0.90),
        (0.50, 0.50, 0.52),
        (0.50, 0.15, 0.60),
        (0.95, 0.50, 0.10),
        (0.45, 0.28, 0.12),
        (0.05, 0.10, 0.35),
        (0.95, 0.55, 0.70),
    ]
)
SKIN = np.array([(0.95, 0.80, 0.68), (0.85, 0.65, 0.50), (0.65, 0.45, 0.30), (0.40, 0.27, 0.18)])
HAIR = np.array([(0.05, 0.04, 0.03), (0.30, 0.18, 0.08), (0.85, 0.70, 0.35), (0.60, 0.60, 0.60)])
PATTERNS = ("solid", "hstripes", "vstripes", "checks", "halves")
LOWER_CUTS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder")
VIEWS = ("front", "back", "side")
DOMAINS = ("target", "source")
# Random-stream tags of each domain: identities, cameras, per-identity shots, distractors/junk.
_STREAMS = {"target": (1, 2, 3, 4), "source": (11, 12, 13, 14)}
# Camera statistics per domain, (low, high) of uniform draws; "tint" is the per-channel gain spread,
# "views" the Dirichlet concentration of the front / back / side mix.
CAMERA_RANGES = {
    "target": {
        "gain": (0.65, 1.25),
        "tint": 0.18,
        "cast": ((-0.06,) * 3, (0.06,) * 3),
        "contrast": (0.75, 1.15),
        "wall": (0.2, 0.8),
        "floor": (0.15, 0.6),
        "horizon": (0.45, 0.75),
        "texture_period": (0.1, 0.3),
        "shift": (-0.12, 0.12),
        "scale": (0.78, 0.95),
        "views": (0.7, 0.7, 0.7),
        "occlusion": (0.0, 0.45),
        "noise": (0.01, 0.04),
    },
    "source": {
        "gain": (0.95, 1.4),
        "tint": 0.08,
        "cast": ((0.02, 0.0, -0.08), (0.08, 0.04, -0.02)),
        "contrast": (0.95, 1.3),
        "wall": (0.5, 0.95),
        "floor": (0.35, 0.75),
        "horizon": (0.65, 0.9),
        "texture_period": (0.04, 0.12),
        "shift": (-0.04, 0.04),
        "scale": (0.88, 0.98),
        "views": (3.0, 3.0, 3.0),
        "occlusion": (0.0, 0.12),
        "noise": (0.004, 0.015),
    },
}


def _identity(seed, pid, domain="target"):
    """Clothing and build of one identity, from its own random stream (one set of streams per domain)."""
    rng = np.random.default_rng([seed, _STREAMS[domain][0], pid])
    upper = rng.integers(len(PALETTE))
    second = (upper + 1 + rng.integers(len(PALETTE) - 1)) % len(PALETTE)
    return {
        "upper": PALETTE[upper],
        "second": PALETTE[second],
        "pattern": PATTERNS[rng.integers(len(PATTERNS))],
        "period": float(rng.choice([0.04, 0.06, 0.09])),
        "lower": PALETTE[rng.choice([1, 4, 6, 9, 10, 5, 2])],
        "cut": LOWER_CUTS[rng.integers(len(LOWER_CUTS))],
        "sleeves": bool(rng.integers(2)),
        "skin": SKIN[rng.integers(len(SKIN))],
        "hair": HAIR[rng.integers(len(HAIR))],
        "long_hair": bool(rng.random() < 0.35),
        "bag": BAGS[rng.integers(len(BAGS))],
        "bag_colour": PALETTE[rng.integers(len(PALETTE))],
        "shoes": PALETTE[rng.choice([4, 5, 9])],
        "build": float(rng.uniform(0.85, 1.15)),
    }


def _camera(seed, cam, domain="target"):
    """Lighting, background, viewpoint and occlusion of one camera, drawn from ``CAMERA_RANGES[domain]``."""
    rng = np.random.default_rng([seed, _STREAMS[domain][1], cam])
    r = CAMERA_RANGES[domain]
    return {
        "gain": rng.uniform(*r["gain"]) * (1.0 + rng.uniform(-r["tint"], r["tint"], size=3)),
        "cast": rng.uniform(*r["cast"], size=3),
        "contrast": float(rng.uniform(*r["contrast"])),
        "wall": rng.uniform(*r["wall"], size=3),
        "floor": rng.uniform(*r["floor"], size=3),
        "horizon": float(rng.uniform(*r["horizon"])),
        "texture": int(rng.integers(3)),
        "texture_period": float(rng.uniform(*r["texture_period"])),
        "shift": float(rng.uniform(*r["shift"])),
        "scale": float(rng.uniform(*r["scale"])),
        "views": rng.dirichlet(np.array(r["views"])),
        "occlusion": float(rng.uniform(*r["occlusion"])),
        "occluder": rng.uniform(0.1, 0.7, size=3),
        "noise": float(rng.uniform(*r["noise"])),
    }


class _Canvas:
    """An ``[H, W, 3]`` float image with fractional-coordinate drawing helpers."""

    def __init__(self, height, width):
        self.height, self.width = height, width
        self.pixels = np.zeros((height, width, 3))
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float64)
        self.yy = (self.yy + 0.5) / height
        self.xx = (self.xx + 0.5) / width

    def rect(self, y0, y1, x0, x1):
        return (self.yy >= y0) & (self.yy < y1) & (self.xx >= x0) & (self.xx < x1)

    def ellipse(self, cy, cx, ry, rx):
        return ((self.yy - cy) / ry) ** 2 + ((self.xx - cx) / rx) ** 2 <= 1.0

    def paint(self, mask, colour):
        self.pixels[mask] = colour


def _background(canvas, cam, rng):
    offset = rng.uniform(0, cam["texture_period"])
    period = cam["texture_period"]
    wall = np.broadcast_to(cam["wall"], canvas.pixels.shape).copy()
    if cam["texture"] == 0:
        bars = ((canvas.xx + offset) / period % 1.0) < 0.5
        wall[bars] *= 0.8
    elif cam["texture"] == 1:
        wall *= (0.7 + 0.5 * canvas.yy)[..., None]
    else:
        tiles = (np.floor((canvas.xx + offset) / period) + np.floor(canvas.yy / period)) % 2 == 0
        wall[tiles] *= 0.85
    canvas.pixels[:] = wall
    canvas.paint(canvas.yy >= cam["horizon"], cam["floor"])


def _person(canvas, ident, view, cx, top, height, phase):
    """Draw one person of ``height`` (image fraction) with head top at ``top`` and centre ``cx``."""
    aspect = canvas.height / canvas.width
    unit_x = height * aspect  # one unit of person height, in image-width fractions
    half = 0.15 * unit_x * ident["build"] * (0.7 if view == "side" else 1.0)
    torso_top, torso_bottom = top + 0.16 * height, top + 0.52 * height
    leg_bottom, foot = top + 0.95 * height, top + height
    # legs (walking phase moves them apart)
    leg_w = 0.06 * unit_x
    spread = (0.02 + 0.05 * phase) * unit_x
    knee = top + (0.70 if ident["cut"] == "shorts" else 0.95) * height
    for sign in (-1, 1):
        x0 = cx + sign * spread - leg_w / 2
        canvas.paint(canvas.rect(torso_bottom, leg_bottom, x0, x0 + leg_w), ident["skin"])
        canvas.paint(canvas.rect(torso_bottom, knee, x0, x0 + leg_w), ident["lower"])
        canvas.paint(canvas.rect(leg_bottom, foot, x0 - 0.01 * unit_x, x0 + leg_w + 0.01 * unit_x), ident["shoes"])
    if ident["cut"] == "skirt":
        canvas.paint(canvas.rect(torso_bottom, top + 0.72 * height, cx - half * 1.2, cx + half * 1.2), ident["lower"])
    # arms
    arm_w = 0.05 * unit_x
    if view != "side":
        for sign in (-1, 1):
            x0 = cx + sign * (half + arm_w / 2) - arm_w / 2
            canvas.paint(canvas.rect(torso_top + 0.01, torso_bottom, x0, x0 + arm_w), ident["skin"])
            sleeve_end = torso_bottom if ident["sleeves"] else torso_top + 0.14 * height
            canvas.paint(canvas.rect(torso_top + 0.01, sleeve_end, x0, x0 + arm_w), ident["upper"])
    # torso with its pattern (the "halves" pattern mirrors between front and back views)
    torso = canvas.rect(torso_top, torso_bottom, cx - half, cx + half)
    u = (canvas.xx - cx) / unit_x
    v = (canvas.yy - torso_top) / height
    period = ident["period"]
    if ident["pattern"] == "hstripes":
        second = (v / period) % 2.0 < 1.0
    elif ident["pattern"] == "vstripes":
        second = (u / period) % 2.0 < 1.0
    elif ident["pattern"] == "checks":
        second = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    elif ident["pattern"] == "halves":
        second = (u < 0) if view != "back" else (u >= 0)
    else:
        second = np.zeros_like(torso)
    canvas.paint(torso, ident["upper"])
    canvas.paint(torso & second, ident["second"])
    # bags: a backpack covers the back, shows straps in front; a shoulder bag hangs at the hip
    if ident["bag"] == "backpack":
        if view == "back":
            canvas.paint(
                canvas.rect(torso_top + 0.03 * height, torso_top + 0.30 * height, cx - 0.7 * half, cx + 0.7 * half),
                ident["bag_colour"],
            )
        elif view == "front":
            for sign in (-1, 1):
                x0 = cx + sign * 0.55 * half
                canvas.paint(
                    canvas.rect(torso_top, torso_top + 0.22 * height, x0 - 0.012, x0 + 0.012), ident["bag_colour"]
                )
        else:
            canvas.paint(
                canvas.rect(torso_top + 0.03 * height, torso_top + 0.30 * height, cx + half, cx + half + 0.12 * unit_x),
                ident["bag_colour"],
            )
    elif ident["bag"] == "shoulder":
        side = 1 if view != "back" else -1
        canvas.paint(
            canvas.rect(
                top + 0.42 * height,
                top + 0.58 * height,
                cx + side * half - 0.06 * unit_x,
                cx + side * half + 0.06 * unit_x,
            ),
            ident["bag_colour"],
        )
    # head and hair
    head_cy, head_ry, head_rx = top + 0.085 * height, 0.075 * height, 0.065 * unit_x
    canvas.paint(canvas.ellipse(head_cy, cx, head_ry, head_rx), ident["skin"])
    hair = canvas.ellipse(head_cy - 0.01 * height, cx, head_ry * 1.05, head_rx * 1.08)
    hair &= canvas.yy < head_cy - (0.0 if view != "back" else -head_ry)
    canvas.paint(hair, ident["hair"])
    if ident["long_hair"]:
        long_hair = canvas.rect(head_cy, head_cy + 0.12 * height, cx - head_rx * 1.05, cx + head_rx * 1.05)
        if view != "back":  # the face stays visible
            long_hair &= ~canvas.ellipse(head_cy, cx, head_ry, head_rx * 0.8)
        canvas.paint(long_hair, ident["hair"])


def _occlude(canvas, cam, rng):
    if rng.random() >= cam["occlusion"]:
        return
    if rng.random() < 0.5:  # a pole
        x0 = rng.uniform(0.15, 0.75)
        canvas.paint(canvas.rect(0.0, 1.0, x0, x0 + rng.uniform(0.08, 0.18)), cam["occluder"])
    else:  # a low obstacle (bench, car, railing)
        canvas.paint(canvas.rect(1.0 - rng.uniform(0.2, 0.45), 1.0, -0.1, 1.1), cam["occluder"])


def render_image(ident, cam, height, width, rng):
    """One ``uint8 [height, width, 3]`` image of identity ``ident`` (or background only if ``None``)."""
    canvas = _Canvas(height, width)
    _background(canvas, cam, rng)
    if ident is not None:
        view = VIEWS[rng.choice(len(VIEWS), p=cam["views"])]
        scale = cam["scale"] * rng.uniform(0.94, 1.04)
        cx = 0.5 + cam["shift"] + rng.uniform(-0.05, 0.05)
        top = 0.985 - scale - rng.uniform(0.0, 0.03)
        _person(canvas, ident, view, cx, top, scale, rng.random())
    _occlude(canvas, cam, rng)
    light = 1.0 + rng.uniform(-0.08, 0.08)
    image = canvas.pixels * cam["gain"] * light + cam["cast"]
    image = (image - 0.5) * cam["contrast"] + 0.5
    image += rng.normal(0.0, cam["noise"], size=image.shape)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_synthetic_market(
    out,
    num_train_ids=32,
    num_test_ids=32,
    num_cams=4,
    images_per_cam=3,
    num_distractors=10,
    num_junk=5,
    height=128,
    width=64,
    seed=0,
    domain="target",
):
    """Write a Market-1501-style dataset to ``out`` (``bounding_box_train``, ``query``, ``bounding_box_test``).

    Each identity appears in 2..``num_cams`` cameras with ``images_per_cam`` (>= 2) images per camera.
    Test identities give one query per camera they appear in; their other images go to the
    gallery with ``num_distractors`` pid-0 images and ``num_junk`` pid −1 images.
    File names follow Market: ``PPPP_cCs1_FFFFFF_NN.jpg``. ``domain``: ``"target"`` or ``"source"`` (see
    the module docstring): the same seed and sizes give other people and other cameras in the source.

    Returns:
        dict of image counts per split and the ids used.
    """
    name = "make_synthetic_market: {}".format
    _checks.choice(domain, name("domain"), DOMAINS)
    _checks.integer(num_cams, name("num_cams (Market has 6 cameras)"), 2, 6)
    for arg, value, low in (
        ("num_train_ids", num_train_ids, 1),
        ("num_test_ids", num_test_ids, 1),
        ("images_per_cam", images_per_cam, 2),
        ("num_distractors", num_distractors, 0),
        ("num_junk", num_junk, 0),
        ("height", height, 16),
        ("width", width, 8),
        ("seed", seed, 0),
    ):
        _checks.integer(value, name(arg), minimum=low)
    if num_train_ids + num_test_ids > 9999:
        raise ValueError("make_synthetic_market: at most 9999 identities fit the 4-digit Market names")
    # the drawing canvas holds about 16 float64 planes of the image (pixels, grids, masks, temporaries)
    _checks.allocation(height * width * 16 * 8, name(f"drawing {height}x{width} images"))
    out = os.fspath(out)
    for split in MARKET_SPLITS:
        folder = os.path.join(out, split)
        if os.path.isdir(folder) and os.listdir(folder):
            raise FileExistsError(f"make_synthetic_market: {folder} is not empty; choose an empty output folder")
    for split in MARKET_SPLITS:
        os.makedirs(os.path.join(out, split), exist_ok=True)
    streams = _STREAMS[domain]
    cams = [_camera(seed, c, domain) for c in range(num_cams)]
    counts = dict.fromkeys(MARKET_SPLITS, 0)
    frame = 0

    def save(split, pid, cam, rng, ident):
        nonlocal frame
        frame += 1
        name = f"{pid:04d}" if pid >= 0 else "-1"
        path = os.path.join(out, split, f"{name}_c{cam + 1}s1_{frame:06d}_00.jpg")
        write_image(path, render_image(ident, cams[cam], height, width, rng))
        counts[split] += 1

    for pid in range(1, num_train_ids + num_test_ids + 1):
        ident = _identity(seed, pid, domain)
        rng = np.random.default_rng([seed, streams[2], pid])
        seen = np.sort(rng.choice(num_cams, size=int(rng.integers(2, num_cams + 1)), replace=False))
        for cam in seen:
            for shot in range(images_per_cam):
                if pid <= num_train_ids:
                    split = "bounding_box_train"
                else:
                    split = "query" if shot == 0 else "bounding_box_test"
                save(split, pid, int(cam), rng, ident)
    rng = np.random.default_rng([seed, streams[3]])
    for index in range(num_distractors):
        ident = _identity(seed, 100000 + index, domain)
        save("bounding_box_test", 0, int(rng.integers(num_cams)), rng, ident)
    for _ in range(num_junk):
        save("bounding_box_test", -1, int(rng.integers(num_cams)), rng, None)
    return {
        "counts": counts,
        "domain": domain,
        "train_ids": list(range(1, num_train_ids + 1)),
        "test_ids": list(range(num_train_ids + 1, num_train_ids + num_test_ids + 1)),
    }
