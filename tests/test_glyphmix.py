"""GlyphMix: glyph masks against known strokes, the map step, the views, and the mixing formulas pixel for pixel."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from datasets import load_from_disk
from PIL import Image, ImageDraw

from freereal_hf import DBNetForTextDetection, config_from_preset
from freereal_hf.cli.glyphmix_preview import main as preview_main
from freereal_hf.data.demo import _font, demo_dataset, demo_records, render_sample
from freereal_hf.data.records import Report
from freereal_hf.data.transforms import AugmentConfig, normalize_batch, training_view
from freereal_hf.glyphmix import (GlyphMixConfig, RealViews, StrongAugment, SyntheticSample, add_glyph_masks,
                                  decode_mask, encode_mask, glyph_mask, glyphmix, inter_domain_mix, intra_domain_mix)
from freereal_hf.glyphmix.mixing import box_masks, box_sums, partner_text_area, sample_boxes, select_boxes
from freereal_hf.models.base import MapKind, TargetMap, TargetSpec

KEYS = ("shrink_map", "shrink_mask", "threshold_map", "threshold_mask")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def dbnet() -> DBNetForTextDetection:
    torch.manual_seed(0)
    return DBNetForTextDetection(config_from_preset("dbnet_r18")).eval()


# -- glyph masks ----------------------------------------------------------------------------------------------

def test_glyph_masks_match_the_rendered_strokes():
    ious = []
    for i in range(24):
        s = render_sample(np.random.default_rng([7, i]), "synthetic", (256, 256))
        ious.append(iou(glyph_mask(s.image, s.char_quads), s.stroke_mask))
    assert np.mean(ious) >= 0.85, ious
    assert min(ious) > 0.5


# SynthText's difficulty: words on gradients, fine textures and photographs, different in brightness or in hue only
BACKGROUNDS = {"gradient": ["gradient"],
               "texture": ["texture:gravel", "texture:grass", "texture:brick", "texture:fabric"],
               "photograph": ["photo:astronaut", "photo:hopper", "photo:coffee", "photo:chelsea"]}


@pytest.mark.parametrize("family", list(BACKGROUNDS))
def test_glyph_masks_hold_on_real_backgrounds(family):
    """Anti-aliased glyphs of four fonts rendered on each kind of background with a known stroke mask (alpha >
    0.5): mean IoU >= 0.92 per kind at 384 x 384 (scripts/benchmark_glyphmix.py measures 256 and 512 too)."""
    ious, counts = [], {}
    for j, kind in enumerate(BACKGROUNDS[family]):
        for i, mode in enumerate(("brightness", "hue", "brightness", "hue")):
            s = render_sample(np.random.default_rng([21, j, i]), "synthetic", (384, 384), max_words=8,
                              background=kind, colour_mode=mode)
            ious.append(iou(glyph_mask(s.image, s.char_quads, counts), s.stroke_mask))
    assert np.mean(ious) >= 0.92, (family, np.round(ious, 3))
    assert counts["left_out"] <= 0.02 * counts["chars"], counts


def test_characters_without_a_clean_split_are_left_out_and_counted(tmp_path, caplog):
    """A letter in the background's own colour, and one whose surroundings look like the text, give no mask
    rather than garbage; the map step counts them and says what fraction it left out."""
    rng = np.random.default_rng(0)
    image = np.clip(np.full((60, 160, 3), 120.0) + rng.normal(0, 3, (60, 160, 3)), 0, 255).astype(np.uint8)
    stroke = Image.new("L", (160, 60), 0)
    font = _font("DejaVuSans-Bold.ttf", 36)
    ImageDraw.Draw(stroke).text((10, 8), "AB", font=font, fill=255)
    strokes = np.asarray(stroke) > 127
    image[strokes & (np.arange(160) >= 40)[None, :]] = (20, 20, 20)  # 'B' dark, 'A' invisible
    image[:, 90:150] = (20, 20, 20)  # a dark block: the third box sits on text-coloured surroundings
    quads = []
    for i, ch in enumerate("AB"):
        ox = 10 + font.getlength("AB"[:i])
        x0, y0, x1, y1 = font.getbbox(ch)
        quads.append([[ox + x0, 8 + y0], [ox + x1, 8 + y0], [ox + x1, 8 + y1], [ox + x0, 8 + y1]])
    quads.append([[100, 15], [130, 15], [130, 45], [100, 45]])
    counts: dict[str, int] = {}
    mask = glyph_mask(image, np.asarray(quads, np.float32), counts)
    assert counts == {"chars": 3, "left_out": 2}
    assert not mask[:, :40].any() and not mask[:, 90:].any() and iou(mask[:, 40:90], strokes[:, 40:90]) > 0.85
    from datasets import Dataset

    from freereal_hf.data.schema import FEATURES

    record = {**demo_records("synthetic", 1)[0], "image": {"bytes": cv2.imencode(".png", image[..., ::-1])[1].tobytes(),
                                                           "path": None}, "char_polygons": quads, "char_word": [0, 0, 0]}
    with caplog.at_level("WARNING", logger="freereal_hf.glyphmix"):
        masked = add_glyph_masks(Dataset.from_list([record], features=FEATURES))
    assert masked["glyph_left_out"] == [2]
    assert "2 of 3 characters (66.7%)" in caplog.text


def test_colour_clustering_finds_strokes_that_differ_only_in_hue():
    """Red text on a green background of the same brightness: grayscale cannot separate them, Lab can."""
    h, w = 64, 200
    green = np.array([0, 130, 0], np.float64)
    red = np.array([255, 0, 0], np.float64)  # BT.601 luma 0.587 * 130 = 76.3 and 0.299 * 255 = 76.2
    image = np.broadcast_to(green, (h, w, 3)).copy()
    stroke = Image.new("L", (w, h), 0)
    font = _font("DejaVuSans-Bold.ttf", 40)
    ImageDraw.Draw(stroke).text((10, 8), "HUE", font=font, fill=255)
    stroke = np.asarray(stroke) > 127
    image[stroke] = red
    image = np.clip(image + np.random.default_rng(0).normal(0, 4, (h, w, 1)), 0, 255).astype(np.uint8)
    quads = []
    for i, ch in enumerate("HUE"):
        ox = 10 + font.getlength("HUE"[:i])
        x0, y0, x1, y1 = font.getbbox(ch)
        quads.append([[ox + x0, 8 + y0], [ox + x1, 8 + y0], [ox + x1, 8 + y1], [ox + x0, 8 + y1]])
    quads = np.asarray(quads, np.float32)
    assert iou(glyph_mask(image, quads), stroke) > 0.9
    gray = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert iou(glyph_mask(gray, quads), stroke) < 0.5  # what the grayscale rule would give


def test_glyph_mask_edge_cases():
    image = np.full((20, 30, 3), 200, np.uint8)
    assert not glyph_mask(image, np.zeros((0, 4, 2))).any()
    bad = np.array([[[np.nan, 0], [5, 0], [5, 5], [0, 5]], [[40, 40], [50, 40], [50, 50], [40, 50]]], np.float32)
    assert glyph_mask(image, bad).shape == (20, 30) and not glyph_mask(image, bad).any()
    image[5:10, 5:8] = 0
    m = glyph_mask(image, np.array([[[2, 2], [12, 2], [12, 14], [2, 14]]], np.float32))
    assert m[5:10, 5:8].all() and m.sum() == 15
    with pytest.raises(ValueError, match="uint8 RGB"):
        glyph_mask(image.astype(np.float32), bad)


def test_mask_bytes_round_trip_one_bit_per_pixel_and_read_older_8_bit_masks():
    rng = np.random.default_rng(0)
    for shape in ((1, 1), (7, 13), (9, 8), (31, 65)):  # widths that do not fill whole bytes
        for mask in (rng.random(shape) < 0.3, np.zeros(shape, bool), np.ones(shape, bool)):
            data = encode_mask(mask)
            assert np.array_equal(decode_mask(data), mask) and decode_mask(data).dtype == bool
            assert data[24] == 1  # the PNG header's bit depth (IHDR): one bit per pixel
    mask = rng.random((20, 30)) < 0.3
    ok, older = cv2.imencode(".png", mask.astype(np.uint8))  # what masks were stored as before: 0/1 in 8 bits
    assert ok and np.array_equal(decode_mask(older.tobytes()), mask)


def test_glyph_masks_as_a_cached_map_step(tmp_path):
    demo_dataset("synthetic", 6, seed=3).save_to_disk(tmp_path / "syn")
    ds = load_from_disk(tmp_path / "syn")
    masked = add_glyph_masks(ds)
    for record in masked:
        image = np.asarray(Image.open(io.BytesIO(record["image"]["bytes"])).convert("RGB"))
        quads = np.asarray(record["char_polygons"], np.float32).reshape(-1, 4, 2)
        assert np.array_equal(decode_mask(record["glyph_mask"]), glyph_mask(image, quads))
    assert masked.cache_files and all("cache-" in f["filename"] for f in masked.cache_files)
    again = add_glyph_masks(load_from_disk(tmp_path / "syn"))
    assert again._fingerprint == masked._fingerprint and again.cache_files == masked.cache_files
    two = add_glyph_masks(load_from_disk(tmp_path / "syn"), num_proc=2, desc="two processes")
    assert two["glyph_mask"] == masked["glyph_mask"]
    assert add_glyph_masks(masked)["glyph_mask"] == masked["glyph_mask"]  # idempotent
    assert sum(len(m) for m in masked["glyph_mask"]) < 6 * 256 * 256 / 20  # stored compactly


# -- views ---------------------------------------------------------------------------------------------------

def test_weak_and_strong_views_share_one_geometry():
    ds = demo_dataset("real-like", 3, seed=1)
    plain = StrongAugment(brightness=0, contrast=0, saturation=0, hue=0, blur_prob=0, grayscale_prob=0,
                          noise_prob=0, jpeg_prob=0)
    augment = AugmentConfig(size=128)
    same = training_view(ds, RealViews(augment, plain, seed=5))[:3]
    assert all(torch.equal(w, s) for w, s in zip(same["weak_pixel_values"], same["strong_pixel_values"]))
    noisy = training_view(ds, RealViews(augment, StrongAugment(grayscale_prob=0), seed=5))[:3]
    for weak, strong, weak_plain in zip(noisy["weak_pixel_values"], noisy["strong_pixel_values"],
                                        same["weak_pixel_values"]):
        assert torch.equal(weak, weak_plain)  # the strong noise does not change the weak view's geometry
        assert not torch.equal(weak, strong)
        # same geometry: the strong view correlates best with the weak view unshifted
        smooth_w, smooth_s = (torch.nn.functional.avg_pool2d(v.float().mean(0)[None], 5, 1)[0] for v in (weak, strong))

        def corr(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

        aligned = corr(smooth_w[4:-4, 4:-4], smooth_s[4:-4, 4:-4])
        shifted = max(corr(smooth_w[4 + dy:smooth_w.shape[0] - 4 + dy, 4 + dx:smooth_w.shape[1] - 4 + dx],
                           smooth_s[4:-4, 4:-4]) for dy, dx in ((0, 3), (3, 0), (-3, 0), (0, -3)))
        assert aligned > 0.5 and aligned > shifted


def test_synthetic_sample_moves_glyphs_with_the_image(dbnet):
    ds = add_glyph_masks(demo_dataset("synthetic", 4, seed=2))
    for char_mode in (True, False):
        tf = SyntheticSample(dbnet.build_targets, dbnet.target_region, AugmentConfig(size=256), char_mode, seed=1)
        for i in range(4):
            s = training_view(ds, tf)[i]
            image = s["pixel_values"].permute(1, 2, 0).numpy()  # uint8 RGB out of the transform
            glyph = s["glyph_mask"].numpy() > 0
            # a mask made on the warped image's own strokes agrees with the warped mask
            dark_or_light = np.abs(image.astype(np.int32) - np.median(image.reshape(-1, 3), 0)).sum(2) > 60
            assert glyph.sum() > 0 and (glyph & dark_or_light).sum() / glyph.sum() > 0.8
            assert (s["text_region"].numpy() >= (s["shrink_map"].numpy() > 0)).all()
            count = cv2.connectedComponents((s["shrink_map"].numpy() > 0).astype(np.uint8))[0] - 1
            words = len(demo_records("synthetic", 4, seed=2)[i]["polygons"])
            assert (count > words) if char_mode else (count <= words)


def test_a_corrupt_synthetic_image_is_skipped_with_zero_weights(dbnet, caplog):
    records = demo_records("synthetic", 2, seed=4)
    ds = add_glyph_masks(demo_dataset("synthetic", 2, seed=4))
    bad = dict(ds[0], image={"bytes": records[0]["image"]["bytes"][:100], "path": None})
    report = Report()
    tf = SyntheticSample(dbnet.build_targets, dbnet.target_region, AugmentConfig(size=64), report=report)
    out = tf.one(bad)
    assert out["shrink_mask"].sum() == 0 and out["threshold_mask"].sum() == 0 and out["glyph_mask"].sum() == 0
    assert report.counts["training images skipped"] == 1 and records[0]["key"] in caplog.text


# -- mixing on tensors ---------------------------------------------------------------------------------------

def test_boxes_and_text_balanced_selection():
    g = torch.Generator().manual_seed(0)
    boxes = sample_boxes(5, 8, 40, 60, 0.1, 0.5, g)
    x0, y0, x1, y1 = boxes.unbind(-1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 60).all() and (y1 <= 40).all()
    area = ((x1 - x0) * (y1 - y0)).float() / (40 * 60)
    assert (area > 0.08).all() and (area < 0.53).all()
    maps = torch.rand(5, 40, 60)
    brute = torch.tensor([[float(maps[n, b[1]:b[3], b[0]:b[2]].sum()) for b in boxes[n]] for n in range(5)])
    assert torch.allclose(box_sums(maps, boxes), brute, rtol=1e-5)
    two_levels = TargetSpec(maps=(TargetMap("t1", MapKind.TEXT), TargetMap("w1", MapKind.WEIGHT),
                                  TargetMap("t4", MapKind.TEXT, 4), TargetMap("w4", MapKind.WEIGHT, 4)),
                            text=("t1", "t4"), confidence_map=("w1", "w4"), confidence="test")
    targets = {"t1": torch.zeros(1, 40, 60), "t4": torch.zeros(1, 10, 15)}
    targets["t1"][0, 30:40, 50:60] = 1  # 100 input pixels of text in the bottom-right corner (stride 1)
    targets["t4"][0, 0:2, 0:2] = 1  # 4 map pixels = 64 input pixels in the top-left corner (stride 4)
    cands = torch.tensor([[[0, 0, 30, 20], [40, 25, 60, 40], [10, 10, 50, 30]]])
    area = partner_text_area(targets, torch.tensor([0]), cands, two_levels)
    assert area.tolist() == [[64.0, 100.0, 0.0]]  # every level counted, in input pixels
    assert select_boxes(area, cands, "text_balanced", g).tolist() == [[40, 25, 60, 40]]
    targets["t4"][0, 0:3, 0:3] = 1  # 9 map pixels = 144 input pixels: now the coarse level's text wins
    area = partner_text_area(targets, torch.tensor([0]), cands, two_levels)
    assert select_boxes(area, cands, "text_balanced", g).tolist() == [[0, 0, 30, 20]]
    picks = {tuple(select_boxes(area, cands, "random", g)[0].tolist()) for _ in range(30)}
    assert len(picks) > 1
    assert box_masks(torch.tensor([[1, 2, 3, 5]]), 6, 4)[0].nonzero().tolist() == [[y, x] for y in (2, 3, 4)
                                                                                   for x in (1, 2)]


SPEC = TargetSpec(maps=(TargetMap("a", MapKind.TEXT), TargetMap("w", MapKind.WEIGHT)), text="a",
                  confidence_map="w", confidence="test")


def test_intra_domain_mix_formula():
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    targets = {"a": torch.rand(2, 4, 5), "w": torch.ones(2, 4, 5)}
    perm = torch.tensor([1, 0])
    boxes = torch.tensor([[1, 1, 3, 3], [0, 0, 5, 2]])
    mask = box_masks(boxes, 4, 5)
    mixed, mixed_t = intra_domain_mix(images, targets, perm, boxes, SPEC)
    for i in range(2):
        inside = mask[i].bool()
        assert torch.equal(mixed[i][:, inside], images[perm[i]][:, inside])
        assert torch.equal(mixed[i][:, ~inside], images[i][:, ~inside])
        assert torch.equal(mixed_t["a"][i][inside], targets["a"][perm[i]][inside])
        assert torch.equal(mixed_t["a"][i][~inside], targets["a"][i][~inside])


def test_inter_domain_mix_label_modes():
    real = torch.zeros(1, 3, 4, 4)
    syn = torch.full((1, 3, 4, 4), 9.0)
    glyph = torch.zeros(1, 4, 4)
    glyph[0, 1, 1] = glyph[0, 2, 2] = 1
    region = torch.zeros(1, 4, 4)
    region[0, 0:3, 0:3] = 1
    pseudo = {"text": torch.zeros(1, 4, 4), "weight": torch.ones(1, 4, 4)}
    syn_t = {"text": region.clone(), "weight": torch.ones(1, 4, 4)}
    spec = TargetSpec(maps=(TargetMap("text", MapKind.TEXT), TargetMap("weight", MapKind.WEIGHT)), text="text",
                      confidence_map="weight", confidence="test")
    for mode in ("region", "stroke", "ignore"):
        image, t = inter_domain_mix(real, pseudo, syn, syn_t, glyph, region, mode, spec)
        assert torch.equal(image[0, 0] > 0, glyph[0] > 0) and image.max() == 9  # strokes only, their colours
        expected_text = region if mode == "region" else glyph
        assert torch.equal(t["text"], expected_text)
        expected_weight = torch.ones(1, 4, 4)
        if mode == "ignore":
            expected_weight[(region > 0) & (glyph == 0)] = 0
        assert torch.equal(t["weight"], expected_weight), mode


def test_full_glyphmix_is_inter_after_intra_and_on_the_batch_device():
    g = torch.Generator().manual_seed(3)
    n, h, w = 4, 32, 32
    real = torch.rand(n, 3, h, w)
    pseudo = {"shrink_map": (torch.rand(n, h, w) > 0.7).float(), "shrink_mask": torch.ones(n, h, w)}
    syn = torch.rand(n, 3, h, w)
    syn_t = {"shrink_map": torch.zeros(n, h, w), "shrink_mask": torch.ones(n, h, w)}
    glyph = (torch.rand(n, h, w) > 0.9).float()
    region = torch.clamp(glyph * 2, max=1)
    cfg = GlyphMixConfig()
    spec = TargetSpec(maps=(TargetMap("shrink_map", MapKind.TEXT), TargetMap("shrink_mask", MapKind.WEIGHT)),
                      text="shrink_map", confidence_map="shrink_mask", confidence="test")
    result = glyphmix(real, pseudo, syn, syn_t, glyph, region, cfg, spec, g)
    assert (result.permutation != torch.arange(n)).all() and sorted(result.permutation.tolist()) == list(range(n))
    a_img, a_t = intra_domain_mix(real, pseudo, result.permutation, result.boxes, spec)
    b_img, b_t = inter_domain_mix(a_img, a_t, syn, syn_t, glyph, region, "region", spec)
    assert torch.equal(result.images, b_img) and all(torch.equal(result.targets[k], b_t[k]) for k in b_t)
    only_glyphs = glyphmix(real, pseudo, syn, syn_t, glyph, region, GlyphMixConfig(intra_domain=False), spec, g)
    assert only_glyphs.boxes is None and torch.equal(only_glyphs.images, inter_domain_mix(
        real, pseudo, syn, syn_t, glyph, region, "region", spec)[0])
    with pytest.raises(ValueError, match="label_mask"):
        GlyphMixConfig(label_mask="strokes")


def test_dbnet_pseudo_targets(dbnet):
    from freereal_hf.models.dbnet.modeling_dbnet import DBNetOutput

    prob = torch.full((1, 32, 32), 0.1)
    prob[0, 10:14, 10:20] = 0.95  # confident text
    prob[0, 0, 0] = 0.5  # unsure
    thr = torch.full((1, 32, 32), 0.4)
    t = dbnet.pseudo_targets(DBNetOutput(prob=prob, thr=thr))
    assert set(t) == set(KEYS)
    assert torch.equal(t["shrink_map"], (prob >= 0.5).float())
    assert t["shrink_mask"][0, 0, 0] == 0 and t["shrink_mask"].sum() == 32 * 32 - 1
    assert torch.equal(t["threshold_map"], thr)
    band = dbnet.config.pseudo_band
    assert t["threshold_mask"][0, 10 - band, 15] == 1 and t["threshold_mask"][0, 10 - band - 1, 15] == 0
    region = dbnet.target_region(dbnet.build_targets([np.array([[4, 4], [28, 4], [28, 20], [4, 20]])], [False],
                                                     (32, 32)))
    assert region[12, 16] and region[3, 16] and not region[30, 30]


def test_preview_cli_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert preview_main(["--num-images", "3", "--crop-size", "128", "--output", str(out)]) == 0
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[0] > 4 * 128 and grid.shape[1] > 3 * 128
    assert "own labels" in capsys.readouterr().out
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_info:  # the grid of this run is not replaced silently
        preview_main(["--num-images", "3", "--crop-size", "128", "--output", str(out)])
    assert exit_info.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert preview_main(["--num-images", "2", "--crop-size", "128", "--output", str(out), "--overwrite"]) == 0
    assert cv2.imread(str(out)).shape != grid.shape and not list(tmp_path.glob(".*partial*"))
    with pytest.raises(SystemExit) as exit_info:
        preview_main(["--output", str(tmp_path / "grid.xyz")])
    assert exit_info.value.code == 2 and "no such image format" in capsys.readouterr().err


def test_a_corrupt_real_image_gets_zero_pseudo_weights(dbnet, caplog):
    from freereal_hf.glyphmix import GlyphMixConfig
    from freereal_hf.training.pretrain import mix_batch

    records = demo_records("real-like", 2, seed=6)
    records[1]["image"] = {"bytes": records[1]["image"]["bytes"][:64], "path": None}
    report = Report()
    views = RealViews(AugmentConfig(size=64), report=report)
    real = normalize_batch({k: (torch.stack(v) if torch.is_tensor(v[0]) else v)
                            for k, v in views({k: [r[k] for r in records] for k in records[0]}).items()})
    assert real["valid"].tolist() == [1.0, 0.0] and report.counts["training images skipped"] == 1
    assert records[1]["key"] in caplog.text
    # with the labels' targets (previews of labeled real data), the stand-in has the same maps, all zero
    labeled = RealViews(AugmentConfig(size=64), build_targets=dbnet.build_targets)(
        {k: [r[k] for r in records] for k in records[0]})
    for k in dbnet.target_spec.names:
        assert torch.stack(labeled[k]).dtype == labeled[k][0].dtype and labeled[k][1].sum() == 0, k
    syn = add_glyph_masks(demo_dataset("synthetic", 2, seed=6))
    syn = training_view(syn, SyntheticSample(dbnet.build_targets, dbnet.target_region, AugmentConfig(size=64)))[:2]
    syn = normalize_batch({k: (torch.stack(v) if torch.is_tensor(v[0]) else v) for k, v in syn.items()})
    _, pseudo = mix_batch(dbnet, real, syn, GlyphMixConfig(), torch.Generator().manual_seed(0))
    for k in dbnet.weight_targets:
        assert pseudo[k][1].sum() == 0
    assert pseudo["shrink_mask"][0].sum() > 0


def test_max_pseudo_text_silences_a_teacher_that_calls_everything_text(dbnet):
    """``max_text``: a real image whose pseudo-targets are more text than the bound gets weight 0 everywhere (the
    all-text fixed point costs the loss nothing); within the bound nothing changes."""
    import copy

    from freereal_hf.glyphmix import GlyphMixConfig
    from freereal_hf.training.pretrain import mix_batch, pseudo_text_share

    records = demo_records("real-like", 2, seed=6)
    views = RealViews(AugmentConfig(size=64))
    real = normalize_batch({k: (torch.stack(v) if torch.is_tensor(v[0]) else v)
                            for k, v in views({k: [r[k] for r in records] for k in records[0]}).items()})
    syn = add_glyph_masks(demo_dataset("synthetic", 2, seed=6))
    syn = training_view(syn, SyntheticSample(dbnet.build_targets, dbnet.target_region, AugmentConfig(size=64)))[:2]
    syn = normalize_batch({k: (torch.stack(v) if torch.is_tensor(v[0]) else v) for k, v in syn.items()})
    shouting = copy.deepcopy(dbnet)
    with torch.no_grad():
        shouting.det_head.binarize[-1].bias.fill_(20.0)  # every pixel's text probability ~1
    for teacher, everything in ((shouting, True), (dbnet, False)):
        _, free = mix_batch(teacher, real, syn, GlyphMixConfig(), torch.Generator().manual_seed(0))
        _, bounded = mix_batch(teacher, real, syn, GlyphMixConfig(), torch.Generator().manual_seed(0), max_text=0.9)
        shares = pseudo_text_share(free, teacher.target_spec)
        assert shares.shape == (2,) and bool(((shares > 0.9) == everything).all()), shares
        for k in teacher.weight_targets:
            assert free[k].sum() > 0
            assert torch.equal(bounded[k], torch.zeros_like(free[k]) if everything else free[k])
        for k in teacher.target_spec.text:
            assert torch.equal(bounded[k], free[k])  # the labels stay; only their weight goes
