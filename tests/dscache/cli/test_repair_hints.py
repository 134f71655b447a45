"""The commands hints suggest work as printed: `dscache verify` names, per damaged version, a repair
under a ref that already names it (never a new `default` ref). Each test failed before its fix."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import run
from tests.factories import make_tree, publish_archives

KEY = VersionKey("objects", "thor", "v1")
MANIFEST = """\
apiVersion: dscache.io/v1alpha1
kind: DatasetCache
metadata: {name: local, namespace: ml}
spec:
  source: {file: {path: %s}}
  layout: Files
  versions: [{dataType: objects, source: thor, version: v1, link: %s}]
"""


def _refs(cache: Path) -> dict[str, dict[str, object]]:
    """Each ref file's content but the time it was written (a repair rewrites it as it was)."""
    refs = {p.name: json.loads(p.read_bytes()) for p in sorted((cache / ".dscache" / "refs").iterdir())}
    return {name: {k: v for k, v in doc.items() if k != "updated_at"} for name, doc in refs.items()}


def _files_remote(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "remote", {"objects/thor/v1/a.txt": "a", "objects/thor/v1/d/b.bin": 3000})


def _suggested(cache: Path, *verify_flags: str) -> tuple[str, str]:
    """(command, note) verify's text output suggests for KEY, after checking its --json agrees."""
    text = run("verify", "--cache", str(cache), *verify_flags)
    assert text.code == 1
    [line] = [ln for ln in text.err.splitlines() if ln.startswith(f"  {KEY}: dscache install ")]
    command, _, note = line.removeprefix(f"  {KEY}: ").partition("  (")
    note = note.removesuffix(")")
    report = json.loads(run("verify", "--cache", str(cache), "--json", *verify_flags).out)
    [version] = report["versions"]
    assert version["repair"] == {"version": str(KEY), "command": command, "note": note}
    return command, note


def _run_suggested(command: str, **fill: str) -> None:
    argv = [fill.get(a, a) for a in shlex.split(command)]
    assert argv[0] == "dscache"
    result = run(*argv[1:])
    assert result.code == 0, result


def test_verify_suggests_a_repair_under_the_flags_ref_that_names_the_version(tmp_path: Path) -> None:
    remote, cache = _files_remote(tmp_path), tmp_path / "my cache"
    install = ["install", "--cache", str(cache), "--source", remote.as_uri(), "--layout", "files"]
    assert run(*install, "--version", str(KEY), "--ref", "exp").code == 0
    (CachePaths(cache).version_dir(KEY) / "d" / "b.bin").unlink()
    refs = _refs(cache)
    command, note = _suggested(cache)
    assert command == (
        f"dscache install --cache '{cache}' --source {remote.as_uri()} --layout Files --version {KEY} "
        "--ref exp --repair"
    )
    assert note == ""
    _run_suggested(command)
    assert _refs(cache) == refs  # no `default` ref, and ref exp as it was
    assert run("verify", "--cache", str(cache)).code == 0


def test_verify_suggests_f_file_for_a_ref_installed_from_a_manifest(tmp_path: Path) -> None:
    remote, cache = _files_remote(tmp_path), tmp_path / "cache"
    manifest = tmp_path / "dsc.yaml"
    manifest.write_text(MANIFEST % (remote, "PerFile"))
    assert run("install", "-f", str(manifest), "--cache", str(cache)).code == 0
    (CachePaths(cache).version_dir(KEY) / "a.txt").unlink()
    refs = _refs(cache)
    command, note = _suggested(cache)
    assert command == f"dscache install -f FILE --cache {cache} --ref ml.local --repair"
    assert note == "FILE: the DatasetCache manifest ref ml.local was installed from"
    _run_suggested(command, FILE=str(manifest))
    assert _refs(cache) == refs
    assert run("verify", "--cache", str(cache)).code == 0


def test_a_ref_of_an_older_dscache_gets_flags_that_keep_its_link_strategy(tmp_path: Path) -> None:
    """An older ref (no origin) whose entry links PerFile: a flags install keeps a source's link
    strategy and envName (the ref's settings flags cannot express), so the flags command is offered,
    and running it repairs the version and leaves the ref as it was."""
    remote, cache = _files_remote(tmp_path), tmp_path / "cache"
    manifest = tmp_path / "dsc.yaml"
    manifest.write_text(MANIFEST % (remote, "PerFile"))
    assert run("install", "-f", str(manifest), "--cache", str(cache)).code == 0
    ref_file = cache / ".dscache" / "refs" / "ml.local.json"
    doc = json.loads(ref_file.read_text())
    del doc["origin"]  # as an older dscache wrote it
    ref_file.write_text(json.dumps(doc))
    refs = _refs(cache)
    (CachePaths(cache).version_dir(KEY) / "a.txt").unlink()
    command, _note = _suggested(cache)
    assert command == (
        f"dscache install --cache {cache} --source {remote.as_uri()} --layout Files --version {KEY} "
        "--ref ml.local --repair"
    )
    _run_suggested(command)
    after = _refs(cache)["ml.local.json"]
    assert after.pop("origin") == ""  # still unknown: the ref's versions came from a file
    assert after == refs["ml.local.json"]
    assert run("verify", "--cache", str(cache)).code == 0


def test_a_version_two_refs_name_gets_one_command_and_content_when_verify_hashed(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    publish_archives(make_tree(tmp_path / "t", {"a.bin": 5000, "b.bin": 6000}), remote, KEY, 8192)
    for ref in ("alpha", "beta"):
        argv = ["install", "--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)]
        assert run(*argv, "--ref", ref).code == 0
    (CachePaths(cache).version_dir(KEY) / "b.bin").unlink()
    refs = _refs(cache)
    command, note = _suggested(cache, "--content")
    assert command == (
        f"dscache install --cache {cache} --source {remote.as_uri()} --version {KEY} --ref alpha "
        "--repair --content"
    )
    assert note == "refs beta name it too: one repair serves them all"
    _run_suggested(command)
    assert _refs(cache) == refs
    assert run("verify", "--cache", str(cache)).code == 0


def test_the_gc_an_install_out_of_space_suggests_runs_and_removes_what_no_ref_uses(tmp_path: Path) -> None:
    import errno
    import re

    from dscache.install.pipeline import no_space_message

    remote, cache = tmp_path / "remote", tmp_path / "a cache"
    publish_archives(make_tree(tmp_path / "t", {"a.bin": 500}), remote, KEY, 8192)
    source = ["--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)]
    assert run("install", *source, "--ref", "x").code == 0
    assert run("release", "--cache", str(cache), "--ref", "x", "--protect", str(KEY)).code == 0
    message = no_space_message(cache, OSError(errno.ENOSPC, "No space left on device", str(cache / "f")))
    [command] = re.findall(r"\((dscache gc [^)]*)\)", message)
    _run_suggested(command)
    assert not CachePaths(cache).version_dir(KEY).exists()


def test_the_release_an_unreadable_ref_error_suggests_runs_and_drops_only_it(tmp_path: Path) -> None:
    remote, cache = tmp_path / "remote", tmp_path / "a cache"
    publish_archives(make_tree(tmp_path / "t", {"a.bin": 500}), remote, KEY, 8192)
    assert run("install", "--cache", str(cache), "--source", remote.as_uri(), "--version", str(KEY)).code == 0
    (cache / ".dscache" / "refs" / "b.json").write_text('{"name":\n')
    error = run("gc", "--cache", str(cache), "--keep", "0")
    assert error.code == 1
    command = error.err.partition("fix or delete it (")[2].removesuffix(" drops it and removes nothing)\n")
    _run_suggested(command)
    assert _refs(cache) == {"default.json": _refs(cache)["default.json"]}
    assert CachePaths(cache).version_dir(KEY).is_dir()


def test_a_version_whose_record_is_unreadable_gets_a_repair_from_its_ref(tmp_path: Path) -> None:
    remote, cache = _files_remote(tmp_path), tmp_path / "cache"
    install = ["install", "--cache", str(cache), "--source", remote.as_uri(), "--layout", "Files"]
    assert run(*install, "--version", str(KEY), "--ref", "exp").code == 0
    (CachePaths(cache).version_dir(KEY) / ".dscache-complete.json").write_text("{")
    refs = _refs(cache)
    text = run("verify", "--cache", str(cache))
    assert text.code == 1 and "DAMAGED  " in text.err
    command = (
        f"dscache install --cache {cache} --source {remote.as_uri()} --layout Files --version {KEY} "
        "--ref exp --repair"
    )
    assert f"  {KEY}: {command}\n" in text.err
    report = json.loads(run("verify", "--cache", str(cache), "--json").out)
    assert report["damagedRepairs"] == [{"version": str(KEY), "command": command, "note": ""}]
    _run_suggested(command)
    assert _refs(cache) == refs
    assert run("verify", "--cache", str(cache)).code == 0


def test_the_removal_an_install_from_another_remote_suggests_runs_and_lets_it_install(tmp_path: Path) -> None:
    first, second, cache = tmp_path / "first", tmp_path / "second", tmp_path / "a cache"
    for i, remote in enumerate((first, second)):
        publish_archives(make_tree(tmp_path / f"t{i}", {"a.bin": 500 + i}), remote, KEY, 8192)
    assert run("install", "--cache", str(cache), "--source", first.as_uri(), "--version", str(KEY)).code == 0
    again = ["install", "--cache", str(cache), "--source", second.as_uri(), "--version", str(KEY)]
    warned = run(*again)
    assert warned.code == 0 and "is already present, installed from" in warned.err
    command = warned.err.partition("remove it first (")[2].partition(" removes it")[0]
    _run_suggested(command)
    assert not CachePaths(cache).version_dir(KEY).exists()
    assert run(*again).code == 0
    record = json.loads((CachePaths(cache).version_dir(KEY) / ".dscache-complete.json").read_text())
    assert record["remote"] == second.as_uri()
