"""Execute bits survive: a member or source file marked executable is `r-x` for everyone in the cache,
behind links and in scratch copies; write, setuid, setgid and sticky bits never are kept.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from dscache.api.names import VersionKey
from dscache.publish.pack import is_bookkeeping
from dscache.store.paths import CachePaths
from tests.conftest import S3Env
from tests.dscache.install.roundtrip import VIEWS, child_env, journey, modes, prepare, verify, view
from tests.factories import Exec, make_tree, publish_archives, publish_raw_archives

KEY = VersionKey("robots", "arm", "v1")
SCRIPT = b"#!/bin/sh\necho ran\n"


def _runs(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True, timeout=30).stdout


def data_modes(place: Path) -> dict[bytes, int]:
    """`modes` of the dataset's files, without what the installer adds at the top."""
    return {k: v for k, v in modes(place).items() if not is_bookkeeping(os.fsdecode(k))}


def metadata_modes(place: Path) -> dict[bytes, int]:
    return {k: v for k, v in modes(place).items() if is_bookkeeping(os.fsdecode(k))}


def test_published_scripts_stay_executable_everywhere(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"bin/run.sh": Exec(SCRIPT), "data/x.txt": b"x\n"})
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=1 << 20)
    with tarfile.open(fileobj=io.BytesIO(_only_archive(tmp_path / "remote")), mode="r:") as tar:
        assert {m.name: m.mode for m in tar.getmembers()} == {"bin/run.sh": 0o755, "data/x.txt": 0o644}
    trip = journey(tmp_path, tmp_path / "remote", KEY)
    assert trip.install.code == 0 and trip.verify is not None and trip.verify.code == 0
    assert set(trip.places) == set(VIEWS)
    for name, place in trip.places.items():
        assert data_modes(place) == {b"bin/run.sh": 0o555, b"data/x.txt": 0o444}, name
        assert _runs(place / "bin" / "run.sh") == "ran\n", name
    version = trip.places["cache"]
    metadata = metadata_modes(version)  # flags, manifests and records are never executable
    assert metadata == dict.fromkeys(metadata, 0o444) and len(metadata) == 7  # with .dscache-items.json
    assert stat.S_IMODE((version / "bin").stat().st_mode) == 0o555


def _only_archive(remote: Path) -> bytes:
    (archive,) = remote.rglob("*.tar.zst")
    return zstandard.ZstdDecompressor().decompressobj().decompress(archive.read_bytes())


def _tar(members: list[tuple[str, bytes, int, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, data_or_link in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            if kind == tarfile.LNKTYPE:
                info.linkname = data_or_link
                tar.addfile(info)
            elif kind == tarfile.DIRTYPE:
                tar.addfile(info)
            else:
                info.size = len(data_or_link)
                tar.addfile(info, io.BytesIO(data_or_link.encode()))
    return zstandard.ZstdCompressor().compress(buf.getvalue())


HOSTILE_MODES = _tar(
    [
        ("setuid", tarfile.REGTYPE, 0o4755, "#!/bin/sh\necho setuid\n"),
        ("setgid-group-writable", tarfile.REGTYPE, 0o2775, "#!/bin/sh\necho setgid\n"),
        ("owner-only", tarfile.REGTYPE, 0o700, "#!/bin/sh\necho owner\n"),
        ("world-writable", tarfile.REGTYPE, 0o666, "data\n"),
        ("no-permissions", tarfile.REGTYPE, 0o000, "data\n"),
        ("hardlink-to-setuid", tarfile.LNKTYPE, 0o644, "setuid"),
        ("sticky/", tarfile.DIRTYPE, 0o1777, ""),
        ("sticky/inside", tarfile.REGTYPE, 0o4711, "#!/bin/sh\necho inside\n"),
    ]
)
EXPECTED_MODES = {
    b"setuid": 0o555,
    b"setgid-group-writable": 0o555,
    b"owner-only": 0o555,
    b"world-writable": 0o444,
    b"no-permissions": 0o444,
    b"hardlink-to-setuid": 0o555,
    b"sticky/inside": 0o555,
}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_member_modes_keep_only_read_and_execute_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    publish_raw_archives(tmp_path / "remote", KEY, {"modes.tar.zst": HOSTILE_MODES})
    trip = journey(tmp_path, tmp_path / "remote", KEY, env=child_env(), umask=umask)
    assert trip.install.code == 0, trip.install.stderr
    assert trip.verify is not None and trip.verify.code == 0
    for name, place in trip.places.items():
        assert data_modes(place) == EXPECTED_MODES, name
        assert _runs(place / "setuid") == "setuid\n"
    assert stat.S_IMODE((trip.places["cache"] / "sticky").stat().st_mode) == 0o555


def test_files_layout_keeps_the_exec_bit_of_a_file_remote(tmp_path: Path) -> None:
    make_tree(tmp_path / "remote" / KEY.rel, {"bin/run.sh": Exec(SCRIPT), "x.txt": b"x\n"})
    trip = journey(tmp_path, tmp_path / "remote", KEY, layout="files")
    assert trip.install.code == 0 and trip.verify is not None and trip.verify.code == 0
    for name, place in trip.places.items():
        assert data_modes(place) == {b"bin/run.sh": 0o555, b"x.txt": 0o444}, name
        assert _runs(place / "bin" / "run.sh") == "ran\n", name


def test_files_layout_from_s3_has_no_modes_so_files_stay_read_only(
    tmp_path: Path, s3: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put(f"models/{KEY.rel}/bin/run.sh", SCRIPT)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    trip = journey(tmp_path, f"s3://{s3.bucket}/models", KEY, layout="files")
    assert trip.install.code == 0
    assert data_modes(trip.places["cache"]) == {b"bin/run.sh": 0o444}


def test_verify_reports_a_script_that_lost_its_exec_bit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "tree", {"bin/run.sh": Exec(SCRIPT), "data/x.txt": b"x\n"})
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=1 << 20)
    cache = tmp_path / "cache"
    trip = journey(tmp_path, tmp_path / "remote", KEY)
    assert trip.install.code == 0
    os.chmod(CachePaths(cache).version_dir(KEY) / "bin" / "run.sh", 0o444)
    capsys.readouterr()
    assert verify(cache).code == 1
    assert "  changed: bin/run.sh" in capsys.readouterr().err.splitlines()


def test_a_scratch_copy_that_lost_an_exec_bit_is_copied_again(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", {"bin/run.sh": Exec(SCRIPT), "data/x.txt": b"x\n"})
    publish_archives(tree, tmp_path / "remote", KEY, archive_size=1 << 20)
    trip = journey(tmp_path, tmp_path / "remote", KEY)
    copy = Path(os.path.realpath(trip.places["scratch"]))
    os.chmod(copy / "bin" / "run.sh", 0o444)  # e.g. a copy made before execute bits were kept
    links = tmp_path / "links-again"
    assert prepare(tmp_path / "cache", links, KEY, "directory", tmp_path / "scratch").code == 0
    again = links / KEY.data_type / KEY.source
    assert os.path.realpath(again).startswith(str(tmp_path / "scratch"))
    assert view(again) == {b"bin": None, b"bin/run.sh": SCRIPT, b"data": None, b"data/x.txt": b"x\n"}
    assert _runs(again / "bin" / "run.sh") == "ran\n"
