"""`ls-remote` cuts a remote into versions by the rules `install` applies: a molmospaces manifest in a
subdirectory of a files version is one of its files (not a second, archives version), and a files
version `install` refuses is listed as not installable, with install's own reason."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree

MOLMO = "mjthor_resource_file_to_size_mb.json"


def rows(remote: Path) -> list[dict[str, object]]:
    result = run("ls-remote", f"file://{remote}", "--json")
    assert result.code == 0, result.err
    versions: list[dict[str, object]] = json.loads(result.out)["versions"]
    return versions


def test_a_files_version_with_a_manifest_in_a_subdirectory_is_listed_once_with_all_its_files(
    tmp_path: Path,
) -> None:
    remote = tmp_path / "remote"
    make_tree(remote / "models" / "y" / "v1", {"a.txt": b"abc", f"sub/{MOLMO}": b'{"x.tar.zst": 1}'})
    assert [(r["dataType"], r["source"], r["version"], r["layout"], r["files"]) for r in rows(remote)] == [
        ("models", "y", "v1", "Files", 2)
    ]
    cache = tmp_path / "cache"
    install = ["install", "--cache", str(cache), "--source", f"file://{remote}", "--layout", "Files"]
    assert run(*install, "--version", "models/y=v1").code == 0


def test_a_files_version_install_rejects_is_listed_as_not_installable_with_the_same_reason(
    tmp_path: Path,
) -> None:
    remote = tmp_path / "remote"
    make_tree(remote / "models" / "x" / "v1", {"a.txt": b"abc", ".dscache-complete.json": b"{}"})
    make_tree(remote / "models" / "ok" / "v1", {"b.txt": b"b"})
    listed = {r["source"]: r for r in rows(remote)}
    assert "installable" not in listed["ok"]
    assert listed["x"]["installable"] is False
    install = ["install", "--cache", str(tmp_path / "cache"), "--source", f"file://{remote}"]
    result = run(*install, "--layout", "Files", "--version", "models/x=v1")
    assert result.code != 0
    reason = "remote file '.dscache-complete.json' rejected: name reserved for dscache metadata"
    assert reason in result.err and reason in str(listed["x"]["notInstallableBecause"])
    text = run("ls-remote", f"file://{remote}")
    assert "1 of 2 versions are not installable: see the reasons above" in text.out
