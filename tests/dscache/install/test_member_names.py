"""Names are bytes: what is on disk (cache, links, scratch) is exactly the archive's name bytes, whatever
the locale, for NFD and NFC Unicode, names that are not UTF-8, pax, ustar and GNU long names, symlink and
hardlink targets.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from dscache.api.names import VersionKey
from dscache.store.paths import INVENTORY, CachePaths
from tests.dscache.install.roundtrip import VIEWS, child_env, install, journey, view
from tests.factories import publish_raw_archives

KEY = VersionKey("objects", "names", "v1")
NFD = "cafe\u0301"  # as macOS writes it
NFC = "caf\u00e9"
LATIN1 = os.fsdecode(b"caf\xe9")  # not UTF-8: the byte 0xE9 alone
LONG_DIR = "d" * 120  # a GNU long name (> 100 bytes)

LOCALES = {
    "LANG=C": {"LANG": "C"},
    "LC_ALL=C.UTF-8": {"LC_ALL": "C.UTF-8"},
    "LANG=en_US.UTF-8": {"LANG": "en_US.UTF-8"},
    "unset": {},
}


def _member(
    name: str, data: bytes | None = None, *, symlink: str = "", hardlink: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    if symlink:
        info.type, info.linkname = tarfile.SYMTYPE, symlink
    elif hardlink:
        info.type, info.linkname = tarfile.LNKTYPE, hardlink
    else:
        info.size = len(data or b"")
    return info


def _archive(fmt: int, members: list[tuple[str, bytes | None, str, str]]) -> bytes:
    """A .tar.zst in `fmt`; names are written as their UTF-8 bytes (lone surrogates as the raw byte)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for name, data, symlink, hardlink in members:
            info = _member(name, data, symlink=symlink, hardlink=hardlink)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return zstandard.ZstdCompressor(write_checksum=True).compress(buf.getvalue())


ARCHIVES = {
    "pax.tar.zst": _archive(  # non-ASCII names in pax headers (UTF-8, or hdrcharset=BINARY)
        tarfile.PAX_FORMAT,
        [
            (f"pax/{NFD}.txt", b"nfd\n", "", ""),
            (f"pax/{NFC}.txt", b"nfc\n", "", ""),
            (f"pax/{LATIN1}-binary.txt", b"latin-1 in pax\n", "", ""),
            (f"pax/link-{NFD}", None, f"{NFD}.txt", ""),
        ],
    ),
    "gnu.tar.zst": _archive(  # raw bytes in the header, GNU long names and long link targets
        tarfile.GNU_FORMAT,
        [
            (f"gnu/{LATIN1}.txt", b"latin-1\n", "", ""),
            (f"gnu/{LONG_DIR}/{NFD}.txt", b"long nfd\n", "", ""),
            (f"gnu/hard-{LATIN1}", None, "", f"gnu/{LATIN1}.txt"),
            (f"gnu/link-{LATIN1}", None, f"{LATIN1}.txt", ""),
            ("gnu/long-link", None, f"{LONG_DIR}/{NFD}.txt", ""),
        ],
    ),
    "ustar.tar.zst": _archive(  # ustar: raw UTF-8 bytes, a name split into prefix and name
        tarfile.USTAR_FORMAT,
        [(f"ustar/{'p' * 90}/{NFD}.txt", b"ustar nfd\n", "", "")],
    ),
}

NFD_B, NFC_B, LATIN1_B, LONG_B = b"cafe\xcc\x81", b"caf\xc3\xa9", b"caf\xe9", b"d" * 120
EXPECTED: dict[bytes, bytes | None] = {
    b"pax": None,
    b"pax/" + NFD_B + b".txt": b"nfd\n",
    b"pax/" + NFC_B + b".txt": b"nfc\n",
    b"pax/" + LATIN1_B + b"-binary.txt": b"latin-1 in pax\n",
    b"pax/link-" + NFD_B: b"nfd\n",
    b"gnu": None,
    b"gnu/" + LATIN1_B + b".txt": b"latin-1\n",
    b"gnu/" + LONG_B: None,
    b"gnu/" + LONG_B + b"/" + NFD_B + b".txt": b"long nfd\n",
    b"gnu/hard-" + LATIN1_B: b"latin-1\n",
    b"gnu/link-" + LATIN1_B: b"latin-1\n",
    b"gnu/long-link": b"long nfd\n",
    b"ustar": None,
    b"ustar/" + b"p" * 90: None,
    b"ustar/" + b"p" * 90 + b"/" + NFD_B + b".txt": b"ustar nfd\n",
}


@pytest.mark.parametrize("locale", list(LOCALES))
def test_names_on_disk_are_the_archive_bytes_in_every_locale(tmp_path: Path, locale: str) -> None:
    remote = tmp_path / "remote"
    publish_raw_archives(remote, KEY, ARCHIVES)
    trip = journey(tmp_path, remote, KEY, env=child_env(**LOCALES[locale]))
    assert trip.install.code == 0, trip.install.stderr
    assert trip.verify is not None and trip.verify.code == 0, trip.verify.stderr
    assert set(trip.places) == set(VIEWS)
    for name, place in trip.places.items():
        assert view(place) == EXPECTED, name
    # the records are JSON: a name that is not UTF-8 is kept as its bytes' surrogate escapes
    inventory = json.loads((CachePaths(tmp_path / "cache").version_dir(KEY) / INVENTORY).read_text())
    assert inventory["files"]["gnu/caf\udce9.txt"] == len(b"latin-1\n")
    assert inventory["links"]["gnu/link-caf\udce9"] == "caf\udce9.txt"


def test_a_refused_name_that_is_not_utf8_is_named_cleanly(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    evil = _archive(tarfile.GNU_FORMAT, [(f"../{LATIN1}.txt", b"x", "", "")])
    publish_raw_archives(remote, KEY, {"evil.tar.zst": evil})
    run = install(tmp_path / "cache", remote, KEY, env=child_env(LC_ALL="C.UTF-8"))
    assert run.code == 1
    assert run.stderr.splitlines()[-1] == (
        f"dscache: error: {KEY}: member '../caf\\udce9.txt' of archive evil.tar.zst: path contains '..'; the "
        "archive as published holds a member dscache never extracts, and nothing of the version was "
        "installed: "
        "rebuild the archive (dscache publish packs only files, directories and symlinks inside the tree) "
        "and "
        "publish the version again"
    )
    assert "Traceback" not in run.stderr
