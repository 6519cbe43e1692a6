"""The output formats on a hand-made result: exact stdout text and the files written."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from alti2v.tag.captions import CaptionSettings
from alti2v.tag.inputs import InputImage
from alti2v.tag.outputs import FORMATS, OutputContext, Tagged
from alti2v.tag.select import Tag, Vocabulary, ranked

VOCABULARY = Vocabulary(["long_hair", "rating:general", "solo"], ["general", "rating", "general"])
PROVENANCE = {"model": "m1", "vocab_hash": "abc", "threshold_rule": {}, "settings": "s"}


def result_for(image_path) -> Tagged:
    tags = [
        Tag("trigger", 1.0, "always"),
        Tag("solo", 0.9, "general"),
        Tag("long hair", 0.25, "general"),
    ]
    return Tagged(
        InputImage(image_path, image_path.parent), tags, ("rating:general", 0.75),
        np.array([0.25, 0.75, 0.9], dtype=np.float32),
    )  # fmt: skip


def context(tmp_path, **caption_settings) -> OutputContext:
    settings = CaptionSettings(**caption_settings)
    return OutputContext("m1", VOCABULARY, PROVENANCE, settings, with_probs=True)


def test_text_json_csv(tmp_path):
    result = result_for(tmp_path / "a.png")
    text = FORMATS["text"](context(tmp_path)).write(result)
    assert text.splitlines()[1] == f"{tmp_path / 'a.png'} tag=solo prob=0.900000"
    record = json.loads(FORMATS["json"](context(tmp_path)).write(result))
    assert record["model"] == "m1"
    assert record["rating"] == {"tag": "rating:general", "prob": 0.75}
    assert record["tags"][2] == {"tag": "long hair", "prob": 0.25, "category": "general"}
    table = FORMATS["csv"](context(tmp_path))
    assert table.header() == "image,tag,prob,category\n"
    assert table.write(result).splitlines()[2] == f"{tmp_path / 'a.png'},long hair,0.250000,general"


def test_caption_with_probs_and_a_sidecar(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"png bytes")
    output = FORMATS["caption"](context(tmp_path, separator=" | ", ext=".caption"))
    assert output.write(result_for(image)) == f"written {tmp_path / 'a.caption'}\n"
    assert (tmp_path / "a.caption").read_text() == "trigger | (solo:0.90) | (long hair:0.25)\n"
    sidecar = FORMATS["sidecar"](context(tmp_path, output_dir=tmp_path / "out"))
    assert sidecar.write(result_for(image)) == f"written {tmp_path / 'out' / 'a.png.json'}\n"
    record = json.loads((tmp_path / "out" / "a.png.json").read_text())
    assert record["provenance"] == PROVENANCE
    assert record["sha256"] == hashlib.sha256(b"png bytes").hexdigest()
    assert record["tags"] == [
        ["solo", 0.9, "general"],
        ["rating:general", 0.75, "rating"],
        ["long_hair", 0.25, "general"],
    ]
    assert record["selected"] == ["trigger", "solo", "long hair"]


def test_ranked_is_most_probable_first_ties_in_vocabulary_order() -> None:
    row = np.array([0.2, 0.9, 0.2, 0.5], dtype=np.float32)
    assert ranked(row).tolist() == [1, 3, 0, 2]
    assert ranked(row, top=2).tolist() == [1, 3]
    assert ranked(row, mask=row < 0.6).tolist() == [3, 0, 2]
