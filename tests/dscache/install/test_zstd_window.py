"""Long-window zstd (`zstd --long=27..31`): decoded within a stated bound, refused above it with the size."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from dscache.api.names import VersionKey
from dscache.cli.app import main
from dscache.install.extract import extract_stream
from dscache.install.extracted import ArchiveRejectedError
from dscache.install.zstdstream import FrameWalker, ZstdStreamError
from dscache.store.paths import CachePaths
from tests.dscache.install.roundtrip import install, view
from tests.factories import content_for, publish_raw_archives
from tests.servers.hub import FakeHub

KEY = VersionKey("objects", "long", "v1")
FILES = {"a/big.bin": content_for("big", 300_000), "a/small.txt": b"small\n"}
EXPECTED = {b"a": None, b"a/big.bin": FILES["a/big.bin"], b"a/small.txt": b"small\n"}


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def long_window(window_log: int, data: bytes | None = None) -> bytes:
    """What `tar c | zstd --long=N` writes: one frame declaring a 2**N window (size unknown up front)."""
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=window_log, enable_ldm=True, write_checksum=1
    )
    stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return stream.compress(_tar() if data is None else data) + stream.flush()


def _chunks(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("window_log", [27, 28, 29, 30, 31])
def test_long_window_archives_install(tmp_path: Path, window_log: int) -> None:
    data = long_window(window_log)
    assert zstandard.get_frame_parameters(data).window_size == 1 << window_log
    publish_raw_archives(tmp_path / "remote", KEY, {"long.tar.zst": data})
    run = install(tmp_path / "cache", tmp_path / "remote", KEY)
    assert run.code == 0
    assert view(CachePaths(tmp_path / "cache").version_dir(KEY)) == EXPECTED


def test_long_window_archives_install_from_hf_shards(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    publish_raw_archives(repo, KEY, {"long.tar.zst": long_window(31)}, hf_shards=True, hf_prefix="mujoco")
    hub.commit(
        "org/long", {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    )
    cache = tmp_path / "cache"
    source = "hf://datasets/org/long/mujoco"
    args = ["install", "--cache", str(cache), "--source", source, "--version", str(KEY)]
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert main(args) == 0
    assert view(CachePaths(cache).version_dir(KEY)) == EXPECTED
    assert any(r.range for r in hub.log.find("*shards*"))


def test_a_window_above_the_configured_bound_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_raw_archives(tmp_path / "remote", KEY, {"long.tar.zst": long_window(30)})
    monkeypatch.setenv("DSCACHE_ZSTD_MAX_WINDOW", "256Mi")
    assert install(tmp_path / "cache", tmp_path / "remote", KEY).code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dscache: error: {KEY}: archive long.tar.zst: zstd window of 1.0 GiB (1073741824 bytes) is above "
        "the "
        "bound of 256.0 MiB (DSCACHE_ZSTD_MAX_WINDOW, at most 2Gi); set DSCACHE_ZSTD_MAX_WINDOW (the memory "
        "one "
        "extraction may take) to a size between the window the archive needs and 2Gi, or publish the archive "
        "with a smaller window"
    )
    assert not CachePaths(tmp_path / "cache").version_dir(KEY).exists()


def test_a_window_above_what_zstd_can_make_is_refused(tmp_path: Path) -> None:
    data = bytearray(long_window(20))
    assert data[4] & 0x20 == 0  # not single-segment: byte 5 is the window descriptor
    data[5] = (32 - 10) << 3  # 2**32: above zstd's largest window and the default bound
    with pytest.raises(ArchiveRejectedError) as err:
        extract_stream(_chunks(bytes(data)), tmp_path, "huge.tar.zst")
    assert str(err.value) == (
        "huge.tar.zst: zstd window of 4.0 GiB (4294967296 bytes) is above the bound of 2.0 GiB "
        "(DSCACHE_ZSTD_MAX_WINDOW, at most 2Gi)"
    )


def test_a_bad_bound_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_ZSTD_MAX_WINDOW", "4Gi")
    with pytest.raises(ArchiveRejectedError) as err:
        extract_stream(_chunks(long_window(20)), tmp_path, "x.tar.zst")
    assert str(err.value) == "x.tar.zst: DSCACHE_ZSTD_MAX_WINDOW='4Gi': must be between 1Ki and 2Gi"


def test_several_frames_and_skippable_frames_extract(tmp_path: Path) -> None:
    tar = _tar()
    half = len(tar) // 2
    skippable = (0x184D2A5E).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    data = long_window(20, tar[:half]) + skippable + long_window(28, tar[half:])
    result = extract_stream(_chunks(data, 999), tmp_path, "frames.tar.zst")
    assert result.files == {"a/big.bin": 300_000, "a/small.txt": 6}
    assert view(tmp_path) == EXPECTED


def test_a_later_frame_above_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tar = _tar()
    data = long_window(20, tar[:1000]) + long_window(29, tar[1000:])
    monkeypatch.setenv("DSCACHE_ZSTD_MAX_WINDOW", "128Mi")
    with pytest.raises(ArchiveRejectedError, match=r"zstd window of 512\.0 MiB \(536870912 bytes\) is above"):
        extract_stream(_chunks(data), tmp_path, "frames.tar.zst")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no zstd frame: not a .tar.zst archive"),
        (b"PK\x03\x04 not zstd", "not zstd data at byte 0"),
        (long_window(20)[:-2], "truncated: the zstd stream ends inside a frame, after "),
        (long_window(20) + b"\x00\x00\x00\x00", "not zstd data at byte "),
    ],
)
def test_frame_walker_refuses_what_is_not_one_complete_zstd_stream(data: bytes, message: str) -> None:
    walker = FrameWalker(1 << 31)
    with pytest.raises(ZstdStreamError, match=message.replace("(", r"\(").replace(".", r"\.")):
        for chunk in _chunks(data, 3):
            walker.feed(chunk)
        walker.finish()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000, 1 << 20])
def test_frame_walker_follows_frames_however_the_stream_is_cut(chunk: int) -> None:
    tar = _tar()
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    rle = zstandard.ZstdCompressor(write_checksum=False).compress(b"\0" * 300_000)  # RLE blocks
    data = long_window(20, tar[:5000]) + skippable + rle + long_window(27, tar[5000:]) + skippable
    walker = FrameWalker(1 << 27)
    for piece in _chunks(data, chunk):
        walker.feed(piece)
    walker.finish()
    assert walker.frames == 3
