"""Backgrounds for rendered text, as SynthText renders words on natural images, and text colours that stay legible.

Kinds (``H x W x 3`` uint8 RGB, drawn from ``rng`` only):

- ``gradient``: a smooth colour ramp between two or three random colours, at a random angle, sometimes with a
  radial falloff;
- ``texture:<name>``: a fine texture, colour-shifted at random: ``gravel``, ``grass``, ``brick`` (scikit-image's
  sample photos, the real-like demo domain's too) and ``fabric``, ``noise`` (procedural: a woven thread pattern,
  band-passed noise);
- ``photo:<name>``: a random crop of a photograph (scikit-image's or matplotlib's sample files).

:func:`contrast_colour` picks a text colour for a background region: different in brightness (CIELAB ``L*``
apart by ``>= 40``) or in hue only (``L*`` within 8, ``a* b*`` apart by ``>= 45``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

SKIMAGE_TEXTURES = ("gravel", "grass", "brick")
PROCEDURAL_TEXTURES = ("fabric", "noise")
# photographs: (package, file); the demo's real-like domain uses the first block, the synthetic domain the second
PHOTO_FILES = {
    "astronaut": ("skimage", "astronaut.png"), "chelsea": ("skimage", "chelsea.png"),
    "coffee": ("skimage", "coffee.png"), "rocket": ("skimage", "rocket.jpg"),
    "motorcycle": ("skimage", "motorcycle_left.png"), "hubble": ("skimage", "hubble_deep_field.jpg"),
    "retina": ("skimage", "retina.jpg"),
    "camera": ("skimage", "camera.png"), "coins": ("skimage", "coins.png"), "moon": ("skimage", "moon.png"),
    "ihc": ("skimage", "ihc.png"), "cell": ("skimage", "cell.png"), "hopper": ("matplotlib", "grace_hopper.jpg"),
    "present": ("matplotlib", "Minduka_Present_Blue_Pack.png"),
}
TEXTURE_FILES = {"gravel": "gravel.png", "grass": "grass.png", "brick": "brick.png"}


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the demo backgrounds need the installed package {package!r} (for its data files)")
    base = Path(list(spec.submodule_search_locations)[0])
    return base / ("mpl-data/sample_data" if package == "matplotlib" else "data") / name


@lru_cache(maxsize=None)
def load_picture(package: str, name: str) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB sample picture of an installed package (gray ones repeated to 3 channels)."""
    image = cv2.imread(str(_package_file(package, name)), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{package} sample picture {name} not found")
    return np.ascontiguousarray(image[..., ::-1])


def random_crop(rng: np.random.Generator, picture: np.ndarray, h: int, w: int, zoom: tuple[float, float] = (1.0, 2.0)
                ) -> np.ndarray:
    """A random ``h x w`` crop of ``picture`` after scaling it to cover ``h x w`` times a random ``zoom``."""
    ph, pw = picture.shape[:2]
    scale = max(h / ph, w / pw) * rng.uniform(*zoom)
    resized = cv2.resize(picture, (max(w, round(pw * scale)), max(h, round(ph * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = rng.integers(0, resized.shape[0] - h + 1), rng.integers(0, resized.shape[1] - w + 1)
    return np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth ramp between random colours at a random angle (a third colour and a radial falloff at times)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    colours = rng.uniform(0, 255, (3, 3)).astype(np.float32)
    if rng.random() < 0.5:
        image = colours[0] + t[..., None] * (colours[1] - colours[0])
    else:  # three stops
        image = np.where(t[..., None] < 0.5, colours[0] + 2 * t[..., None] * (colours[1] - colours[0]),
                         colours[1] + (2 * t[..., None] - 1) * (colours[2] - colours[1]))
    if rng.random() < 0.4:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / np.hypot(h, w)
        image = image * (1.0 - rng.uniform(0.2, 0.5) * r[..., None])
    return np.clip(image, 0, 255).astype(np.uint8)


def _colour_shift(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The texture re-coloured: its brightness keeps the detail, a random tint and level give the colour."""
    gray = image.astype(np.float32).mean(-1, keepdims=True)
    gray = (gray - gray.mean()) * rng.uniform(0.6, 1.3)
    tint = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(tint + gray, 0, 255).astype(np.uint8)


def _fabric(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A woven pattern: over-under threads of a random period and angle, with fibre noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    period = rng.uniform(3, 8)
    warp, weft = np.sin(2 * np.pi * u / period), np.sin(2 * np.pi * v / period)
    over = np.sign(np.sin(np.pi * u / period) * np.sin(np.pi * v / period))
    pattern = np.where(over > 0, warp, weft) * 0.5 + 0.5
    fibre = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 0.7)
    level = pattern * rng.uniform(30, 70) + fibre * rng.uniform(5, 15)
    base = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(base + (level - level.mean())[..., None], 0, 255).astype(np.uint8)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Band-passed colour noise: speckles of a random grain size."""
    grain = rng.uniform(0.8, 3.0)
    noise = rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    band = cv2.GaussianBlur(noise, (0, 0), grain) - cv2.GaussianBlur(noise, (0, 0), grain * 3)
    band = band / max(1e-6, float(band.std()))
    base = rng.uniform(40, 215, 3).astype(np.float32)
    return np.clip(base + band * rng.uniform(10, 30), 0, 255).astype(np.uint8)


def background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """An ``h x w`` background of ``kind``: ``gradient``, ``texture:<name>`` or ``photo:<name>`` (see the module)."""
    family, _, name = kind.partition(":")
    if family == "gradient":
        return gradient(rng, h, w)
    if family == "texture" and name in SKIMAGE_TEXTURES:
        return _colour_shift(rng, random_crop(rng, load_picture("skimage", TEXTURE_FILES[name]), h, w, (0.5, 1.0)))
    if family == "texture" and name == "fabric":
        return _fabric(rng, h, w)
    if family == "texture" and name == "noise":
        return _noise(rng, h, w)
    if family == "photo" and name in PHOTO_FILES:
        return random_crop(rng, load_picture(*PHOTO_FILES[name]), h, w)
    raise ValueError(f"unknown background kind {kind!r}: gradient, texture:{{{','.join(SKIMAGE_TEXTURES + PROCEDURAL_TEXTURES)}}}"
                     f" or photo:{{{','.join(PHOTO_FILES)}}}")


def contrast_colour(rng: np.random.Generator, region: np.ndarray, mode: str = "brightness") -> tuple[int, int, int]:
    """An RGB text colour legible on ``region`` (``... x 3`` uint8 RGB): ``mode="brightness"`` puts its ``L*`` at
    least 40 from the region's mean, ``mode="hue"`` keeps ``L*`` within 8 and moves ``a* b*`` at least 45."""
    mean = region.reshape(-1, 3).mean(0).astype(np.uint8).reshape(1, 1, 3)
    lab = cv2.cvtColor(mean, cv2.COLOR_RGB2Lab).astype(np.float32)[0, 0]  # 8-bit Lab: L 0..255, a b offset 128
    lightness = lab[0] * 100 / 255
    for _ in range(50):
        if mode == "brightness":  # darker (possible from L* 42) or lighter (possible up to L* 58)
            sides = [s for s, ok in ((-1, lightness >= 42), (1, lightness <= 58)) if ok]
            target_l = (rng.uniform(0, lightness - 42) if rng.choice(sides) < 0
                        else rng.uniform(lightness + 42, 100))
            a, b = rng.uniform(-40, 40, 2)
        elif mode == "hue":
            target_l = float(np.clip(lightness + rng.uniform(-8, 8), 30, 85))
            direction = rng.uniform(0, 2 * np.pi)
            a = lab[1] - 128 + np.cos(direction) * rng.uniform(45, 80)
            b = lab[2] - 128 + np.sin(direction) * rng.uniform(45, 80)
        else:
            raise ValueError(f"mode must be 'brightness' or 'hue', got {mode!r}")
        pixel = np.array([[[target_l * 255 / 100, a + 128, b + 128]]], np.float32).clip(0, 255).astype(np.uint8)
        rgb = cv2.cvtColor(pixel, cv2.COLOR_Lab2RGB)
        back = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)[0, 0]  # in gamut after the round trip?
        dl = abs(back[0] - lab[0]) * 100 / 255
        dab = float(np.hypot(back[1] - lab[1], back[2] - lab[2]))
        if (mode == "brightness" and dl >= 40) or (mode == "hue" and dl <= 8 and dab >= 45):
            return tuple(int(v) for v in rgb[0, 0])
    # no colour of that kind exists for this region (e.g. hue on a near-white one): fall back to brightness
    return contrast_colour(rng, region, "brightness") if mode == "hue" else (
        (0, 0, 0) if lightness > 50 else (255, 255, 255))


__all__ = ["background", "contrast_colour", "gradient", "random_crop", "load_picture", "PHOTO_FILES",
           "SKIMAGE_TEXTURES", "PROCEDURAL_TEXTURES"]
