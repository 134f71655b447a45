"""An install team: K cooperating workers of one install, the one writer of a volume while it runs.

`dscache install --workers K` runs K worker processes (the pods of an Indexed Job, or processes on
one machine) that each transfer a share of the items into the shared staging dirs. The writer lock
(`lock.py`) stays the gate: a worker takes it only for short steps (joining, the final commit), and
between them the team record at `<cache>/.dscache/team.json` names the team that owns the volume.
`WriterLock` admits a writer only when no team record is there or it names the writer's own team, so
"one writer per volume" becomes "one install at a time per volume" with K cooperating workers.

Each worker also holds a member lease `<cache>/.dscache/team/<index>.lock` (the same filelock lease
as the writer lock) for as long as it transfers, so two incarnations of one worker index never run
at once, and writes its progress to `<index>.progress.json` every tick. Liveness is judged the way
the writer lock judges its holder, without comparing clocks: a writer outside the team takes the
volume over once the team record and every file under `team/` (lease markers, heartbeat every 5 s;
progress files, every 0.5 s) stayed unchanged for a whole lease on its own monotonic clock. It then
removes the record, and every member stops at its next fence. A worker also touches the team record
every 5 s from joining to leaving (`TeamHeartbeat`), so one that waits for its member lease (the
retry of a dead worker waits a lease for its predecessor's) keeps the team alive meanwhile.

Layout:
```
<cache>/.dscache/team.json                 {"team": ID, "workers": K}
<cache>/.dscache/team/<index>.lock         member lease of worker <index>
<cache>/.dscache/team/<index>.progress.json {"team": ID, "bytesDone": N, "itemsDone": M}
<cache>/.dscache/team/ended.json           {"team": ID, "publishedBy": I}, the last team's end
```
A team ends when worker I, under the writer lock, finds every item done: it publishes the versions,
writes the ref, records itself in `ended.json` and removes the team record. A worker that gets the
lock after that (its own share was done before the end, its commit waited for the lock) learns from
`ended.json` that its team was published, and by whom, and leaves the ref alone: writing it again
would undo what anyone changed since (a release, another install of the ref).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from dscache.store.atomic import read_json, write_json_atomic

TEAM_RECORD = "team.json"
TEAM_DIR = "team"
ENDED = "ended.json"

Signature = tuple[tuple[str, int, int, int], ...]
"""(name, mtime_ns, inode, ctime_ns) of the team record and of every file under `team/`."""


@dataclass(frozen=True)
class TeamRecord:
    """The team that owns the volume: its id and its number of workers."""

    team: str
    workers: int

    def to_json(self) -> dict[str, Any]:
        return {"team": self.team, "workers": self.workers}


def record_path(control: Path) -> Path:
    return control / TEAM_RECORD


def member_lock_path(control: Path, index: int) -> Path:
    return control / TEAM_DIR / f"{index}.lock"


def progress_path(control: Path, index: int) -> Path:
    return control / TEAM_DIR / f"{index}.progress.json"


def ended_path(control: Path) -> Path:
    return control / TEAM_DIR / ENDED


def read_team(control: Path) -> TeamRecord | None:
    """The team record, or None when there is none (an unreadable record counts as a team of 0 workers,
    so that it is judged by its liveness like any other)."""
    try:
        data = read_json(record_path(control))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return TeamRecord("", 0)
    if not isinstance(data, dict):
        return TeamRecord("", 0)
    return TeamRecord(str(data.get("team", "")), int(data.get("workers", 0)))


def write_team(control: Path, record: TeamRecord) -> None:
    """Write the team record of a new team (the record of the last team's end goes); call under the
    writer lock."""
    ended_path(control).unlink(missing_ok=True)
    write_json_atomic(record_path(control), record.to_json(), pretty=False)


def end_team(control: Path, *, team: str | None = None, publisher: int | None = None) -> None:
    """Remove the team record and the progress files; call under the writer lock. With `team` and
    `publisher` (the index of its worker that published the versions and wrote the ref), record that
    end first (`published_by`); without, forget the record of any earlier end. Member lease markers
    are left to their holders (a released lease removes its own marker)."""
    if team is not None and publisher is not None:
        ended_path(control).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(ended_path(control), {"team": team, "publishedBy": publisher}, pretty=False)
    else:
        ended_path(control).unlink(missing_ok=True)
    record_path(control).unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(control / TEAM_DIR):
            if entry.endswith(".progress.json"):
                (control / TEAM_DIR / entry).unlink(missing_ok=True)


def signature(control: Path) -> Signature:
    """Pure read: what changes while a team is alive (see the module docstring)."""
    paths = [record_path(control)]
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        paths += [control / TEAM_DIR / entry for entry in sorted(os.listdir(control / TEAM_DIR))]
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.append((path.name, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    return tuple(found)


@dataclass
class TeamWatch:
    """A writer outside the team watching it: `dead(sig, now)` once `sig` stayed the same for `lease`
    seconds of the watcher's monotonic clock `now`."""

    lease: float
    seen: Signature | None = None
    since: float = 0.0

    def dead(self, sig: Signature, now: float) -> bool:
        if sig != self.seen:
            self.seen, self.since = sig, now
            return False
        return now - self.since >= self.lease


def published_by(control: Path, team: str) -> int | None:
    """The index of the worker of `team` that published its versions and ended it, when the last team
    to end was `team` and ended so (`end_team`); else None."""
    try:
        data = read_json(ended_path(control))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("team") != team or not isinstance(data.get("publishedBy"), int):
        return None
    return int(data["publishedBy"])


def read_progress(control: Path, index: int, team: str) -> tuple[int, int] | None:
    """(bytes, items) worker `index` of `team` last reported as done of its share, or None."""
    try:
        data = read_json(progress_path(control, index))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("team") != team:
        return None
    return int(data.get("bytesDone", 0)), int(data.get("itemsDone", 0))


def write_progress(control: Path, index: int, team: str, bytes_done: int, items_done: int) -> None:
    """Report worker `index`'s share as done so far (not durable: a heartbeat, not a record)."""
    data = {"team": team, "bytesDone": bytes_done, "itemsDone": items_done}
    write_json_atomic(progress_path(control, index), data, pretty=False, durable=False)


@dataclass
class TeamHeartbeat:
    """While in a `with`: touch the team record every `every` seconds while it names `team`."""

    control: Path
    team: str
    every: float = 5.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            record = read_team(self.control)
            if record is not None and record.team == self.team:
                with contextlib.suppress(OSError):
                    os.utime(record_path(self.control))

    def __enter__(self) -> TeamHeartbeat:
        self._thread = threading.Thread(target=self._beat, name="dscache-team-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
