"""--eval with several --model: tags matched by name across vocabularies, the paired comparison's
numbers on hand-made scores (a better model, identical models, rare tags), and end to end a model
from --train beside its WD export, on the eval split and on an --eval-dir; the weights approach 3
starts from; the one-line refusals."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import synthetic
from alti2v.data.build import split_of
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.evaluate.baselines import (
    Approach3Weights,
    BaselineError,
    approach3_weights,
    feature_extractor,
)
from alti2v.evaluate.compare import Contestant, compare
from alti2v.evaluate.judge import Settings, judge
from alti2v.evaluate.names import Columns, take, truth_key
from alti2v.model.saved import LoadedModel
from alti2v.tag.thresholds import load_rule
from tests.test_judge import rare_tags_case

SETTINGS = Settings("f1", 0.5, 200, 0)


# --- tags matched by name -------------------------------------------------------------------


def test_tags_match_in_either_spelling_and_ratings_by_letter_or_name() -> None:
    assert truth_key("Long Hair") == truth_key("long_hair") == "long_hair"
    assert truth_key("rating:g") == truth_key("rating:general") == "rating:general"
    assert truth_key("rating:e") == "rating:explicit"
    assert truth_key("g") == "g"  # only a rating's letter is a rating


def test_columns_keep_the_tags_with_truth_and_find_each_other() -> None:
    wd = ["rating:general", "rating:explicit", "Long Hair", "smile", "unseen"]
    dataset = ["long_hair", "rating:g", "smile", "rating:q"]
    columns = Columns.judged(wd, {truth_key(tag) for tag in dataset})
    assert columns.tags == ["rating:general", "Long Hair", "smile"]
    assert columns.outputs.tolist() == [0, 2, 3]
    assert columns.labels(["smile", "rating:general", "other"]) == [2, 0]
    everything = Columns.judged(dataset, None)
    assert columns.positions_in(everything).tolist() == [1, 0, 2]
    assert everything.positions_in(columns).tolist() == [1, 0, 2, -1]
    taken = take(np.array([10.0, 20.0, 30.0]), np.array([2, -1, 0]))
    assert taken[0] == 30 and np.isnan(taken[1]) and taken[2] == 10


# --- the paired comparison -----------------------------------------------------------------


def scorer_case(seed: int = 0, images: int = 300, tags: int = 12) -> tuple:
    rng = np.random.default_rng(seed)
    actual = rng.random((images, tags)) < 0.3
    names = [f"t{tag}" for tag in range(tags)]
    return rng, actual, names, np.arange(images) % 2 == 0


def contestant(name, scores, actual, names, fit_half, settings=SETTINGS) -> Contestant:
    scores = np.clip(scores, 0, 1).astype(np.float16)
    judgement = judge(scores, actual, fit_half, names, ["general"] * len(names),
                      np.ones(len(names)), settings)  # fmt: skip
    return Contestant(name, scores, actual, Columns.judged(names, None), judgement)


def test_a_clearly_better_model_has_an_interval_above_zero_around_its_estimate() -> None:
    rng, actual, names, fit_half = scorer_case()
    weak = contestant("A", actual * 0.15 + rng.random(actual.shape) * 0.85, actual, names,
                      fit_half)  # fmt: skip
    strong = contestant("B", actual * 0.5 + rng.random(actual.shape) * 0.5, actual, names,
                        fit_half)  # fmt: skip
    pair = compare(weak, strong, fit_half, SETTINGS)
    assert (pair["first"], pair["second"], pair["tags"]) == ("A", "B", 12)
    for key in ("map", "micro_f1"):
        difference = pair[key]
        low, high = difference["difference_ci95"]
        assert 0 < low < difference["difference"] < high
        assert difference["difference"] == pytest.approx(difference["second"] - difference["first"])
        assert difference["verdict"] == "B is better: the 95% interval excludes 0"
    # Turned round: the same difference with the sign changed, its interval below 0, and B
    # (now the first) still the better one.
    reverse = compare(strong, weak, fit_half, SETTINGS)["map"]
    assert reverse["difference"] == pytest.approx(-pair["map"]["difference"])
    assert reverse["difference_ci95"][1] < 0
    assert reverse["verdict"] == "B is better: the 95% interval excludes 0"


def test_on_all_of_both_models_tags_the_pair_repeats_their_own_scores() -> None:
    rng, actual, names, fit_half = scorer_case(1)
    first = contestant("A", actual * 0.3 + rng.random(actual.shape) * 0.7, actual, names,
                       fit_half)  # fmt: skip
    second = contestant("B", actual * 0.35 + rng.random(actual.shape) * 0.65, actual, names,
                        fit_half)  # fmt: skip
    pair = compare(first, second, fit_half, SETTINGS)
    for side, model in (("first", first), ("second", second)):
        assert pair["map"][side] == model.judgement.summary["map"]
        assert pair["micro_f1"][side] == model.judgement.summary["rules"]["f1"]["micro_f1"]


def test_identical_models_differ_by_nothing() -> None:
    rng, actual, names, fit_half = scorer_case(2)
    scores = actual * 0.3 + rng.random(actual.shape) * 0.7
    same = [contestant(name, scores, actual, names, fit_half) for name in ("A", "B")]
    pair = compare(*same, fit_half, SETTINGS)
    for key in ("map", "micro_f1"):
        assert pair[key]["difference"] == 0
        assert pair[key]["difference_ci95"] == [0, 0]
        assert pair[key]["verdict"] == "no difference shown: the 95% interval holds 0"


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_rare_tags_do_not_push_the_difference_interval_off_its_estimate(seed: int) -> None:
    scores, actual, fit_half, names, _ = rare_tags_case(seed)
    rng = np.random.default_rng(seed)
    other = np.clip(scores.astype(np.float32) + rng.normal(0, 0.1, scores.shape), 0, 1)
    settings = Settings("f1", 0.5, 200, seed)
    pair = compare(contestant("A", scores.astype(np.float32), actual, names, fit_half, settings),
                   contestant("B", other, actual, names, fit_half, settings),
                   fit_half, settings)["map"]  # fmt: skip
    low, high = pair["difference_ci95"]
    assert low < pair["difference"] < high
    assert pair["difference"] - low == pytest.approx(high - pair["difference"])


def test_the_pair_is_judged_on_the_tags_both_cover() -> None:
    rng, actual, names, fit_half = scorer_case(3)
    scores = actual * 0.3 + rng.random(actual.shape) * 0.7
    first = contestant("A", scores, actual, names, fit_half)
    half = contestant("B", scores[:, 6:], actual[:, 6:], names[6:], fit_half)
    pair = compare(first, half, fit_half, SETTINGS)
    assert pair["tags"] == 6
    # The same scores on the shared tags: the same mAP, computed on those tags only.
    assert pair["map"]["first"] == pair["map"]["second"] == half.judgement.summary["map"]
    assert pair["map"]["first"] != first.judgement.summary["map"]


# --- approach 3's weights ------------------------------------------------------------------


def fake_model(folder: Path, info: dict) -> LoadedModel:
    return LoadedModel(None, ["a"], info, folder)


def test_approach3_takes_weights_given_then_recorded_then_the_default(tmp_path) -> None:
    trained = fake_model(tmp_path / "m", {"weights": "w.weights.h5", "weights_sha256": "ab"})
    wd = fake_model(tmp_path / "wd", {"layout": "wd", "weights": "ignored"})
    assert approach3_weights("none", [trained]) == Approach3Weights("none")
    recorded = approach3_weights(None, [wd, trained])
    assert (recorded.weights, recorded.sha256) == ("w.weights.h5", "ab")
    assert recorded.recorded_by == str(tmp_path / "m" / "model.json")
    assert approach3_weights(None, [wd]) == Approach3Weights("imagenet")


def test_a_recorded_weights_file_that_changed_is_refused(tmp_path) -> None:
    weights = tmp_path / "vgg.weights.h5"
    weights.write_bytes(b"other bytes")
    chosen = Approach3Weights(str(weights), "0" * 64, "m/model.json")
    with pytest.raises(BaselineError, match="not the file the model started from") as refusal:
        feature_extractor(150, chosen)
    assert str(refusal.value).endswith("(the weights m/model.json records)")


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(trained, alt_i2v, tmp_path_factory) -> Path:
    """The session's model in the WD layout (the session's data dir is only read)."""
    folder = tmp_path_factory.mktemp("wd") / "wd-export"
    alt_i2v("--export", folder, "--model", trained.model_folder, "--quiet",
            "--data-dir", trained.data_dir)  # fmt: skip
    return folder


def copied(trained, exported, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the session's data dir, its model, and a copy of the WD export."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir)
    wd = tmp_path / "wd-export"
    shutil.copytree(exported, wd)
    return data_dir, next((data_dir / "models").iterdir()), wd


def wd_tags(folder: Path) -> list[str]:
    with (folder / "selected_tags.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [f"rating:{row['name']}" if row["category"] == "9" else row["name"] for row in rows]


@pytest.mark.slow
def test_a_model_and_its_wd_export_on_the_eval_split(trained, exported, alt_i2v, tmp_path):
    data_dir, model, wd = copied(trained, exported, tmp_path)
    # The WD folder decodes each post's original file; one gone is skipped for both models.
    eval_posts = [post for post in iter_posts(data_dir / "imgs") if split_of(post.post_id, 0.2)
                  == "eval"]  # fmt: skip
    assert len(eval_posts) == 2
    eval_posts[0].image.unlink()
    missing = tmp_path / "missing.weights.h5"
    result = alt_i2v(
        "--eval", "--model", model, "--model", wd, "--weights", missing, "--bootstrap", 20,
        "--json", "--data-dir", data_dir, expect=1,
    )  # fmt: skip
    comparison = json.loads(result.stdout)
    assert (comparison["images"], comparison["skipped"]) == (1, {"no image": 1})
    assert result.stderr.count(str(data_dir / "imgs" / eval_posts[0].post_id)) == 1
    assert comparison["truth_tags"] == trained.vocab_size
    assert [(row["name"], row["layout"], row["tags_covered"]) for row in comparison["models"]] == [
        (model.name, "keras", trained.vocab_size), (wd.name, "wd", trained.vocab_size),
    ]  # fmt: skip
    skipped = f"--weights {missing}: no such file; give imagenet, none or a path"
    assert comparison["approach3_skipped"] == skipped
    assert list(comparison["baselines"]) == ["frequency_prior"]
    (pair,) = comparison["pairs"]
    assert (pair["first"], pair["second"]) == (model.name, wd.name)
    assert pair["tags"] == trained.vocab_size
    (folder,) = (data_dir / "eval").glob("compare-*")
    assert json.loads((folder / "comparison.json").read_text()) == comparison
    table = (folder / "comparison.md").read_text()
    assert f"| {wd.name} - {model.name} | {trained.vocab_size} |" in table
    for name in (model.name, wd.name):
        summary = json.loads((data_dir / "eval" / name / "summary.json").read_text())
        assert summary["approach3_skipped"] == skipped and "approach3" not in summary
        assert "Approach 3 skipped: " in (data_dir / "eval" / name / "report.html").read_text()
    # The WD folder's thresholds lie beside its model.onnx, keyed by its CSV's vocabulary, and
    # cover every row of it (those without truth keep the constant).
    tags = wd_tags(wd)
    saved = json.loads((wd / "thresholds.json").read_text())
    assert saved["vocab_hash"] == vocabulary_hash(tags)
    assert load_rule(wd, "f1", tags, vocabulary_hash(tags)).shape == (len(tags),)
    # --pred's fitted rules now read that file, not the export's best_threshold column.
    image = next(post.image for post in iter_posts(data_dir / "imgs") if post.image)
    every = [alt_i2v("--pred", image, "--model", wd, "--json", "--top-k", 0, "--tta", "none",
                     "--data-dir", data_dir, *rule).stdout
             for rule in (("--threshold-rule", "f1"), ("--threshold", 0))]  # fmt: skip
    kept, scored = ({item["tag"]: item["prob"] for item in json.loads(text)["tags"]}
                    for text in every)  # fmt: skip
    fitted = saved["rules"]["f1"]
    assert set(kept) == {tag for tag, prob in scored.items() if prob >= fitted[tag]}
    assert saved["fitted_on"]["tags_without_truth"] == len(tags) - trained.vocab_size
    assert (model / "thresholds.json").is_file()


@pytest.mark.slow
def test_a_model_and_its_wd_export_on_an_eval_dir(trained, exported, alt_i2v, tmp_path):
    data_dir, model, wd = copied(trained, exported, tmp_path)
    posts = tmp_path / "heldout"
    synthetic.generate(posts, 10, seed=5)
    vocabulary = (data_dir / "vocab.txt").read_text().split()
    (posts / "99.txt").write_text(vocabulary[0])
    (posts / "99.png").write_bytes(b"not an image")
    result = alt_i2v(
        "--eval", "--model", model, "--model", wd, "--eval-dir", posts, "--weights", "none",
        "--bootstrap", 30, "--threshold-rule", "f1", "--data-dir", data_dir, expect=1,
    )  # fmt: skip
    named = [line for line in result.stderr.splitlines() if str(posts / "99.png") in line]
    assert len(named) == 1  # once, for both models
    lines = result.stdout.splitlines()
    (folder,) = (data_dir / "eval").glob("compare-*")
    comparison = json.loads((folder / "comparison.json").read_text())
    truth = comparison["truth_tags"]
    assert truth > trained.vocab_size  # the posts' own tags, not only the vocabulary's
    assert lines[0] == (
        f"eval: 10 images, 2 models against {truth} true tags; thresholds fitted on "
        f"{comparison['fitting_images']}, scored on {comparison['report_images']}"
    )
    assert lines[1].split() == ["scorer", "layout", "tags", "covered", "mAP", "[95%]",
                                "micro-F1", "f1", "[95%]", "ECE"]  # fmt: skip
    assert [line.split()[0] for line in lines[2:6]] == [
        model.name,
        wd.name,
        "frequency",
        "approach",
    ]
    assert lines[6].startswith(f"  {wd.name} - {model.name}, on the ")
    assert lines[7].startswith("    mAP: ") and lines[8].startswith("    micro-F1 f1: ")
    assert lines[-2:] == [
        "  1 posts could not be read (named above), for every model",
        f"  comparison -> {folder / 'comparison.md'}",
    ]
    # --eval-dir's truth is each .txt: every tag of the WD folder is judged.
    assert [row["tags_judged"] for row in comparison["models"]] == [
        trained.vocab_size, len(wd_tags(wd)),
    ]  # fmt: skip


@pytest.mark.slow
def test_train_records_its_weights_file_and_eval_says_when_it_is_gone(trained, alt_i2v, tmp_path):
    import keras

    weights = tmp_path / "vgg16.weights.h5"
    keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(150, 150, 3)
    ).save_weights(weights)
    data_dir = trained.copy_dataset(tmp_path / "data")
    alt_i2v("--train", "--epochs", 1, "--batch-size", 4, "--weights", weights, "--quiet",
            "--data-dir", data_dir)  # fmt: skip
    (model,) = (data_dir / "models").iterdir()
    info = json.loads((model / "model.json").read_text())
    assert info["weights"] == str(weights)
    assert info["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.unlink()
    result = alt_i2v("--eval", "--bootstrap", 5, "--data-dir", data_dir)
    assert (
        f"  approach 3 skipped: --weights {weights}: no such file; give imagenet, none or a path "
        f"(the weights {model / 'model.json'} records)"
    ) in result.stdout.splitlines()
    assert [line.split()[0] for line in result.stdout.splitlines()[1:3]] == ["model", "prior"]


# --- bad input: one line each --------------------------------------------------------------


def test_only_eval_takes_a_second_model(alt_i2v, tmp_path) -> None:
    result = alt_i2v("--pred", "a.png", "--model", "x", "--model", "y", "--data-dir", tmp_path,
                     expect=2)  # fmt: skip
    assert result.stderr.splitlines()[-1] == (
        "alt_i2v.py: error: --model given 2 times: --pred takes one (only --eval compares several)"
    )


@pytest.mark.slow
def test_the_same_folder_twice_is_refused(trained, alt_i2v) -> None:
    model = trained.model_folder
    result = alt_i2v("--eval", "--model", model, "--model", model / "model.keras",
                     "--data-dir", trained.data_dir, expect=3)  # fmt: skip
    assert result.stderr.splitlines()[-1] == (
        f"alt_i2v.py: error: --model {model} and --model {model} are the same folder; "
        "give each once"
    )


@pytest.mark.slow
def test_a_wd_folder_none_of_whose_tags_has_truth_is_one_line(trained, exported, alt_i2v,
                                                                tmp_path) -> None:  # fmt: skip
    data_dir, model, wd = copied(trained, exported, tmp_path)
    tags_file = wd / "selected_tags.csv"
    lines = tags_file.read_text().splitlines()
    renamed = [",".join([tag_id, f"unseen{tag_id}", *rest])
               for tag_id, _, *rest in csv.reader(lines[1:])]  # fmt: skip
    tags_file.write_text("\n".join([lines[0], *renamed]) + "\n")
    result = alt_i2v("--eval", "--model", model, "--model", wd, "--weights", "none",
                     "--data-dir", data_dir, expect=3)  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"alt_i2v.py: error: {wd}: none of its {len(lines) - 1} tags is in the dataset's "
        f"vocabulary ({trained.vocab_size} tags), so there is no truth to judge it on; give "
        "--eval-dir DIR with posts tagged in its vocabulary"
    )
    assert not (data_dir / "eval").exists()
