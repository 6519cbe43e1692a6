"""bench/quality_grid.py reports a variant that fails and exits non-zero, so a broken grid can
never pass for a measured one. The failing variant stops at its flags: nothing is trained."""

from __future__ import annotations

from bench import quality_grid


def test_a_failing_variant_is_a_row_naming_its_log_and_exit_status_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(quality_grid.VARIANTS, "broken", ["--no-such-flag"])

    status = quality_grid.main(
        [
            "--only",
            "broken",
            "--work",
            str(tmp_path),
            "--train-count",
            "2",
            "--heldout-count",
            "1",
            "--results",
            str(tmp_path / "grid.jsonl"),
        ]
    )

    assert status == 1
    output = capsys.readouterr()
    log = tmp_path / "broken-seed7.log"
    assert f"| broken | 0 | exit 2, see {log} | | | | | | | | |" in output.out.splitlines()
    assert output.err.splitlines()[-1] == f"error: variants failed: broken (logs in {tmp_path})"
    assert "unrecognized arguments: --no-such-flag" in log.read_text()
