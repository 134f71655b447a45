"""Item names as long as a file system allows (255 bytes) install in both layouts: the names staging
derives from them for its bookkeeping (partials, pin records, extraction dirs, done records, the
temporaries of atomic writes) stay within NAME_MAX."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.staging import StagingPaths
from dscache.store.paths import CachePaths
from tests.dscache.install.roundtrip import install
from tests.factories import _info, content_for, dataset_snapshot, make_tree, publish_raw_archives, tar_zst

KEY = VersionKey("d", "s", "v1")
LONG = "n" * 255
LONG_UTF8 = "é" * 127 + "x"  # 255 bytes in UTF-8
LONGEST_ARCHIVE = "a" * (255 - len("._complete_extract") - len(".tar.zst")) + ".tar.zst"
"""237 bytes: the longest whose molmospaces flag (`.<archive>_complete_extract`) is a legal name."""


def test_files_with_255_byte_names_install_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(LONG_UTF8.encode()) == 255
    big = content_for(LONG, 300 << 10)  # large enough for a pin record (resumable)
    remote = make_tree(tmp_path / "R", {f"d/s/v1/{LONG}": big, f"d/s/v1/sub/{LONG_UTF8}": "small"})
    cache = tmp_path / "C"

    assert install(cache, remote, KEY, layout="files").code == 0, capsys.readouterr().err
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        LONG: big,
        "sub": None,
        f"sub/{LONG_UTF8}": b"small",
    }
    assert main(["verify", "--cache", str(cache)]) == 0


def test_an_archive_with_the_longest_name_its_flag_allows_installs_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "R"
    archive = tar_zst([(_info("a.txt", tarfile.REGTYPE, size=5), b"hello")])
    publish_raw_archives(remote, KEY, {LONGEST_ARCHIVE: archive})
    cache = tmp_path / "C"

    assert install(cache, remote, KEY, layout="archives").code == 0, capsys.readouterr().err
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {"a.txt": b"hello"}
    assert main(["verify", "--cache", str(cache)]) == 0


def test_an_archive_whose_molmospaces_flag_would_be_too_long_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "a" + LONGEST_ARCHIVE
    publish_raw_archives(
        tmp_path / "R", KEY, {name: tar_zst([(_info("a.txt", tarfile.REGTYPE, size=1), b"x")])}
    )
    cache = tmp_path / "C"

    assert install(cache, tmp_path / "R", KEY, layout="archives").code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dscache: error: ")
    assert f"archive name {name!r} is too long" in err[-1]
    assert "Traceback" not in "".join(err)
    assert not CachePaths(cache).version_dir(KEY).exists()


def test_bookkeeping_names_of_long_items_are_legal_and_distinct(tmp_path: Path) -> None:
    staging = StagingPaths(tmp_path)
    token = "0123456789abcdef"
    names = ["p" * 200 + "a" * 55, "p" * 200 + "b" * 55, "sub/" + LONG_UTF8, "q" * 232, "q" * 233]
    derived = {
        name: [
            staging.part(name, token),
            staging.pin(name, token),
            staging.archive_dir(name),
            staging.archive_attempt(name, token),
            staging.archive_done(name),
        ]
        for name in names
    }
    for paths in derived.values():
        assert all(len(os.fsencode(p.name)) <= 255 for p in paths)
    assert len({p for paths in derived.values() for p in paths}) == 5 * len(names)
    assert staging.part("q" * 232, token).name == "q" * 232 + "." + token  # short names kept verbatim
