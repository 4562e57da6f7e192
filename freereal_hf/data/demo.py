"""Deterministic demo datasets in the schema, built from installed packages only (no download).

Two visibly different domains, as the pre-training story needs, and one of curved text:

- ``"synthetic"``: English words rendered as SynthText renders them, in plain fonts (DejaVu Sans / Mono, regular
  and bold): on photographs, fine textures and colour gradients (``data.backgrounds``; none of them the real-like
  domain's photos), alpha-blended, in a colour that differs from the background in brightness or, for a third of
  the words, in hue only;
- ``"real-like"``: words in Latin, Cyrillic and Greek in other fonts (DejaVu Serif, bold, oblique, STIX)
  on crops of real photographs (scikit-image's sample photos), with perspective, blur and uneven light;
- ``"curved"``: English words (DejaVu Sans / Mono) on flat or noisy backgrounds, every word bent along an arch (up or down), labelled
  with 14-point polygons (7 points along the top, 7 along the bottom) as Total-Text and CTW1500 label curved text.

Every image has word polygons (``4 x 2``, or ``14 x 2`` for curved words, clockwise from the top-left),
transcriptions, character quads
and their word index, so the demo data can stand in for SynthText (pre-training, GlyphMix's char_mode),
for unlabeled real data (labels dropped) and for a labeled fine-tuning set. They are the default data of
every command when no dataset is given, and the fixtures of the tests.

Example:
    >>> from freereal_hf.data.demo import demo_dataset
    >>> ds = demo_dataset("real-like", num_images=4, seed=0)
    >>> ds[0]["texts"], len(ds[0]["char_polygons"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from datasets import Dataset
from PIL import Image, ImageDraw, ImageFont

from .backgrounds import background as render_background
from .backgrounds import contrast_colour
from .records import encode_png
from .schema import FEATURES

DOMAINS = ("synthetic", "real-like", "curved")

ENGLISH = ("open", "street", "coffee", "market", "hotel", "exit", "station", "garden", "bakery", "river",
           "north", "school", "museum", "pizza", "bank", "taxi", "metro", "books", "music", "sale", "city",
           "park", "bridge", "green", "light", "river", "house", "tower", "cinema", "pharmacy", "stop", "menu",
           "office", "library", "theatre", "fresh", "welcome", "entrance", "parking", "airport")
CYRILLIC = ("МОСКВА", "улица", "выход", "аптека", "хлеб", "почта", "кафе", "театр", "метро", "парк", "книги",
            "рынок", "вокзал", "музей", "банк")
GREEK = ("ΑΘΗΝΑ", "οδός", "έξοδος", "φαρμακείο", "καφές", "ταβέρνα", "μουσείο", "τράπεζα", "αγορά", "ΣΤΑΣΗ",
         "βιβλία", "πάρκο", "θέατρο")

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "brick.png", "grass.png", "gravel.png")
CURVED_FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
SYNTHETIC_FONTS = CURVED_FONTS + ("DejaVuSansMono-Bold.ttf",)
# the synthetic domain's backgrounds (data.backgrounds kinds): none is a photo of the real-like domain
SYNTHETIC_BACKGROUNDS = ("gradient", "texture:fabric", "texture:noise", "photo:camera", "photo:coins", "photo:moon",
                         "photo:ihc", "photo:cell", "photo:hopper", "photo:present")
REAL_FONTS = ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans-Oblique.ttf", "STIXGeneral.ttf",
              "STIXGeneralBol.ttf", "DejaVuSerif-Italic.ttf")


def _package_dir(name: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the demo data needs the installed package {name!r} (for its data files)")
    return Path(list(spec.submodule_search_locations)[0], *parts)


@lru_cache(maxsize=None)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_package_dir("matplotlib", "mpl-data", "fonts", "ttf", name)), size)


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(_package_dir("skimage", "data", name)), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"scikit-image sample photo {name} not found")
    return image[..., ::-1].copy()


@dataclass
class DemoSample:
    """One rendered image: ``image`` ``H x W x 3`` uint8 RGB; ``polygons`` ``N x P x 2`` (P = 4, or 14 for the
    curved domain) and ``char_quads``
    ``M x 4 x 2`` float32 ``(x, y)``; ``char_word`` ``M`` ints; ``stroke_mask`` ``H x W`` bool, the true glyph
    pixels (what GlyphMix's masks estimate)."""

    image: np.ndarray
    polygons: np.ndarray
    texts: list[str]
    char_quads: np.ndarray
    char_word: np.ndarray
    stroke_mask: np.ndarray


def _background(rng: np.random.Generator, domain: str, h: int, w: int) -> np.ndarray:
    if domain == "synthetic":
        return render_background(rng, SYNTHETIC_BACKGROUNDS[rng.integers(len(SYNTHETIC_BACKGROUNDS))], h, w)
    if domain == "curved":
        colour = rng.integers(0, 256, 3)
        image = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
        if rng.random() < 0.5:
            image = image + rng.normal(0, rng.uniform(5, 20), (h, w, 1))
        return np.clip(image, 0, 255).astype(np.uint8)
    photo = _photo(PHOTOS[rng.integers(len(PHOTOS))])
    ph, pw = photo.shape[:2]
    scale = max(h / ph, w / pw) * rng.uniform(1.0, 2.0)
    photo = cv2.resize(photo, (max(w, round(pw * scale)), max(h, round(ph * scale))), interpolation=cv2.INTER_AREA)
    y0, x0 = rng.integers(0, photo.shape[0] - h + 1), rng.integers(0, photo.shape[1] - w + 1)
    return np.ascontiguousarray(photo[y0:y0 + h, x0:x0 + w])


def _text_colour(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int, int]:
    """A colour that stands out from the mean of ``region`` (in brightness, hue or both)."""
    mean = region.reshape(-1, 3).mean(0)
    target = 255.0 - mean if rng.random() < 0.7 else rng.integers(0, 256, 3).astype(np.float64)
    if np.abs(target - mean).max() < 90:
        target = np.where(mean.mean() > 128, 20.0, 235.0) * np.ones(3)
    return tuple(int(v) for v in np.clip(target + rng.normal(0, 15, 3), 0, 255))


def _words(rng: np.random.Generator, domain: str, n: int) -> list[str]:
    if domain in ("synthetic", "curved"):
        return [str(ENGLISH[i]) for i in rng.integers(0, len(ENGLISH), n)]
    pools = (ENGLISH, CYRILLIC, GREEK)
    return [str(p[rng.integers(len(p))]) for p in (pools[i] for i in rng.integers(0, 3, n))]


class _Arch:
    """A word's bend: the vertical offset ``amplitude * sin(pi * t)`` (``t`` = 0..1 along the word's width, so
    the word arches up for a negative amplitude and sags for a positive one); ``up``/``down``: room it needs."""

    amplitude: float
    width: float

    @classmethod
    def flat(cls) -> "_Arch":
        return cls(0.0, 1.0)

    def __init__(self, rng: np.random.Generator | float, width: float, height: float = 0.0) -> None:
        if isinstance(rng, np.random.Generator):
            self.amplitude = float(rng.uniform(0.35, 0.8) * height * rng.choice([-1.0, 1.0]))
        else:
            self.amplitude = float(rng)
        self.width = float(max(width, 1.0))

    @property
    def up(self) -> int:
        return int(np.ceil(max(0.0, -self.amplitude)))

    @property
    def down(self) -> int:
        return int(np.ceil(max(0.0, self.amplitude)))

    def __call__(self, dx: float | np.ndarray) -> float | np.ndarray:
        """Offset (pixels, +y down) at ``dx`` pixels right of the word's left edge."""
        return self.amplitude * np.sin(np.pi * np.clip(np.asarray(dx, np.float64) / self.width, 0.0, 1.0))


def _draw_bent(canvas: Image.Image, mask_img: Image.Image, at: tuple[int, int], word: str,
               font: ImageFont.FreeTypeFont, colour: tuple[int, int, int], bend: _Arch, left: float) -> None:
    """Draws ``word`` at ``at`` with every column shifted down by ``bend`` (anti-aliased, via ``cv2.remap``)."""
    w, h = canvas.size
    layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(layer).text(at, word, font=font, fill=255)
    xs = np.arange(w, dtype=np.float32)
    map_x = np.broadcast_to(xs, (h, w)).copy()
    map_y = np.arange(h, dtype=np.float32)[:, None] - np.asarray(bend(xs - left), np.float32)[None, :]
    alpha = cv2.remap(np.asarray(layer), map_x, map_y, cv2.INTER_LINEAR, borderValue=0).astype(np.float32) / 255
    image = np.asarray(canvas).astype(np.float32)
    image = image * (1 - alpha[..., None]) + np.float32(colour) * alpha[..., None]
    canvas.paste(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)))
    mask = np.maximum(np.asarray(mask_img), (alpha * 255).astype(np.uint8))
    mask_img.paste(Image.fromarray(mask))


def render_sample(rng: np.random.Generator, domain: str = "synthetic", size: tuple[int, int] = (256, 256),
                  max_words: int = 5, background: str | None = None, colour_mode: str | None = None) -> DemoSample:
    """Renders one demo image of ``size = (H, W)`` with 1..``max_words`` non-overlapping words.

    ``background`` (a ``data.backgrounds`` kind) and ``colour_mode`` (``"brightness"`` or ``"hue"``) fix what the
    synthetic domain otherwise draws at random (the glyph-mask test sets use them)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if domain != "synthetic" and (background or colour_mode):
        raise ValueError(f"background and colour_mode are the synthetic domain's, not {domain!r}'s")
    h, w = size
    synthetic = domain == "synthetic"
    image = render_background(rng, background, h, w) if background else _background(rng, domain, h, w)
    canvas = Image.fromarray(image)
    mask_img = Image.new("L", (w, h), 0)
    draw, mask_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(mask_img)
    fonts = REAL_FONTS if domain == "real-like" else SYNTHETIC_FONTS if synthetic else CURVED_FONTS
    occupied = np.zeros((h, w), bool)
    margin = max(4, min(h, w) // 16) if domain == "real-like" else 4  # the perspective moves words outwards
    polygons, texts, quads, char_word = [], [], [], []
    for word in _words(rng, domain, int(rng.integers(1, max_words + 1))):
        font = _font(fonts[rng.integers(len(fonts))], int(rng.integers(max(14, h // 14), max(22, h // 7))))
        x0, y0, x1, y1 = font.getbbox(word)
        bend = _Arch(rng, x1 - x0, y1 - y0) if domain == "curved" else _Arch.flat()
        y0, y1 = y0 - bend.up, y1 + bend.down  # the placement box holds the bent word
        if x1 - x0 + 2 * margin > w or y1 - y0 + 2 * margin > h:
            continue
        for _ in range(20):  # place without overlapping earlier words (with a margin)
            x = int(rng.integers(margin - x0, w - margin - x1 + 1))
            y = int(rng.integers(margin - y0, h - margin - y1 + 1))
            box = (slice(max(0, y + y0 - 6), y + y1 + 6), slice(max(0, x + x0 - 6), x + x1 + 6))
            if not occupied[box].any():
                break
        else:
            continue
        occupied[box] = True
        if synthetic:
            mode = colour_mode or ("hue" if rng.random() < 1 / 3 else "brightness")
            colour = contrast_colour(rng, image[box], mode)
        else:
            colour = _text_colour(rng, image[box])
        y0, y1 = y0 + bend.up, y1 - bend.down  # the word's own box again
        left = x + x0
        if bend.amplitude:
            _draw_bent(canvas, mask_img, (x, y), word, font, colour, bend, left)
        else:
            draw.text((x, y), word, font=font, fill=colour)
            mask_draw.text((x, y), word, font=font, fill=255)
        index = len(polygons)
        for i, ch in enumerate(word):
            ox = x + font.getlength(word[:i])
            cx0, cy0, cx1, cy1 = font.getbbox(ch)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            a, b = bend(ox + cx0 - left), bend(ox + cx1 - left)
            quads.append([[ox + cx0, y + cy0 + a], [ox + cx1, y + cy0 + b], [ox + cx1, y + cy1 + b],
                          [ox + cx0, y + cy1 + a]])
            char_word.append(index)
        if bend.amplitude:
            xs = np.linspace(x + x0, x + x1, 7)
            offsets = [bend(v - left) for v in xs]
            polygons.append([[v, y + y0 + o] for v, o in zip(xs, offsets)]
                            + [[v, y + y1 + o] for v, o in zip(xs[::-1], offsets[::-1])])
        else:
            polygons.append([[x + x0, y + y0], [x + x1, y + y0], [x + x1, y + y1], [x + x0, y + y1]])
        texts.append(word)
    if synthetic:  # alpha blending with the background, as SynthText blends its words
        opacity = rng.uniform(0.85, 1.0)
        image = np.clip(image + opacity * (np.asarray(canvas).astype(np.float32) - image), 0, 255).round()
        image = image.astype(np.uint8)
    else:
        image = np.asarray(canvas).copy()
    stroke = np.asarray(mask_img) > 127
    polygons = np.asarray(polygons, np.float32).reshape(-1, 14 if domain == "curved" else 4, 2)
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    if domain == "real-like":
        image, stroke, polygons, quads = _real_look(rng, image, stroke, polygons, quads)
    return DemoSample(image, polygons, texts, quads, np.asarray(char_word, np.int64), stroke)


def _real_look(rng: np.random.Generator, image: np.ndarray, stroke: np.ndarray, polygons: np.ndarray,
               quads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Perspective, uneven light, blur and sensor noise; polygons follow the perspective."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    outward = np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]])  # corners move out: the frame stays covered
    dst = src + outward * rng.uniform(0, 0.08, (4, 2)).astype(np.float32) * np.float32([w, h])
    matrix = cv2.getPerspectiveTransform(src, dst)
    image = cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    stroke = cv2.warpPerspective(stroke.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST) > 0

    def warp(p: np.ndarray) -> np.ndarray:
        if not len(p):
            return p
        return np.clip(cv2.perspectiveTransform(p.reshape(-1, 1, 2), matrix).reshape(p.shape), 0, [w, h])

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    light = 1.0 + rng.uniform(0.1, 0.35) * (ramp - ramp.mean())
    image = image.astype(np.float32) * light[..., None]
    sigma = rng.uniform(0.3, 1.2)
    image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(2, 6), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), stroke, warp(polygons), warp(quads)


def demo_records(domain: str = "synthetic", num_images: int = 16, seed: int = 0, size: tuple[int, int] = (256, 256),
                 max_words: int = 5) -> list[dict]:
    """``num_images`` records in the schema (PNG-encoded images); image ``i`` depends only on
    ``(domain, seed, i)``."""
    records = []
    for i in range(num_images):
        rng = np.random.default_rng([seed, DOMAINS.index(domain), i])
        s = render_sample(rng, domain, size, max_words)
        records.append({"key": f"demo-{domain}-{seed}-{i:05d}.png", "image": {"bytes": encode_png(s.image), "path": None},
                        "polygons": s.polygons.tolist(), "ignore": [False] * len(s.polygons), "texts": s.texts,
                        "char_polygons": s.char_quads.tolist(), "char_word": s.char_word.tolist()})
    return records


def demo_dataset(domain: str = "synthetic", num_images: int = 16, seed: int = 0, size: tuple[int, int] = (256, 256),
                 max_words: int = 5) -> Dataset:
    """A ``datasets.Dataset`` of ``num_images`` demo records of ``domain`` (see :func:`demo_records`)."""
    return Dataset.from_list(demo_records(domain, num_images, seed, size, max_words), features=FEATURES)


__all__ = ["DOMAINS", "DemoSample", "render_sample", "demo_records", "demo_dataset"]
