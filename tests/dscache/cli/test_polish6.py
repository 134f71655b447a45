"""The CLI's user-facing polish (round 6): publish checks the remote first, publish and install agree
on names, `-q` is quiet, hints quote paths, progress ends before the done line, JSON names fit the
layout, and README lists every command. Each test failed before its fix unless it says otherwise."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.dscache.cli.cli_helpers import assert_one_clean_line, run
from tests.factories import make_tree

V1 = "objects/toys=v1"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", {"a/one.txt": "one", "a/two.txt": "two", "b/three.bin": 3000})


def _publish(tree: Path, remote: Path, *extra: str, version: str = V1) -> list[str]:
    return ["publish", str(tree), "--to", remote.as_uri(), "--version", version, *extra]


# -------------------------------------------------------------- 1. publish checks the remote first


def test_publish_refuses_a_files_layout_version_at_its_path_and_writes_nothing(tmp_path: Path) -> None:
    remote = make_tree(tmp_path / "remote", {"objects/toys/v1/d/x.txt": "a Files-layout version"})
    before = _files(remote)
    for extra in ((), ("--overwrite",)):
        result = run(*_publish(_tree(tmp_path), remote, *extra))
        assert_one_clean_line(result, 1, "objects/toys=v1", "'d/x.txt'", "publish does not write")
        assert _files(remote) == before  # no archive, no manifest beside the other version


def test_publish_says_already_published_before_it_reads_the_tree(tmp_path: Path) -> None:
    tree, remote = _tree(tmp_path), tmp_path / "remote"
    assert run(*_publish(tree, remote)).code == 0
    published = _files(remote)
    os.mkfifo(tree / "a" / "pipe")  # a tree publish would refuse, once it reads it
    result = run(*_publish(tree, remote, "-v"))
    assert_one_clean_line(result, 1, "objects/toys=v1", "already published", "--overwrite")
    assert _files(remote) == published


def test_publish_completes_what_an_interrupted_publish_left(tmp_path: Path) -> None:
    """A guard (passed before too): archives and metadata without the last manifest are replaced."""
    tree, remote = _tree(tmp_path), tmp_path / "remote"
    assert run(*_publish(tree, remote)).code == 0
    whole = _files(remote)
    (remote / "objects/toys/v1/dscache-manifest.json").unlink()
    assert run(*_publish(tree, remote)).code == 0
    assert _files(remote) == whole


# ---------------------------------------------------- 2. names that are not UTF-8 round-trip


def test_names_that_are_not_utf8_round_trip_through_publish_and_install(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "ok.txt").write_bytes(b"plain")
    Path(os.fsdecode(b"%s/d/caf\xe9.txt" % bytes(tree))).write_bytes(b"latin-1 name")
    os.symlink(b"caf\xe9.txt", b"%s/d/l\xe9nk" % bytes(tree))
    remote, cache = tmp_path / "remote", tmp_path / "cache"
    published = run(*_publish(tree, remote, version="objects/names=v1"))
    assert published.code == 0, published
    cache.mkdir()
    installed = run(
        "install", "--cache", str(cache), "--source", str(remote), "--version", "objects/names=v1"
    )
    assert installed.code == 0, installed
    version = bytes(cache / "objects/names/v1")
    assert sorted(os.listdir(version + b"/d")) == [b"caf\xe9.txt", b"l\xe9nk"]
    with open(version + b"/d/caf\xe9.txt", "rb") as fh:
        assert fh.read() == b"latin-1 name"
    assert os.readlink(version + b"/d/l\xe9nk") == b"caf\xe9.txt"
    assert run("verify", "--cache", str(cache)).code == 0


def test_a_name_with_a_line_break_is_refused_by_publish_as_install_refuses_it(tmp_path: Path) -> None:
    """One rule for both: control characters in names break line-based tools and logs."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "two\nlines.txt").write_bytes(b"a line break in the name")
    remote = tmp_path / "remote"
    refused = run(*_publish(tree, remote, version="objects/names=v1"))
    assert_one_clean_line(refused, 2, "holds the control character \\n")
    assert not (remote / "objects/names/v1").exists()


# ----------------------------------------------------------------------------- 3. -q is quiet


def test_quiet_commands_print_nothing_when_they_succeed(tmp_path: Path) -> None:
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "cache"
    cache.mkdir()
    quiet = run(*_publish(tree, remote, "-q"))
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    for argv in (
        ["install", "--cache", str(cache), "--source", str(remote), "--version", V1, "--ref", "r"],
        ["verify", "--cache", str(cache)],
        ["gc", "--cache", str(cache), "--keep", "5"],
        ["release", "--cache", str(cache), "--ref", "r"],
        ["release", "--cache", str(cache), "--ref", "never-made"],
        ["demo", "--dir", str(tmp_path / "demo")],
    ):
        result = run(*argv, "-q")
        assert (result.code, result.out, result.err) == (0, "", ""), (argv, result)


def test_quiet_still_reports_errors_and_prints_what_was_asked_for(tmp_path: Path) -> None:
    """Errors on stderr; a query's answer (status, a dry run's plan, --json) is printed with -q."""
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "cache"
    cache.mkdir()
    assert run(*_publish(tree, remote, "-q")).code == 0
    again = run(*_publish(tree, remote, "-q"))
    assert_one_clean_line(again, 1, "already published")
    assert run("install", "--cache", str(cache), "--source", str(remote), "--version", V1, "-q").code == 0
    assert "objects" in run("status", "--cache", str(cache), "-q").out
    plan = run("gc", "--cache", str(cache), "--keep", "0", "--dry-run", "-q")
    assert plan.out == "would remove 0 version(s), kept 1, would free 0 B on disk (0 B of file content)\n"
    as_json = run(*_publish(tree, remote, "-q", "--json", version="objects/toys=v2"))
    assert json.loads(as_json.out)["version"] == "objects/toys=v2"


# ------------------------------------------------------------- 4. hints quote the paths they name


def _hinted_cache(line: str) -> str:
    """The --cache argument of the first `dscache ...` command in `line`, as a shell would read it."""
    start = re.search(r"\bdscache [a-z-]+ --", line)
    assert start is not None, line
    words = shlex.split(line[start.start() :].split(")", maxsplit=1)[0])
    return words[words.index("--cache") + 1]


def test_the_demo_s_next_steps_run_as_printed_from_a_directory_with_spaces(tmp_path: Path) -> None:
    work = tmp_path / "my [bold] demo; $HOME"
    result = run("demo", "--dir", str(work))
    assert result.code == 0, result
    assert f"dscache demo in {work}: " in result.out  # a path is shown as is, not read as rich markup
    assert f"\n{(work / 'cache').resolve()}\n" in result.out
    next_steps = result.out.split("Try next:")[1]
    steps = [line.strip() for line in next_steps.splitlines() if line.strip()]
    assert len(steps) == 5, steps
    for step in steps:
        words = shlex.split(step)
        assert words[words.index("--cache") + 1] == str((work / "cache").resolve()), step
    prepare = shlex.split(next(s for s in steps if s.startswith("dscache prepare")))
    assert prepare[prepare.index("--links") + 1] == str((work / "links").resolve())
    assert prepare[prepare.index("--env-file") + 1] == str((work / "env.sh").resolve())
    install = shlex.split(next(s for s in steps if s.startswith("dscache install")))
    assert run(*install[1:], "-q").code == 0  # the printed command works as printed


def test_the_nested_cache_note_quotes_its_path(tmp_path: Path) -> None:
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "cache"
    cache.mkdir()
    assert run(*_publish(tree, remote)).code == 0
    assert run("install", "--cache", str(cache), "--source", str(remote), "--version", V1).code == 0
    nested = cache / "objects" / "a cache's copy"
    nested.mkdir()
    assert run("install", "--cache", str(nested), "--source", str(remote), "--version", V1).code == 0
    result = run("status", "--cache", str(cache))
    [note] = [line for line in result.err.splitlines() if "nested" in line]
    assert _hinted_cache(note) == str(nested), note


def test_the_damaged_version_warning_quotes_the_cache(tmp_path: Path) -> None:
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "the cache"
    cache.mkdir()
    assert run(*_publish(tree, remote)).code == 0
    argv = ("install", "--cache", str(cache), "--source", str(remote), "--version", V1)
    assert run(*argv).code == 0
    victim = cache / "objects/toys/v1/a/one.txt"
    victim.chmod(0o644)
    victim.write_text("x")
    result = run(*argv)
    [warning] = [line for line in result.err.splitlines() if "differs from what was installed" in line]
    assert _hinted_cache(warning) == str(cache), warning


def test_a_broken_ref_s_hint_offers_only_a_command_that_works(tmp_path: Path) -> None:
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "cache"
    cache.mkdir()
    assert run(*_publish(tree, remote)).code == 0
    assert run("install", "--cache", str(cache), "--source", str(remote), "--version", V1).code == 0
    refs = cache / ".dscache" / "refs"
    (refs / "my ref.json").write_text("{not json")  # a name release --ref refuses
    refused = run("gc", "--cache", str(cache), "--keep", "0")
    assert_one_clean_line(refused, 1, "my ref.json", "fix or delete it")
    assert "dscache release" not in refused.err, refused.err
    (refs / "my ref.json").unlink()
    (refs / "team.a.json").write_text("{not json")
    refused = run("gc", "--cache", str(cache), "--keep", "0")
    hint = re.search(r"\((dscache release [^)]*) drops it", refused.err)
    assert hint is not None, refused.err
    released = run(*shlex.split(hint.group(1))[1:], "--cache", str(cache))
    assert released.code == 0, released
    assert not (refs / "team.a.json").exists()


# ------------------------------------------- 5. progress ends before `published` and the done line


def _files_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "files-remote"
    make_tree(remote / "objects/many/v1", {f"f{i}.txt": 100 + i for i in range(6)})
    make_tree(remote / "objects/other/v1", {f"g{i}.txt": 200 + i for i in range(3)})
    return remote


FILES_INSTALL = ("--layout", "Files", "--version", "objects/many=v1", "--version", "objects/other=v1")


def test_json_progress_reaches_its_end_before_the_last_version_is_published(tmp_path: Path) -> None:
    remote, cache = _files_remote(tmp_path), tmp_path / "cache"
    cache.mkdir()
    result = run("install", "--cache", str(cache), "--source", str(remote), *FILES_INSTALL, "--json")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.out.splitlines()]
    names = [e["event"] for e in events]
    assert names[-1] == "done"
    last_progress = max(i for i, name in enumerate(names) if name == "progress")
    last_published = max(i for i, name in enumerate(names) if name == "version_published")
    assert last_progress < last_published, names
    final = events[last_progress]
    assert (final["bytesDone"], final["itemsDone"]) == (final["bytesTotal"], 9)


def test_plain_progress_lines_come_before_published(tmp_path: Path) -> None:
    remote, cache = tmp_path / "files-remote", tmp_path / "cache"
    make_tree(remote / "objects/many/v1", {f"f{i}.txt": 100 + i for i in range(6)})
    cache.mkdir()
    result = run("install", "--cache", str(cache), "--source", str(remote), *FILES_INSTALL[:4])
    assert result.code == 0, result
    lines = result.err.splitlines()
    published = next(i for i, line in enumerate(lines) if line.startswith("dscache: published "))
    assert not [line for line in lines[published:] if line.startswith("dscache: progress")], lines
    assert lines[-1].startswith("dscache: done: 1 published"), lines


def test_the_rich_bar_ends_above_published_and_done() -> None:
    import io

    from rich.console import Console

    from dscache.cli.render import RichSink

    screen = io.StringIO()
    sink = RichSink(Console(file=screen, force_terminal=True, width=160, color_system=None), items="files")
    sink.emit("start", {"bytesTotal": 600, "itemsTotal": 6})
    sink.emit("progress", {"bytesDone": 600, "bytesTotal": 600, "itemsDone": 6, "itemsTotal": 6})
    sink.emit("version_published", {"version": "objects/many=v1", "files": 6})
    sink.emit("done", {"published": ["objects/many=v1"], "present": [], "seconds": 0.1})
    sink.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    after = text[text.index("published objects/many=v1") :]
    assert "files 6/6" in text and "files 6/6" not in after, after


def test_the_rich_sink_shows_messages_as_text_not_markup() -> None:
    import io

    from rich.console import Console

    from dscache.cli.render import RichSink

    screen = io.StringIO()
    sink = RichSink(Console(file=screen, force_terminal=True, width=160, color_system=None))
    sink.emit("error", {"message": "/data/[red] cache/x: No space left on device"})
    sink.close()
    assert "dscache: error: /data/[red] cache/x: No space left on device" in screen.getvalue()


# ---------------------------------------------------- 6. JSON counts items, in either layout


def test_files_layout_progress_counts_items_in_events_and_in_the_resource_status(tmp_path: Path) -> None:
    from dscache.install.kubestatus import progress_status

    remote, cache = _files_remote(tmp_path), tmp_path / "cache"
    cache.mkdir()
    result = run("install", "--cache", str(cache), "--source", str(remote), *FILES_INSTALL, "--json")
    events = [json.loads(line) for line in result.out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert (start["itemsDone"], start["itemsTotal"]) == (0, 9)
    last = [e for e in events if e["event"] == "progress"][-1]
    assert (last["itemsDone"], last["itemsTotal"]) == (9, 9)
    status = progress_status(last).patch()
    assert (status["itemsDone"], status["itemsTotal"]) == (9, 9)
    # the earlier names stay, with the same values, for readers written against them (README)
    assert (last["archivesDone"], status["archivesDone"]) == (9, 9)


# ------------------------------------- 8. `python -m dscache` from the parent of a checkout


def _copy_checkout(dest: Path) -> None:
    import shutil

    root = Path(__file__).parents[3]
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(root / name, dest / name)
    for name in ("initcontainer", "operator"):
        shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def test_python_m_dscache_runs_from_the_directory_that_holds_the_checkout(tmp_path: Path) -> None:
    """README's `pip install -e .` of a checkout named `dscache`, then `python -m dscache` from its parent:
    the checkout (no `__init__.py`) must not shadow the package as a namespace package.

    The editable wheel is built by the build backend itself and unpacked into a directory of its own,
    which is what pip installs: pip itself is not run, since `pip install --prefix` uninstalls the
    test environment's own dscache first (seen in CI: every later test lost the package)."""
    import subprocess
    import sys
    import zipfile

    checkout, site_dir, wheels = tmp_path / "dscache", tmp_path / "site", tmp_path / "wheels"
    _copy_checkout(checkout)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    build = "import sys; from setuptools import build_meta; print(build_meta.build_editable(sys.argv[1]))"
    built = subprocess.run(
        [sys.executable, "-c", build, str(wheels)],
        cwd=checkout, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr  # setuptools>=77 (the dev extra) must be installed
    with zipfile.ZipFile(wheels / built.stdout.strip().splitlines()[-1]) as wheel:
        wheel.extractall(site_dir)
    # `-S`: only this install's .pth, not the test environment's; `-c` puts the cwd first on sys.path,
    # as `python -m` does
    program = (
        f"import runpy, site, sys; site.addsitedir({str(site_dir)!r}); sys.argv = ['dscache', '--version']; "
        "runpy.run_module('dscache', run_name='__main__', alter_sys=True)"
    )
    ran = subprocess.run(
        [sys.executable, "-S", "-c", program],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    version = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["version"]
    assert (ran.returncode, ran.stdout.strip()) == (0, f"dscache {version}"), ran.stderr


# ---------------------------------------------------------------- 7. README covers every command


README = Path(__file__).parents[3] / "README.md"


def test_readme_lists_every_command_dscache_help_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per command in argparse's help
    helped = run("--help")
    assert helped.code == 0
    section = helped.out.split("positional arguments:")[1].split("options:")[0]
    commands = dict(re.findall(r"^    ([a-z-]+) +(.+)$", section, re.MULTILINE))
    assert {"release", "ls-remote", "publish", "completion"} <= set(commands), section
    text = README.read_text()
    for command, help_text in commands.items():
        row = f"| `dscache {command}` | {help_text.strip()} |"
        assert row in text, f"README's command table lacks: {row}"
        used = re.search(rf"dscache {re.escape(command)}(?![-\w])", text.replace(row, ""))
        assert used is not None, f"README shows no use of dscache {command}"


def test_readme_states_the_ls_remote_json_fields_of_a_remote_without_revisions(tmp_path: Path) -> None:
    tree, remote, cache = _tree(tmp_path), tmp_path / "remote", tmp_path / "cache"
    cache.mkdir()
    assert run(*_publish(tree, remote)).code == 0
    assert run("install", "--cache", str(cache), "--source", str(remote), "--version", V1).code == 0
    text = " ".join(README.read_text().split())
    stated = re.search(r"a version is thus `\{([^}]*)\}`, plus `(\w+)` with `--cache`", text)
    assert stated is not None, "README's ls-remote --json paragraph changed: keep it checked here"
    fields = [f.strip().strip('"') for f in stated.group(1).split(",")]
    for argv, extra in (([str(remote)], []), ([str(remote), "--cache", str(cache)], [stated.group(2)])):
        listing = json.loads(run("ls-remote", *argv, "--json").out)
        assert [list(v) for v in listing["versions"]] == [fields + extra], listing
