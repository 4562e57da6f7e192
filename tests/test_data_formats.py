"""Readers of native releases, freereal-prepare's Hub-like folder, bad records and streaming shards."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from datasets import load_dataset
from datasets.distributed import split_dataset_by_node

from freereal_hf.cli.prepare import main as prepare_main
from freereal_hf.data import FORMATS, get_format, prepare, streaming_dataset


def _image(path: Path, h: int = 60, w: int = 80, value: int = 200) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    cv2.rectangle(img, (10, 10), (40, 30), (0, 0, 0), -1)
    assert cv2.imwrite(str(path), img)


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)


def _labels(fmt: str, src: Path) -> dict[str, dict]:
    f = get_format(fmt)
    return {e.key: f.labels(e) for e in f.entries(src)}


def test_icdar2015_mlt_and_icdar2013(tmp_path):
    _image(tmp_path / "ch4_training_images/img_1.jpg")
    _write(tmp_path / "ch4_training_localization_transcription_gt/gt_img_1.txt",
           "10,10,40,10,40,30,10,30,Hello, world\n1,2,3,2,3,4,1,4,###\n", "utf-8-sig")
    _image(tmp_path / "ch4_test_images/img_2.jpg")
    _write(tmp_path / "gt/gt_img_2.txt", "5,5,20,5,20,15,5,15,Test\n")
    got = _labels("icdar2015", tmp_path)
    assert set(got) == {"ch4_training_images/img_1.jpg", "ch4_test_images/img_2.jpg"}
    one = got["ch4_training_images/img_1.jpg"]
    assert one["polygons"][0] == [[10, 10], [40, 10], [40, 30], [10, 30]]
    assert one["texts"] == ["Hello, world", "###"] and one["ignore"] == [False, True]
    splits = {e.key: e.split for e in get_format("icdar2015").entries(tmp_path)}
    assert splits == {"ch4_training_images/img_1.jpg": "train", "ch4_test_images/img_2.jpg": "test"}

    mlt = tmp_path / "mlt"
    _image(mlt / "img_7.png")
    _write(mlt / "gt_img_7.txt", "1,1,30,1,30,20,1,20,Latin,ab,c\n2,2,9,2,9,9,2,9,Arabic,###\n")
    lab = _labels("mlt17", mlt)["img_7.png"]
    assert lab["texts"] == ["ab,c", "###"] and lab["ignore"] == [False, True]
    mlt19 = tmp_path / "mlt19"
    _image(mlt19 / "tr_img_00001.jpg")
    _write(mlt19 / "tr_img_00001.txt", "1,1,30,1,30,20,1,20,Korean,한국\n")
    assert _labels("mlt19", mlt19)["tr_img_00001.jpg"]["texts"] == ["한국"]

    ic13 = tmp_path / "ic13"
    _image(ic13 / "train/100.jpg")
    _write(ic13 / "train/gt_100.txt", '38 43 920 215 "Tiredness"\n')
    _image(ic13 / "test/img_1.jpg")
    _write(ic13 / "test/gt_img_1.txt", '38, 43, 920, 215, "kills"\n')
    got = _labels("icdar2013", ic13)
    assert got["train/100.jpg"]["polygons"] == [[[38, 43], [920, 43], [920, 215], [38, 215]]]
    assert got["train/100.jpg"]["texts"] == ["Tiredness"] and got["test/img_1.jpg"]["texts"] == ["kills"]


def test_totaltext_txt_and_mat(tmp_path):
    _image(tmp_path / "Images/Train/img11.jpg")
    _write(tmp_path / "Txts/poly_gt_img11.txt",
           "x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']\n"
           "x: [[734 820 \n 835 750]], y: [[264 264 299 298]], ornt: [u'#'], transcriptions: [u'#']\n")
    lab = _labels("totaltext", tmp_path)["Images/Train/img11.jpg"]
    assert lab["polygons"][0] == [[115, 322], [503, 346], [494, 426], [115, 404]]
    assert lab["polygons"][1] == [[734, 264], [820, 264], [835, 299], [750, 298]]
    assert lab["texts"] == ["nauGHTY", "#"] and lab["ignore"] == [False, True]

    mat = tmp_path / "mat"
    _image(mat / "img12.jpg")
    polygt = np.empty((1, 6), dtype=object)
    polygt[0] = ["x:", np.array([[1.0, 20, 20, 1]]), "y:", np.array([[2.0, 2, 12, 12]]), "c", np.array(["WORD"])]
    scipy.io.savemat(mat / "poly_gt_img12.mat", {"polygt": polygt})
    lab = _labels("totaltext", mat)["img12.jpg"]
    assert lab["polygons"] == [[[1, 2], [20, 2], [20, 12], [1, 12]]] and lab["texts"] == ["WORD"]


def test_ctw1500_msra_art_lsvt(tmp_path):
    pts = [float(v) for v in range(28)]
    _image(tmp_path / "train/0001.jpg")
    _write(tmp_path / "train_labels/0001.xml",
           '<Annotations><image file="0001.jpg"><box height="1" left="0" top="0" width="1"><label>curve</label>'
           f'<segs>{",".join(str(int(v)) for v in pts)}</segs><pts x="0" y="0" /></box></image></Annotations>')
    _image(tmp_path / "test/1001.jpg")
    _write(tmp_path / "test_labels/1001.txt", ",".join(str(int(v)) for v in pts) + ",#######\n")
    got = _labels("ctw1500", tmp_path)
    assert got["train/0001.jpg"]["polygons"][0] == np.reshape(pts, (14, 2)).tolist()
    assert got["train/0001.jpg"]["texts"] == ["curve"] and got["test/1001.jpg"]["ignore"] == [True]

    td = tmp_path / "td500"
    _image(td / "IMG_0059.JPG")
    _write(td / "IMG_0059.gt", f"0 1 10 20 40 10 {math.pi / 2}\n1 0 5 5 20 10 0\n")
    lab = _labels("msra_td500", td)["IMG_0059.JPG"]
    assert lab["ignore"] == [True, False]
    np.testing.assert_allclose(lab["polygons"][0], [[35, 5], [35, 45], [25, 45], [25, 5]], atol=1e-9)
    np.testing.assert_allclose(lab["polygons"][1], [[5, 5], [25, 5], [25, 15], [5, 15]], atol=1e-9)

    for fmt, name in (("art", "train_labels.json"), ("lsvt", "train_full_labels.json")):
        root = tmp_path / fmt
        _image(root / "train_images/gt_0.jpg")
        _image(root / "train_images/gt_1.jpg")
        _write(root / name, json.dumps({"gt_0": [{"points": [[1, 1], [9, 1], [9, 9]], "transcription": "文字",
                                                  "illegibility": False, "language": "Chinese"},
                                                 {"points": [[1, 1], [5, 1], [5, 5], [1, 5]], "transcription": "###",
                                                  "illegibility": True}], "gt_1": []}, ensure_ascii=False))
        got = _labels(fmt, root)
        assert got["train_images/gt_0.jpg"]["texts"] == ["文字", "###"]
        assert got["train_images/gt_0.jpg"]["ignore"] == [False, True] and got["train_images/gt_1.jpg"]["polygons"] == []


def _synthtext(root: Path, rows: list[tuple]) -> None:
    names = np.empty((1, len(rows)), dtype=object)
    word_bb = np.empty((1, len(rows)), dtype=object)
    char_bb = np.empty((1, len(rows)), dtype=object)
    txt = np.empty((1, len(rows)), dtype=object)
    for i, (name, words, chars, text) in enumerate(rows):
        _image(root / name, 64, 96)
        names[0, i] = np.array([name])
        word_bb[0, i], char_bb[0, i] = words, chars
        txt[0, i] = np.array(text, dtype=object)
    scipy.io.savemat(root / "gt.mat", {"imnames": names, "wordBB": word_bb, "charBB": char_bb, "txt": txt})


def _quads(boxes: list[tuple]) -> np.ndarray:  # boxes (x0, y0, x1, y1) -> 2 x 4 x N
    q = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, y0, x1, y1 in boxes], np.float64)
    return q.transpose(2, 1, 0)


def test_synthtext_words_chars_and_mismatch(tmp_path, caplog):
    chars = _quads([(1, 1, 5, 9), (5, 1, 9, 9), (20, 1, 24, 9), (24, 1, 28, 9), (28, 1, 32, 9)])
    one_word = _quads([(1, 40, 20, 50)])[:, :, 0]  # 2 x 4: a single word
    _synthtext(tmp_path, [
        ("8/ballet_1.jpg", _quads([(1, 1, 9, 9), (20, 1, 32, 9)]), chars, ["ab   ", "cde"]),
        ("8/ballet_2.jpg", one_word, _quads([(1, 40, 10, 50), (10, 40, 20, 50)]), ["hi"]),
        ("8/ballet_3.jpg", _quads([(1, 1, 9, 9)]), chars, ["ab"]),  # 5 char boxes for 2 characters
    ])
    f = get_format("synthtext")
    entries = f.entries(tmp_path)
    first = f.labels(entries[0])
    assert first["texts"] == ["ab", "cde"] and first["char_word"] == [0, 0, 1, 1, 1]
    assert np.asarray(first["char_polygons"]).shape == (5, 4, 2)
    assert first["polygons"][1] == [[20, 1], [32, 1], [32, 9], [20, 9]]
    assert f.labels(entries[1])["polygons"] == [[[1, 40], [20, 40], [20, 50], [1, 50]]]
    with caplog.at_level(logging.WARNING, logger="freereal_hf.data"):
        files, report = prepare("synthtext", tmp_path, tmp_path.parent / f"{tmp_path.name}_out", progress=False)
    assert report.counts["records written"] == 2 and report.counts["records skipped"] == 1
    assert "8/ballet_3.jpg" in caplog.text and "charBB" in caplog.text
    ds = load_dataset(str(tmp_path.parent / f"{tmp_path.name}_out"), split="train")
    assert ds[0]["char_word"] == [0, 0, 1, 1, 1] and ds[1]["texts"] == ["hi"]


def test_prepare_round_trip_bad_records_and_cli(tmp_path, caplog, capsys):
    src = tmp_path / "release"
    for i in range(6):
        _image(src / f"train/img_{i}.jpg", value=100 + i)
    gray = np.full((60, 80), 90, np.uint8)
    cv2.imwrite(str(src / "train/img_6.png"), gray)
    cv2.imwrite(str(src / "train/img_7.png"), np.full((60, 80, 4), 30, np.uint8))
    cv2.imwrite(str(src / "train/img_8.png"), np.full((60, 80, 3), 4000, np.uint16))
    full = (src / "train/img_0.jpg").read_bytes()
    (src / "train/img_9.jpg").write_bytes(full[: len(full) // 2])  # truncated
    (src / "train/img_10.jpg").write_bytes(b"not an image at all")
    gts = {
        0: "10,10,40,10,40,30,10,30,good\n",
        1: "10,10,40,10,40,30,10,30,a\n1,1,2,2,x\n",  # second line has too few fields: malformed file
        2: "10,10,40,30,40,10,10,30,bowtie\n10,10,40,10,40,30,10,30,ok\n",
        3: "60,40,100,40,100,70,60,70,half_out\n200,200,210,200,210,210,200,210,outside\n",
        4: "nan,10,40,10,40,30,10,30,nan\n",
        5: "",
        6: "10,10,40,10,40,30,10,30,gray\n", 7: "10,10,40,10,40,30,10,30,rgba\n", 8: "10,10,40,10,40,30,10,30,deep\n",
        9: "10,10,40,10,40,30,10,30,trunc\n", 10: "10,10,40,10,40,30,10,30,garbage\n",
    }
    for i, text in gts.items():
        _write(src / f"gt/gt_img_{i}.txt", text)
    _image(src / "train/img_11.jpg")  # no annotation file
    out = tmp_path / "hub_repo"
    with caplog.at_level(logging.WARNING, logger="freereal_hf.data"):
        rc = prepare_main(["icdar2015", str(src), "--out", str(out), "--push-to-hub", "me/ic15", "--dry-run"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "would upload" in text and "data/train-00000-of-00001.parquet" in text and "README.md" in text
    for name in ("img_1.jpg", "img_9.jpg", "img_10.jpg", "img_11.jpg"):
        assert f"train/{name}" in caplog.text
    assert "records skipped: 4" in text and "records written: 8" in text
    assert "polygons repaired, self-intersecting: 1" in text and "polygons dropped, outside the image: 1" in text
    assert "polygons dropped, NaN or infinite coordinates: 1" in text and "polygons repaired, clipped to the image: 1" in text
    card = (out / "README.md").read_text()
    assert "data/train-*" in card and "char_polygons" in card and "num_examples: 8" in card
    ds = load_dataset(str(out), split="train")
    by_key = {r["key"]: r for r in ds}
    assert set(by_key) == {f"train/img_{i}.jpg" for i in (0, 2, 3, 4, 5)} | {f"train/img_{i}.png" for i in (6, 7, 8)}
    assert by_key["train/img_0.jpg"]["polygons"] == [[[10, 10], [40, 10], [40, 30], [10, 30]]]
    assert by_key["train/img_0.jpg"]["image"].size == (80, 60)
    assert by_key["train/img_4.jpg"]["polygons"] == [] and by_key["train/img_5.jpg"]["polygons"] == []
    bowtie = np.asarray(by_key["train/img_2.jpg"]["polygons"][0])
    assert len(by_key["train/img_2.jpg"]["polygons"]) == 2 and bowtie[:, 0].max() <= 40
    half = np.asarray(by_key["train/img_3.jpg"]["polygons"][0])
    assert half.max(0).tolist() == [80, 60] and len(by_key["train/img_3.jpg"]["polygons"]) == 1
    for key in ("train/img_6.png", "train/img_7.png", "train/img_8.png"):
        im = by_key[key]["image"]
        assert im.mode == "RGB" and np.asarray(im).dtype == np.uint8
    assert np.asarray(by_key["train/img_8.png"]["image"]).max() < 20  # 4000/65535 of the range, not clipped to 255


def test_streaming_shards_each_image_exactly_once(tmp_path):
    for i in range(7):
        _image(tmp_path / f"img_{i}.jpg", value=10 * i)
    ds = streaming_dataset("imagefolder", tmp_path)
    assert sorted(r["key"] for r in ds) == [f"img_{i}.jpg" for i in range(7)]
    seen = []
    for rank in range(2):
        part = split_dataset_by_node(ds, rank=rank, world_size=2)
        seen += [r["key"] for r in part]
        assert all(r["polygons"] == [] for r in part)
    assert sorted(seen) == [f"img_{i}.jpg" for i in range(7)]


def test_every_format_is_listed():
    assert set(FORMATS) == {"icdar2015", "totaltext", "ctw1500", "msra_td500", "synthtext", "icdar2013", "art",
                            "lsvt", "mlt17", "mlt19", "ustb_sv1k", "imagefolder"}
    with pytest.raises(ValueError, match="unknown format"):
        get_format("coco")
