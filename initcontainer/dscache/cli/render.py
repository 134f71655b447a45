"""Rendering the installer's events for people (rich bar on a terminal), Job logs (plain lines) and
machines (one JSON object per line). The event names and fields are `dscache.install.progress`'s.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from dscache.api.sizes import format_size
from dscache.install.progress import Sink


class JsonSink:
    """One JSON object per line on stdout: `{"event": ..., "time": ..., ...}`."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        self.out.write(json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class PlainSink:
    """Periodic human lines for logs that are not a terminal (Kubernetes Job logs)."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0) -> None:
        self.out = out or sys.stderr
        self.every = every
        self._last = 0.0

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        if event == "progress":
            if now - self._last < self.every:
                return
            self._last = now
            total = fields["bytesTotal"] or 1
            line = (
                f"progress {100 * fields['bytesDone'] / total:5.1f}% "
                f"{format_size(fields['bytesDone'])}/{format_size(fields['bytesTotal'])} "
                f"{format_size(fields['bytesPerSecond'])}/s "
                f"archives {fields['archivesDone']}/{fields['archivesTotal']}"
            )
        elif event == "start":
            line = (
                f"installing {len(fields['versions'])} version(s) from {fields['remote']}: "
                f"{format_size(fields['bytesTotal'])} in {fields['archivesTotal']} item(s)"
            )
        elif event == "version_published":
            line = (
                f"published {fields['version']}: {fields['files']} files, {format_size(fields['bytes'])} "
                f"in {fields['seconds']:.1f}s"
            )
        elif event == "done":
            line = (
                f"done: {len(fields['published'])} published, {len(fields['present'])} already present, "
                f"ref {fields['ref']} ({fields['seconds']:.1f}s)"
            )
        elif event == "error":
            line = f"dscache: error: {fields['message']}"
        else:
            line = f"{event}: {json.dumps(fields)}"
        self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class RichSink:
    """A rich progress bar (bytes, rate, ETA, archives) for interactive terminals."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[items]}"),
            console=self.console,
        )
        self.task = self.progress.add_task("install", total=None, items="", start=False)

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        if event == "start":
            self.progress.start()
            self.progress.start_task(self.task)
            self.progress.update(self.task, total=fields["bytesTotal"] or None)
        elif event == "progress":
            self.progress.update(
                self.task,
                completed=fields["bytesDone"],
                items=f"archives {fields['archivesDone']}/{fields['archivesTotal']}",
            )
        elif event == "version_published":
            self.console.print(f"published [bold]{fields['version']}[/]: {fields['files']} files")
        elif event == "error":
            self.console.print(f"[red]dscache: error:[/] {fields['message']}", highlight=False)
        elif event == "done":
            self.progress.stop()
            self.console.print(
                f"done: {len(fields['published'])} published, {len(fields['present'])} already present "
                f"({fields['seconds']:.1f}s)"
            )

    def close(self) -> None:
        self.progress.stop()


def make_sink(as_json: bool) -> Sink:
    """JSON lines for `--json`, a rich bar on a terminal, plain periodic lines otherwise."""
    if as_json:
        return JsonSink()
    if sys.stderr.isatty():
        return RichSink()
    return PlainSink()
