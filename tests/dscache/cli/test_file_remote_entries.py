"""Odd entries of a `file` remote, as the CLI user sees them: a directory that cannot be listed, and
symlinks, FIFOs, sockets and devices, fail `ls-remote` and `install` with one line naming the path
and a non-zero exit, never skipped and never read outside the source root; a symlink to a file
inside the root is installed as that file."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dscache.api.names import VersionKey
from dscache.store.paths import CachePaths
from tests.dscache.cli.cli_helpers import as_nobody, assert_one_clean_line, run, world_traversable_dir
from tests.factories import Symlink, dataset_snapshot, make_tree

KEY = VersionKey("d", "s", "v1")
V1 = "d/s/v1"


def _install(cache: Path, remote: Path) -> list[str]:
    return [
        "install",
        "--cache",
        str(cache),
        "--source",
        f"file://{remote}",
        "--layout",
        "files",
        "--version",
        "d/s=v1",
    ]


@pytest.fixture
def shared() -> Iterator[Path]:
    with world_traversable_dir() as path:
        yield path


def test_an_unreadable_directory_fails_ls_remote_and_install_naming_it(shared: Path) -> None:
    remote = make_tree(shared / "R", {f"{V1}/a.txt": "a", f"{V1}/sub/b.txt": "b"})
    for path in [remote, *remote.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (remote / V1 / "sub").chmod(0)
    cache = shared / "C"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)

    # Root reads it: this also imports, as root, what the CLI imports lazily (this interpreter's
    # standard library may not be readable by uid 65534).
    assert run("ls-remote", f"file://{remote}").code == 0
    assert run(*_install(shared / "root-cache", remote)).code == 0
    listed = as_nobody("ls-remote", f"file://{remote}")
    assert_one_clean_line(listed, 1, f"{V1}/sub", "cannot list the directory", "Permission denied")
    installed = as_nobody(*_install(cache, remote))
    assert_one_clean_line(installed, 1, f"{V1}/sub", "cannot list the directory", "Permission denied")
    assert not CachePaths(cache).version_dir(KEY).exists()


def test_any_error_listing_a_directory_fails_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = make_tree(tmp_path / "R", {f"{V1}/a.txt": "a", f"{V1}/sub/b.txt": "b"})
    real_scandir = os.scandir
    broken = str(remote / V1 / "sub")

    def scandir(path: str | os.PathLike[str]) -> object:
        if os.fspath(path) == broken:
            raise OSError(5, "Input/output error", broken)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert_one_clean_line(run("ls-remote", f"file://{remote}"), 1, f"{V1}/sub", "Input/output error")
    result = run(*_install(tmp_path / "C", remote))
    assert_one_clean_line(result, 1, f"{V1}/sub", "Input/output error")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    here = os.getcwd()
    os.chdir(path.parent)  # AF_UNIX paths are short: bind by a relative name
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)
    finally:
        os.chdir(here)


def _device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))


def _link(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


ODD: dict[str, tuple[Callable[[Path], None], str]] = {
    "escaping symlink": (_link("/etc/passwd"), "outside"),
    "escaping relative symlink": (_link("../../../../outside.txt"), "outside"),
    "directory symlink": (_link("sub"), "symlink to a directory"),
    "dangling symlink": (_link("nowhere.txt"), "dangling symlink"),
    "symlink loop": (_link("odd"), "symlink cannot be resolved"),
    "fifo": (_fifo, "a FIFO, not a regular file"),
    "socket": (_socket, "a socket, not a regular file"),
    "device": (_device, "a character device, not a regular file"),
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_entries_are_refused_naming_them(case: str, tmp_path: Path) -> None:
    make, needle = ODD[case]
    (tmp_path / "outside.txt").write_text("secret")
    remote = make_tree(tmp_path / "R", {f"{V1}/a.txt": "a", f"{V1}/sub/b.txt": "b"})
    make(remote / V1 / "odd")
    cache = tmp_path / "C"

    assert_one_clean_line(run("ls-remote", f"file://{remote}"), 1, f"{V1}/odd", needle)
    assert_one_clean_line(run(*_install(cache, remote)), 1, f"{V1}/odd", needle)
    assert not CachePaths(cache).version_dir(KEY).exists()


def test_a_symlink_to_a_file_inside_the_root_is_installed_as_that_file(tmp_path: Path) -> None:
    remote = make_tree(
        tmp_path / "R",
        {
            f"{V1}/a.txt": "a",
            f"{V1}/sub/b.txt": "b",
            f"{V1}/link.txt": Symlink("sub/b.txt"),
            "shared.txt": "s",
        },
    )
    (remote / V1 / "up.txt").symlink_to("../../../shared.txt")
    cache = tmp_path / "C"

    assert run(*_install(cache, remote)).code == 0
    assert dataset_snapshot(CachePaths(cache).version_dir(KEY)) == {
        "a.txt": b"a",
        "link.txt": b"b",
        "sub": None,
        "sub/b.txt": b"b",
        "up.txt": b"s",
    }
    assert run("verify", "--cache", str(cache)).code == 0
