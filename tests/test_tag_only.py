"""The tag-only install (requirements-tag.txt). alt_i2v.py runs in a process that sees only what
that file installs: every other package of this venv, and Keras, TensorFlow, JAX and torch, are
refused at import (tests/tag_only/sitecustomize.py), and each import it tried is logged. There,
--help, --help-all and --pred with a WD folder exported from a tiny model, with every --pred
option (JSON, fitted thresholds, captions, sidecars, --skip-unchanged, --sheet, tag lists), give
what the full install gives and try no refused import; a model from --train, and a mode that
needs more, end in one line saying what to install."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

import synthetic
from tests.conftest import CLI_TIMEOUT, PROJECT_ROOT, cli_command, cli_environment

TAG_REQUIREMENTS = PROJECT_ROOT / "requirements-tag.txt"
REFUSING_SITE = PROJECT_ROOT / "tests" / "tag_only"
# Refused whether installed here or not: what the tag-only install must never import.
FRAMEWORKS = frozenset({"keras", "tensorflow", "jax", "torch"})
TAGS = ["1girl", "solo", "smile", "long_hair", "rating:general", "rating:sensitive"]
# Fitted rules written as --eval writes thresholds.json, then exported into the WD layout: f1 as
# best_threshold, category as thresholds.csv. The untrained model's probabilities are near 0.5:
# KEEP keeps a tag on every image (not the WD ratings it lacks, always 0), DROP on none.
KEEP, DROP = 0.01, 1.0
F1 = {"1girl": KEEP, "solo": DROP, "smile": KEEP, "long_hair": DROP,
      "rating:general": KEEP, "rating:sensitive": DROP}  # fmt: skip
CATEGORY = {"1girl": DROP, "solo": DROP, "smile": DROP, "long_hair": DROP,
            "rating:general": KEEP, "rating:sensitive": KEEP}  # fmt: skip
IMAGES = 5


def requirement_lines(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def tag_only_distributions() -> set[str]:
    """requirements-tag.txt's distributions and, recursively, what they require here."""
    wanted = [r for r in requirement_lines(TAG_REQUIREMENTS) if not r.marker or r.marker.evaluate()]
    found: set[str] = set()
    while wanted:
        name = canonicalize_name(wanted.pop().name)
        if name in found:
            continue
        found.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement)
    return found


def refused_modules() -> frozenset[str]:
    """The top-level modules of this venv that a tag-only install lacks, and the frameworks."""
    allowed = tag_only_distributions()
    installed = importlib.metadata.packages_distributions()
    return FRAMEWORKS | {
        module
        for module, distributions in installed.items()
        if not any(canonicalize_name(name) in allowed for name in distributions)
    }


@dataclass
class TagOnly:
    """alt_i2v.py run as on a tag-only install, and the refused imports it tried."""

    environment: dict[str, str]
    log: Path

    def run(self, *arguments: object, expect: int = 0) -> subprocess.CompletedProcess:
        self.log.unlink(missing_ok=True)
        result = subprocess.run(
            cli_command(*arguments), capture_output=True, text=True, timeout=CLI_TIMEOUT,
            env=self.environment, cwd=PROJECT_ROOT,
        )  # fmt: skip
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stderr}"
        return result

    def tried(self) -> list[str]:
        """The refused modules the last run tried to import."""
        return self.log.read_text().split() if self.log.is_file() else []


@pytest.fixture(scope="module")
def tag_only(tmp_path_factory) -> TagOnly:
    log = tmp_path_factory.mktemp("refused") / "refused.log"
    environment = cli_environment() | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REFUSING_SITE),
                                                    os.environ.get("PYTHONPATH")])),
        "ALTI2V_REFUSE": ",".join(sorted(refused_modules())),
        "ALTI2V_REFUSED_LOG": str(log),
    }  # fmt: skip
    return TagOnly(environment, log)


@pytest.fixture(scope="module")
def work(alt_i2v, tmp_path_factory) -> Path:
    """A folder with `models/<time>/` (a tiny model from --train's export, random weights, with
    fitted thresholds), its WD export in `wd/`, and tagged drawings in `imgs/`."""
    from alti2v.data.layout import ModelFiles
    from alti2v.data.vocabulary import vocabulary_hash
    from alti2v.model.network import build_model
    from alti2v.model.saved import export_model

    root = tmp_path_factory.mktemp("tag-only")
    synthetic.generate(root / "imgs", IMAGES, seed=3)
    info = {"image_size": 150, "resize": "area", "preprocess": "vgg",
            "categories": {tag: "general" for tag in TAGS if ":" not in tag}}  # fmt: skip
    folder = export_model(root / "models", build_model(len(TAGS), weights=None), TAGS, info)
    ModelFiles(folder).thresholds.write_text(
        json.dumps({"vocab_hash": vocabulary_hash(TAGS), "rules": {"f1": F1, "category": CATEGORY}})
    )
    alt_i2v("--export", root / "wd", "--model", folder, "--data-dir", root)
    return root


def pred(work: Path, *flags: object) -> tuple:
    return ("--pred", work / "imgs", "--model", work / "wd", "--tta", "none", "--data-dir", work,
            *flags)  # fmt: skip


def test_help_and_help_all_read_as_on_the_full_install(alt_i2v, tag_only):
    for flag in ("--help", "--help-all"):
        assert tag_only.run(flag).stdout == alt_i2v(flag).stdout
        assert tag_only.tried() == []


def test_pred_with_a_wd_folder_and_its_fitted_thresholds_imports_nothing_refused(
    alt_i2v, tag_only, work
):
    for rule, fitted in (("f1", F1), ("category", CATEGORY)):
        flags = pred(work, "--json", "--top-k", 0, "--threshold-rule", rule, "--quiet")
        result = tag_only.run(*flags)
        assert tag_only.tried() == []
        assert result.stdout == alt_i2v(*flags).stdout
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(records) == IMAGES
        kept = {tag for tag, threshold in fitted.items() if threshold == KEEP}
        for record in records:  # the rule's thresholds, as the export carried them; of the
            # ratings, only the most probable one, where its threshold keeps it
            ratings = {tag for tag in kept if tag.startswith("rating:")}
            expected = (kept - ratings) | ({record["rating"]["tag"]} & ratings)
            assert {item["tag"] for item in record["tags"]} == expected
    result = tag_only.run(*pred(work, "--threshold-rule", "f2"), expect=3)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"alt_i2v.py: error: {work / 'wd'}: a WD folder holds fitted ")
    assert "it has category and f1 only" in line and "Traceback" not in result.stderr


def test_vec_with_a_wd_folder_imports_nothing_refused(alt_i2v, tag_only, work):
    images = sorted((work / "imgs").glob("*.png"))
    flags = ("--vec", *images, "--model", work / "wd", "--json", "--quiet", "--data-dir", work)
    result = tag_only.run(*flags)
    assert tag_only.tried() == []
    assert result.stdout == alt_i2v(*flags).stdout
    vectors = [json.loads(line)["vector"] for line in result.stdout.splitlines()]
    assert len(vectors) == len(images) and all(len(vector) == len(TAGS) for vector in vectors)


def test_captions_sidecars_and_the_sheet_are_written_as_on_the_full_install(
    alt_i2v, tag_only, work
):
    out = work / "out"
    runs = [
        ("--format", "caption", "--top-k", 2, "--spaces", "--exclude", "smile",
         "--always-first", "trigger", "--rating", "first", "--sheet", out / "sheet.png"),
        ("--format", "sidecar", "--skip-unchanged"),
        ("--format", "sidecar", "--skip-unchanged"),
        ("--format", "caption", "--caption-mode", "append", "--include-only", "long_hair",
         "--spaces"),
    ]  # fmt: skip
    written = {}
    for name, cli in (("full", alt_i2v), ("tag-only", tag_only.run)):
        shutil.rmtree(out, ignore_errors=True)
        outputs = []
        for flags in runs:
            outputs.append(cli(*pred(work, "--output-dir", out, *flags)).stdout)
            assert cli is alt_i2v or tag_only.tried() == []
        files = {path.relative_to(out): path.read_bytes()
                 for path in sorted(out.rglob("*")) if path.is_file()}  # fmt: skip
        written[name] = (outputs, files)
    assert written["tag-only"] == written["full"]
    outputs, files = written["tag-only"]
    with Image.open(out / "sheet.png") as sheet:
        assert sheet.width > 0 and sheet.height > 0
    captions = [data.decode() for path, data in files.items() if path.suffix == ".txt"]
    assert len(captions) == IMAGES
    for caption in captions:
        tags = caption.rstrip("\n").split(", ")
        assert tags[0] == "trigger" and tags[1].startswith("rating:")  # first, then the rating
        assert "smile" not in tags and not any("_" in tag for tag in tags[2:])
        assert tags.count("long hair") == 1  # appended where the top 2 lacked it
        assert len(tags) == 4 + (tags.index("long hair") == 4)
    assert sum(path.suffix == ".json" for path in files) == IMAGES
    assert outputs[2].count("unchanged ") == IMAGES  # the third run found every sidecar current


def test_a_model_from_train_and_the_modes_that_need_keras_end_in_one_line(tag_only, work):
    model = next((work / "models").iterdir())
    image = next((work / "imgs").glob("*.png"))
    result = tag_only.run("--pred", image, "--model", model, "--data-dir", work, expect=3)
    assert result.stderr.strip().splitlines() == [
        f"alt_i2v.py: error: {model}: a model from --train runs in Keras, and keras is not "
        "installed here; requirements-tag.txt runs WD-layout folders only; install "
        "requirements.txt: pip install -r requirements.txt -c constraints.txt"
    ]
    result = tag_only.run("--train", "--data-dir", work, expect=3)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("alt_i2v.py: error: ") and " is not installed here; " in last
    assert "Traceback" not in result.stderr and tag_only.tried()
