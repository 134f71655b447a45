"""A ref that names a version whose directory is gone: `verify` exits 1 naming the ref and the
version, `status` shows it, and `prepare` fails at once (it waits only for a version an install in
progress will publish)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.dscache.cli.test_ref_slots7 import ITHOR, manifest, remote

__all__ = ["remote"]  # the module-scoped fixture


# item 3: a ref that names a version whose directory is gone


@pytest.fixture
def gone(tmp_path: Path, remote: Path) -> Path:
    cache = tmp_path / "cache"
    assert run("install", "--cache", str(cache), "-f", str(manifest(tmp_path / "dc.yaml", remote))).code == 0
    root = CachePaths(cache).version_dir(ITHOR)
    for path in (root, *(p for p in root.rglob("*") if p.is_dir())):
        os.chmod(path, 0o755)
    shutil.rmtree(root)
    return cache


def test_verify_names_the_ref_and_the_version_that_is_gone(gone: Path) -> None:
    result = run("verify", "--cache", str(gone))
    assert result.code == 1
    assert "ref team.train names scenes/ithor=7: not published" in result.out + result.err
    assert result.out.splitlines()[-1] == (
        "1 of 1 version(s) intact; 1 version(s) named by refs not published"
    )


def test_status_shows_the_ref_naming_a_version_that_is_gone(gone: Path) -> None:
    result = run("status", "--cache", str(gone))
    assert "ref team.train names scenes/ithor=7: not published" in result.out + result.err


def test_prepare_fails_at_once_for_a_version_neither_published_nor_being_installed(
    gone: Path, tmp_path: Path
) -> None:
    args = ["prepare", "--cache", str(gone), "--links", str(tmp_path / "links"), "--ref", "team.train"]
    started = time.monotonic()
    result = run(*args, "--wait", "60")
    assert time.monotonic() - started < 30  # not the whole --wait
    assert_one_clean_line(result, 1, "ref team.train names scenes/ithor=7: not published", "release")


@pytest.mark.parametrize("installing", ["staging", "lock"])
def test_prepare_still_waits_for_a_version_an_install_in_progress_may_publish(
    gone: Path, tmp_path: Path, installing: str
) -> None:
    paths = CachePaths(gone)
    if installing == "staging":
        paths.staging_dir(ITHOR).mkdir(parents=True)
    else:
        paths.lock_path.write_text("held\n")
    args = ["prepare", "--cache", str(gone), "--links", str(tmp_path / "links"), "--ref", "team.train"]
    result = run(*args, "--wait", "0.5")
    assert result.code == 3 and "scenes/ithor=7" in result.err
    status = run("status", "--cache", str(gone))
    assert "ref team.train names scenes/ithor=7: not published (an install in progress" in status.err
    assert run("verify", "--cache", str(gone)).code == 0


def test_verify_json_lists_the_ref_gap(gone: Path) -> None:
    result = run("verify", "--cache", str(gone), "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["ok"] is False
    assert report["refGaps"] == [{"ref": "team.train", "version": "scenes/ithor=7", "installing": False}]


def test_status_json_lists_the_ref_gap(gone: Path) -> None:
    report = json.loads(run("status", "--cache", str(gone), "--json").out)
    assert report["refGaps"] == [{"ref": "team.train", "version": "scenes/ithor=7", "installing": False}]
