"""Publishing files and folders (alti2v.data.files) and what checkpoints do with it: everything is
fsynced before the rename that publishes it, a failure leaves the old state, and a failed
cleanup of an old checkpoint is reported."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import keras
import pytest

from alti2v.data import files as atomic
from alti2v.data.files import TEMPORARY_PREFIX, atomic_write_bytes, publish_folder, read_json
from alti2v.errors import PipelineError
from alti2v.train.checkpoints import TrainState, save_checkpoint


@pytest.fixture
def events(monkeypatch) -> list[tuple[str, str]]:
    """("fsync", path) and ("rename", destination) in the order they happen."""
    happened: list[tuple[str, str]] = []
    real_fsync, real_rename, real_replace = os.fsync, Path.rename, os.replace

    def fsync(descriptor: int) -> None:
        happened.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def rename(self: Path, target) -> Path:
        happened.append(("rename", str(target)))
        return real_rename(self, target)

    def replace(source, target) -> None:
        happened.append(("rename", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(atomic.os, "replace", replace)
    return happened


def test_a_published_folder_is_fsynced_before_its_rename(tmp_path: Path, events) -> None:
    final = tmp_path / "models" / "run"
    with publish_folder(final) as temporary:
        (temporary / "a.bin").write_bytes(b"a")
        (temporary / "sub").mkdir()
        (temporary / "sub" / "b.bin").write_bytes(b"b")
    assert (final / "sub" / "b.bin").read_bytes() == b"b"
    rename = events.index(("rename", str(final)))
    synced_before = {path for kind, path in events[:rename] if kind == "fsync"}
    temporary = final.parent / f"{TEMPORARY_PREFIX}run"
    assert {str(temporary / "a.bin"), str(temporary / "sub" / "b.bin"), str(temporary)} <= (
        synced_before
    )
    assert ("fsync", str(final.parent)) in events[rename:]  # the rename itself is durable


def test_a_failed_publication_leaves_the_old_folder(tmp_path: Path) -> None:
    final = tmp_path / "run"
    with publish_folder(final) as temporary:
        (temporary / "old").write_text("old")
    with pytest.raises(RuntimeError), publish_folder(final) as temporary:
        (temporary / "new").write_text("new")
        raise RuntimeError("disk full")
    assert [path.name for path in tmp_path.iterdir()] == ["run"]
    assert [path.name for path in final.iterdir()] == ["old"]


def test_an_atomic_file_write_is_fsynced_with_its_folder(tmp_path: Path, events) -> None:
    path = tmp_path / "state.json"
    atomic_write_bytes(path, b"{}")
    rename = events.index(("rename", str(path)))
    assert events[rename - 1][0] == "fsync" and events[rename - 1][1].startswith(
        str(tmp_path / ".state.json.")
    )
    assert events[rename + 1] == ("fsync", str(tmp_path))


def tiny_model() -> keras.Model:
    inputs = keras.Input(shape=(2,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def test_a_failed_checkpoint_cleanup_is_reported(tmp_path: Path, monkeypatch, caplog) -> None:
    folder = tmp_path / "checkpoints"
    state = TrainState(config={}, vocab_hash="x", num_tags=1, epoch=1)
    save_checkpoint(folder, tiny_model(), state)

    real_rmtree = shutil.rmtree

    def refuse(path, ignore_errors=False, onerror=None):
        if onerror is None:  # publish_folder's own clean-up
            return real_rmtree(path, ignore_errors=ignore_errors)
        # What shutil.rmtree does when a file of the old checkpoint cannot be removed:
        onerror(os.unlink, str(Path(path) / "model.keras"), (OSError, OSError(16, "busy"), None))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    state.epoch = 2
    with caplog.at_level(logging.WARNING):
        save_checkpoint(folder, tiny_model(), state)
    (warning,) = [record.getMessage() for record in caplog.records]
    assert warning == (
        f"cannot remove {folder / 'e0001-s0000000' / 'model.keras'} ([Errno 16] busy); "
        "delete it by hand"
    )


class _Damaged(PipelineError):
    pass


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b'{"a": ', "Expecting value: line 1 column 7 (char 6)"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"caf\xe9": 1}',
            "'utf-8' codec can't decode byte 0xe9 in position 5: invalid continuation byte",
        ),
    ],
)
def test_read_json_fails_in_one_line_naming_the_file(tmp_path: Path, content, cause) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(_Damaged) as caught:
        read_json(path, _Damaged, "delete it", missing={})
    assert str(caught.value) == f"{path}: unreadable ({cause}); delete it"
    assert caught.value.__suppress_context__  # no chained traceback


def test_read_json_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.json"
    assert read_json(path, _Damaged, "run it", missing=None) is None
    with pytest.raises(_Damaged, match=r"nothing\.json: unreadable \(\[Errno 2\].*; run it$"):
        read_json(path, _Damaged, "run it")
    path.write_text('{"a": [1]}')
    assert read_json(path, _Damaged, "run it") == {"a": [1]}
