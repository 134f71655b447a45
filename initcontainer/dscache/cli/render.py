"""Rendering the installer's events for people (rich bar on a terminal), Job logs (plain lines) and
machines (one JSON object per line). The event names and fields are `dscache.install.progress`'s.
Sizes and rates are binary everywhere (KiB, MiB/s), as in `dscache status`.

A reader that goes away (`dscache install --json | head -c 100`) only stops the output: the sink
notes it (`output_lost`) and drops the rest, and the install carries on to the end, since stopping a
writer half-way for a closed pipe would leave work to redo; the command then exits 141 (SIGPIPE's code).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from dscache.api.sizes import format_rate, format_size
from dscache.cli.output import write_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn, Task


class _Lines:
    """Lines to a stream that stop, without an exception, once its reader has gone (EPIPE)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.output_lost = False

    def line(self, text: str) -> None:
        if not self.output_lost and not write_line(self.out, text):
            self.output_lost = True


class JsonSink(_Lines):
    """One JSON object per line on stdout: `{"event": ..., "time": ..., ...}`."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__(out or sys.stdout)

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        self.line(json.dumps({"event": event, "time": round(time.time(), 3), **fields}))

    def close(self) -> None:
        pass


class QuietSink:
    """`-q`: no progress at all; an error is still reported (`dscache: error: ...`)."""

    output_lost = False

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        if event == "error":
            write_line(sys.stderr, f"dscache: error: {fields['message']}")

    def close(self) -> None:
        pass


def unreferenced_note(fields: dict[str, Any]) -> str:
    """Pure: the end of a `done` line naming the versions the ref no longer names ('' if none)."""
    gone = fields.get("unreferenced") or []
    if not gone:
        return ""
    them = "it" if len(gone) == 1 else "them"
    return (
        f"; ref {fields['ref']} no longer names {', '.join(gone)} "
        f"(gc may remove {them}; --ref NAME keeps separate refs)"
    )


def share_done_line(fields: dict[str, Any]) -> str:
    """The `share_done` event (a worker of `install --workers K` fetched its share, and another
    publishes, or had published: `publishedBy`)."""
    by = fields.get("publishedBy")
    then = (
        "the last worker to finish publishes"
        if by is None
        else f"worker {by} had already published every version and written ref {fields['ref']}"
    )
    received = fields.get("downloadedBytes")
    size = "" if received is None else f", {format_size(received)},"
    return (
        f"worker {fields['worker']} of {fields['workers']} done: fetched its {fields['items']} item(s)"
        f"{size} in {fields['seconds']:.1f}s; {then}"
    )


def index_ranges(indexes: list[int]) -> str:
    """Pure: sorted worker indexes as people read them, a run of three or more as a range:
    [1, 2] -> `1, 2`; [0, 1, 2, 3, 5] -> `0-3, 5`."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ", ".join(str(i) for i in r) for r in runs)


def covering_line(fields: dict[str, Any]) -> str:
    """The second `start` of a worker of `install --workers K` (one with `covering`): done with its
    own share, it fetches what is left of the indexes no running worker holds."""
    others = index_ranges(fields["covering"])
    return (
        f"worker {fields['worker']} of {fields['workers']}: its share is done; fetching "
        f"{fields['coveringItems']} item(s) left of worker(s) {others}, which no running worker holds"
    )


class PlainSink(_Lines):
    """Periodic human lines for logs that are not a terminal (Kubernetes Job logs), each `dscache: `.
    `items` names what the install counts: `archives` (layout Archives) or `files` (layout Files)."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0, items: str = "archives") -> None:
        super().__init__(out or sys.stderr)
        self.every = every
        self.items = items
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
                f"{format_rate(fields['bytesPerSecond'])} "
                f"{self.items} {fields['itemsDone']}/{fields['itemsTotal']}"
            )
        elif event == "start" and fields.get("covering"):
            line = covering_line(fields)
        elif event == "start":
            line = (
                f"installing {len(fields['versions'])} version(s) from {fields['remote']}: "
                f"{format_size(fields['bytesTotal'])} in {fields['itemsTotal']} item(s)"
            )
            shared = fields.get("shared") or {}
            if shared.get("items"):
                line += (
                    f", {shared['items']} of them ({format_size(shared['bytes'])}) linked from "
                    "published versions"
                )
        elif event == "version_published":
            line = (
                f"published {fields['version']}: {fields['files']} files, {format_size(fields['bytes'])} "
                f"(commit {fields['seconds']:.1f}s)"
            )
        elif event == "done":
            line = (
                f"done: {len(fields['published'])} published, {len(fields['present'])} already present, "
                f"ref {fields['ref']} ({fields['seconds']:.1f}s)"
            ) + unreferenced_note(fields)
        elif event == "error":
            line = f"error: {fields['message']}"
        elif event == "share_done":
            line = share_done_line(fields)
        else:
            line = f"{event}: {json.dumps(fields)}"
        self.line(f"dscache: {line}")

    def close(self) -> None:
        pass


class RichSink:
    """A rich progress bar (bytes, binary rate, ETA, archives or files) for interactive terminals, on
    stderr; `items` as PlainSink's."""

    output_lost = False

    def __init__(self, console: Console | None = None, items: str = "archives") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _binary_rate_column(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[items]}"),
            console=self.console,
        )
        self.items = items
        self.task = self.progress.add_task("install", total=None, items="", start=False)

    def emit(self, event: str, fields: dict[str, Any]) -> None:
        from rich.markup import escape  # names and messages are text, not markup

        if event == "start":
            if fields.get("covering"):
                self.console.print(covering_line(fields), highlight=False, markup=False)
            self.progress.start()
            self.progress.start_task(self.task)
            self.progress.update(self.task, total=fields["bytesTotal"] or None)
        elif event == "progress":
            self.progress.update(
                self.task,
                completed=fields["bytesDone"],
                items=f"{self.items} {fields['itemsDone']}/{fields['itemsTotal']}",
            )
        elif event == "version_published":
            if self.progress.tasks[0].finished:  # every byte is in: the bar ends above `published`
                self.progress.stop()
            self.console.print(f"published [bold]{escape(fields['version'])}[/]: {fields['files']} files")
        elif event == "error":
            self.console.print(f"[red]dscache: error:[/] {escape(fields['message'])}", highlight=False)
        elif event == "share_done":
            self.progress.stop()
            self.console.print(share_done_line(fields), highlight=False, markup=False)
        elif event == "done":
            self.progress.stop()
            self.console.print(
                f"done: {len(fields['published'])} published, {len(fields['present'])} already present "
                f"({fields['seconds']:.1f}s)" + unreferenced_note(fields),
                highlight=False,
                markup=False,
            )

    def close(self) -> None:
        self.progress.stop()


def _binary_rate_column() -> ProgressColumn:
    """rich's TransferSpeedColumn counts in decimal (MB/s); this one in MiB/s, like every size shown."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BinaryRateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else format_rate(speed), style="progress.data.speed")

    return BinaryRateColumn()


def make_sink(
    as_json: bool, verbosity: int = 0, items: str = "archives"
) -> JsonSink | RichSink | PlainSink | QuietSink:
    """JSON lines for `--json`, nothing but errors with `-q` (verbosity < 0), a rich bar on a terminal,
    plain lines otherwise: every 5 s, or every second with `-v`. `items`: what progress counts
    (`archives`, or `files` for layout Files)."""
    if as_json:
        return JsonSink()
    if verbosity < 0:
        return QuietSink()
    if sys.stderr.isatty():
        return RichSink(items=items)
    return PlainSink(every=1.0 if verbosity > 0 else 5.0, items=items)
