"""One version's staging dir, and the private paths every transfer attempt writes to.

An attempt of an item never writes where another process could: it streams into a path of its own,
named by a random token (`parts/<name>.<token>` for a plain file, `archives/<name>.d.<token>` for an
archive's extraction), and only a rename, done after the writer lock's fence, makes those bytes the
item's result (`files/<name>`, `archives/<name>.d` with its `.done.json`). A writer that lost the lock
while it was paused (SIGSTOP, a frozen VM) has worker processes that resume with it and keep writing
until its fence stops them: their bytes land in their own attempt's paths, never in the new writer's,
and their renames are refused by the fence.

A partial file of a crashed or stopped attempt is resumed by copying it, never by renaming it or
appending to it: the attempt that wrote it may still hold it open (a stopped writer's worker), and
an open file follows its inode through a rename, into `files/` and into the published version.
`adopt_partial` takes the partial holding the most bytes whose pin record names the object the
listing names now (a transfer in parts records the ranges it finished: `parts.py`), copies it into
the new attempt's own partial (`shutil.copyfile`, in-kernel with sendfile on Linux)
and removes every other attempt's partial of the item. The copy costs one read and one write of the
partial, on resume only, against a download of it.

Bookkeeping names stay within NAME_MAX (255 bytes) for every legal item name: an item's last name
component longer than `STEM_MAX` bytes is replaced, in the names of its partials, pin records,
extraction dirs and done records only, by a stem of exactly `STEM_MAX + 1` bytes (a readable prefix,
`~` padding and the name's sha256), which no verbatim stem can equal (`stem`). The longest suffix
added to a stem is a pin record's `.<token>.json` (22 bytes).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from dscache.layouts.plan import NAME_MAX, WorkItem
from dscache.remotes.base import Pin
from dscache.store.atomic import read_json, write_json_atomic
from dscache.store.fsops import rmtree_readonly

_TOKEN = re.compile(r"[0-9a-f]{16}")


STEM_MAX = NAME_MAX - len(".0123456789abcdef.json") - 1
"""Longest last name component of an item used verbatim in staging's bookkeeping names (232 bytes)."""


def stem(name: str) -> str:
    """Pure: `name` ('/'-separated item name) with its last component as staging's bookkeeping names
    start: verbatim up to `STEM_MAX` bytes (file system encoding), else `STEM_MAX + 1` bytes: the
    component's first characters, `~` padding and `~<sha256 of the component, hex>`."""
    parent, _, base = name.rpartition("/")
    raw = os.fsencode(base)
    if len(raw) <= STEM_MAX:
        return name
    digest = "~" + hashlib.sha256(raw).hexdigest()
    room = STEM_MAX + 1 - len(digest)
    prefix = raw[:room].decode("utf-8", "ignore")
    prefix += "~" * (room - len(os.fsencode(prefix)))
    return f"{parent}/{prefix}{digest}" if parent else prefix + digest


def new_token() -> str:
    """A name for one attempt's private paths: 16 lower-case hex digits."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class StagingPaths:
    """Layout of one version's staging dir."""

    root: Path

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    def archive_dir(self, name: str) -> Path:
        """An archive's extraction, once an attempt settled it (see `settle_dir`)."""
        return self.archives / f"{stem(name)}.d"

    def archive_attempt(self, name: str, token: str) -> Path:
        """Where attempt `token` extracts archive `name`."""
        return self.archives / f"{stem(name)}.d.{token}"

    def archive_attempts(self, name: str) -> list[str]:
        """Tokens of the extraction dirs attempts left for archive `name`."""
        return sorted(_tokens(self.archive_attempt(name, "").parent, f"{Path(stem(name)).name}.d.", ""))

    def archive_done(self, name: str) -> Path:
        return self.archives / f"{stem(name)}.done.json"

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    def part(self, name: str, token: str) -> Path:
        """Attempt `token`'s partial copy of the plain file `name`."""
        return self.parts / f"{stem(name)}.{token}"

    def pin(self, name: str, token: str) -> Path:
        """What identifies the remote object of `part(name, token)`."""
        return self.root / "pins" / f"{stem(name)}.{token}.json"

    def file_attempts(self, name: str) -> list[str]:
        """Tokens of the partial copies and pin records attempts left for the file `name`."""
        base = Path(stem(name)).name
        found = _tokens(self.part(name, "").parent, f"{base}.", "")
        found |= _tokens(self.pin(name, "").parent, f"{base}.", ".json")
        return sorted(found)

    @property
    def tree(self) -> Path:
        return self.root / "tree"


def _tokens(directory: Path, prefix: str, suffix: str) -> set[str]:
    """Tokens `t` of the entries `<prefix><t><suffix>` of `directory`."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    cut = len(suffix)
    found = set()
    for entry in names:
        if entry.startswith(prefix) and entry.endswith(suffix):
            token = entry[len(prefix) : len(entry) - cut]
            if _TOKEN.fullmatch(token):
                found.add(token)
    return found


def discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def remove_quietly(path: Path) -> None:
    """Delete an attempt's file or dir, as far as possible: what another process is still writing
    there (a writer that lost the lock) is no concern of the caller's, and is gone with staging."""
    try:
        rmtree_readonly(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def settle_dir(attempt: Path, result: Path) -> None:
    """Make an extraction dir the item's result by renaming it there; call after the fence. A result
    dir already there was left by a run that died before writing its done record."""
    if result.is_dir() and not result.is_symlink():
        rmtree_readonly(result)
    os.rename(attempt, result)


Span = tuple[int, int]


@dataclass(frozen=True)
class Adopted:
    """What a new attempt of a file starts from: the pin, and the byte ranges [start, stop) of the
    object its partial file already holds (empty: no partial)."""

    pin: Pin
    done: list[Span] = field(default_factory=list)


def _saved(record: Path, part: Path) -> tuple[Pin, list[Span]] | None:
    """The pin of a partial and the ranges it holds: the record's `done` ranges (a transfer in parts)
    or, for a record without them, the file's length from byte 0. None if unreadable."""
    try:
        data = read_json(record)
        pin = Pin.from_json(data)
        have = part.stat().st_size
        raw = data.get("done") if isinstance(data, dict) else None
        if raw is None:
            return pin, [(0, have)] if have else []
        done = [(int(a), int(b)) for a, b in raw]
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return pin, [(a, b) for a, b in done if 0 <= a < b <= have]


def record_json(pin: Pin, done: list[Span] | None = None) -> dict[str, object]:
    """Pure: a pin record's content: the pin, and (a transfer in parts) the ranges the partial holds."""
    data: dict[str, object] = dict(pin.to_json())
    if done is not None:
        data["done"] = [list(span) for span in done]
    return data


def best_partial(
    staging: StagingPaths, item: WorkItem, fresh: Pin, tokens: list[str] | None = None
) -> tuple[int, Pin, list[Span], Path] | None:
    """The partial file a new attempt of `item` would resume from, reading only: among the attempts
    `tokens` (default: every one left), the partial of the very object `fresh` names holding the most
    bytes, as (bytes it holds, its pin, its ranges, its path); None if there is none."""
    best: tuple[int, Pin, list[Span], Path] | None = None
    for other in staging.file_attempts(item.name) if tokens is None else tokens:
        part = staging.part(item.name, other)
        saved = _saved(staging.pin(item.name, other), part)
        if saved is None or not saved[0].identity.same_object(fresh.identity):
            continue
        pin, done = saved
        have = sum(b - a for a, b in done)
        end = max((b for _a, b in done), default=0)
        if (item.size is None or end <= item.size) and (best is None or have > best[0]):
            best = (have, pin, done, part)
    return best


def adopt_partial(staging: StagingPaths, item: WorkItem, token: str, fresh: Pin) -> Adopted:
    """What attempt `token` starts from, with its partial file in place: `fresh` and no partial,
    unless an earlier attempt left a partial of the very object the listing names now (`fresh`'s
    identity); then the partial holding the most bytes is copied into `part(item.name, token)`, and
    its record's pin, which knows what the remote vouched for, and its ranges are returned. Every
    earlier attempt's partial is removed.
    """
    others = [t for t in staging.file_attempts(item.name) if t != token]
    best = best_partial(staging, item, fresh, others)
    result = Adopted(fresh)
    if best is not None:
        _have, saved_pin, done, source = best
        own, record = staging.part(item.name, token), staging.pin(item.name, token)
        adopted = replace(saved_pin, identity=saved_pin.identity.merged(fresh.identity))
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, record_json(adopted, done), pretty=False, durable=False)
        try:
            shutil.copyfile(source, own)  # what the source holds now: a longer prefix is as good
        except FileNotFoundError:  # removed meanwhile, by a writer that took the lock over since
            discard(own, record)
        else:
            result = Adopted(adopted, done)
    for other in others:
        discard(staging.part(item.name, other), staging.pin(item.name, other))
    return result
