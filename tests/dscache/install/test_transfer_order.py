"""The order an install starts its items in: the item that keeps a worker busiest first. An archive of
many small files extracts for far longer than it downloads (each file is a create on the volume), so
it must not be left for last, when the link would idle while one worker creates its files."""

from __future__ import annotations

import os
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.cli.app import main
from tests.factories import _info, publish_raw_archives, tar_zst
from tests.servers.files import FileServer

KEY = VersionKey("objects", "thor", "v1")


def test_an_archive_of_many_files_starts_before_a_larger_archive_of_one_file(
    tmp_path: Path, http_server: FileServer
) -> None:
    one_file = os.urandom(600_000)  # incompressible: 600 KB downloaded, one file created
    many = [(_info(f"small/f{i:03}.txt", b"0", size=100), (b"%03d" % i) * 33 + b"\n") for i in range(40)]
    publish_raw_archives(
        http_server.root,
        KEY,
        {
            "a_one.tar.zst": tar_zst([(_info("big.bin", b"0", size=len(one_file)), one_file)]),
            "b_many.tar.zst": tar_zst(many),  # a few KB downloaded, 40 files created
        },
    )
    cache = tmp_path / "cache"
    assert main(["install", "--cache", str(cache), "--source", http_server.url, "--version", str(KEY),
                 "--jobs", "1"]) == 0  # fmt: skip
    fetched = [r.path.rsplit("/", 1)[1] for r in http_server.log.find("*.tar.zst", method="GET")]
    assert list(dict.fromkeys(fetched)) == ["b_many.tar.zst", "a_one.tar.zst"]
