"""Progress speaks one unit system (binary sizes and rates, as `status` does), and a person at a
terminal gets the rich bar, `dscache demo` included."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from dscache.api.spec import DatasetCacheSpec
from dscache.cli.render import JsonSink, PlainSink, RichSink
from dscache.install.pipeline import install
from dscache.remotes.base import Pin
from dscache.remotes.file import FileRemote
from tests.factories import make_tree, version_items

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
MIB = 1 << 20


def test_the_rich_bar_counts_bytes_and_rates_in_binary_units() -> None:
    screen = io.StringIO()
    sink = RichSink(Console(file=screen, force_terminal=True, width=160, color_system=None))
    sink.emit("start", {"bytesTotal": 10 * MIB, "itemsTotal": 4})
    for done in (1, 2, 3, 4):
        time.sleep(0.05)
        sink.emit(
            "progress",
            {"bytesDone": done * 2 * MIB, "bytesTotal": 10 * MIB, "itemsDone": done, "itemsTotal": 4},
        )
    sink.close()
    text = ANSI.sub("", screen.getvalue())
    assert "8.0/10.0 MiB" in text and "archives 4/4" in text
    assert re.search(r"\d+\.\d MiB/s", text), text
    assert not re.search(r"\d[kMG]B/s|\d\.\d [kMG]B/s", text), text  # no decimal units anywhere


def test_plain_lines_use_the_same_units() -> None:
    out = io.StringIO()
    PlainSink(out, every=0).emit(
        "progress", {"bytesDone": 3 * MIB, "bytesTotal": 12 * MIB, "itemsDone": 1, "itemsTotal": 4,
                     "bytesPerSecond": MIB + MIB // 2}
    )  # fmt: skip
    assert out.getvalue() == "dscache: progress  25.0% 3.0 MiB/12.0 MiB 1.5 MiB/s archives 1/4\n"


def _run_on_a_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as a person at a shell would; (code, screen)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def test_demo_shows_the_rich_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    code, screen = _run_on_a_terminal([sys.executable, "-m", "dscache", "demo", "--dir", str(tmp_path / "d")])
    text = ANSI.sub("", screen)
    assert code == 0, text
    assert "━" in text and "install " in text  # rich's bar and its label
    assert re.search(r"\d+\.\d/\d+\.\d [KM]iB", text), text  # bytes done/total, binary units
    assert "dscache: progress " not in text  # not the plain lines meant for Job logs
    assert "Try next" in text


class _LateLast(FileRemote):
    """A local remote whose file `f0.txt` (the smallest, so the last one started) answers seconds
    after the others (a slow object)."""

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        if path.endswith("/f0.txt"):
            time.sleep(3.0)
        return super().stream(path, offset, length, pin)


def test_files_progress_counts_each_file_as_it_lands(tmp_path: Path) -> None:
    """Five small files go as one batch: the count moves as each lands, not once the batch returns."""
    remote = tmp_path / "remote"
    make_tree(remote / "objects/toys/v1", {f"f{i}.txt": 100 + i for i in range(5)})
    spec = DatasetCacheSpec.model_validate(
        {
            "source": {"file": {"path": str(remote)}},
            "layout": "Files",
            "versions": version_items("objects/toys=v1"),
        }
    )
    events = io.StringIO()
    install(
        spec, tmp_path / "c", "default", JsonSink(events), jobs=1, remote_factory=lambda s: _LateLast(remote)
    )
    progress = [e for e in map(json.loads, events.getvalue().splitlines()) if e["event"] == "progress"]
    counts = [(e["archivesDone"], e["archivesTotal"]) for e in progress]
    assert (4, 5) in counts, counts  # while f0.txt is late, the four others are counted
    assert counts[-1] == (5, 5)
