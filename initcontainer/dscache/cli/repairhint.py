"""The command that repairs one damaged version, as `dscache verify` suggests it.

A repair is an install of the version with `--repair`, and every install writes a ref: the command
must name a ref that already names the version (`--ref R`), or it would create a `default` ref beside
the user's. Of the refs naming it, one whose flags install (`--source`, `--version`, `--ref`) leaves it
exactly as it is (it names the version with the entry a flags install writes) gets the flags command,
with the remote and layout of the version's record; a ref written by `install -f` (`Ref.origin`), or
one a flags install would change (a manifest's link strategy or env name), gets `-f FILE` (the
manifest it came from, which only the user has). A version no ref names gets a command with
`--ref NAME`: the repair makes that ref name it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.store.records import CompleteRecord, Ref

NEW_REF = "NAME"


@dataclass(frozen=True)
class RepairHint:
    """`command` (shell-quoted, `FILE`/`NAME` where only the user knows the value) and `note`: what
    to fill in and which other refs it serves ("" if nothing)."""

    key: VersionKey
    command: str
    note: str = ""

    def line(self) -> str:
        return f"  {self.key}: {self.command}" + (f"  ({self.note})" if self.note else "")


def _quoted(args: list[str]) -> str:
    return "dscache " + " ".join(shlex.quote(a) for a in args)


def _flags_args(
    cache_root: Path, key: VersionKey, origin: tuple[str, str], ref: str, tail: list[str]
) -> list[str]:
    remote, layout = origin
    files = ["--layout", "Files"] if layout.lower() == "files" else []
    where = ["--cache", str(cache_root), "--source", remote, *files]
    return ["install", *where, "--version", str(key), "--ref", ref, *tail]


def _flags_keep(ref: Ref, key: VersionKey, remote: str, layout: str) -> bool:
    """Whether a flags install of `key` from `remote` into `ref` leaves its versions as they are."""
    from dscache.api.manifest import spec_from_flags
    from dscache.api.spec import SpecError
    from dscache.install.pipeline import build_ref, merge_ref

    try:
        spec = spec_from_flags(remote, "Files" if layout.lower() == "files" else "Archives", [str(key)])
    except SpecError:
        return False
    return merge_ref(ref, build_ref(spec, ref.name)).versions == ref.versions


def _remote_of(record: CompleteRecord | None, refs: list[Ref], layout: str) -> tuple[str, str] | None:
    """(remote, layout) of the version: its record's, else (record unreadable) the remote of the refs
    naming it when they list one single remote, with `layout`; None when unknown."""
    if record is not None:
        return record.remote, record.layout
    remotes = {r.remote for r in refs if r.remote and ", " not in r.remote}
    return (remotes.pop(), layout) if len(remotes) == 1 else None


def repair_hint(
    cache_root: Path,
    key: VersionKey,
    record: CompleteRecord | None,
    refs: list[Ref],
    *,
    content: bool,
    layout: str = "archives",
) -> RepairHint:
    """Pure but for parsing the remote as the flags would: the command that repairs `key` (its
    completion `record`, None if unreadable: then `layout` is the one its items record names) without
    creating or changing a ref; `refs`: every readable ref of the cache; `content`: verify hashed the
    files (the repair must too)."""
    tail = ["--repair", *(["--content"] if content else [])]
    naming = [r for r in refs if any(e.key == key for e in r.versions)]
    origin = _remote_of(record, naming, layout)
    for ref in naming:
        if origin is not None and ref.origin != "file" and _flags_keep(ref, key, *origin):
            others = [r.name for r in naming if r is not ref]
            note = f"refs {', '.join(others)} name it too: one repair serves them all" if others else ""
            return RepairHint(key, _quoted(_flags_args(cache_root, key, origin, ref.name, tail)), note)
    if naming:
        ref = naming[0]
        args = ["install", "-f", "FILE", "--cache", str(cache_root), "--ref", ref.name, *tail]
        note = f"FILE: the DatasetCache manifest ref {ref.name} was installed from"
        others = [r.name for r in naming[1:]]
        note += f"; refs {', '.join(others)} name it too: one repair serves them all" if others else ""
        return RepairHint(key, _quoted(args), note)
    note = f"no ref names it (dscache gc removes it): the repair makes ref {NEW_REF} name it"
    args = _flags_args(cache_root, key, origin or ("URL", "archives"), NEW_REF, tail)
    return RepairHint(key, _quoted(args), note)
