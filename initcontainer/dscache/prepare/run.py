"""`prepare` as a library call: wait for published versions, place them (scratch or cache), link them.

`prepare(PrepareRequest(...))` is what `dscache prepare` runs (its argparse adapter is
`dscache.cli.prepare`); it needs no argparse namespace. Standard library only, no network I/O, no
lock. Errors: `RequestError`/`NameError_` (a usage error: bad versions, names or env variables),
`PathOverlapError`/`LinkPathInUseError` (a usage error: links or scratch overlap the cache, or a link
path holds something dscache did not create),
`PrepareTimeoutError` (not published within `wait` seconds), `OSError` (the volume).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscache.api.names import VersionKey
from dscache.errors import WaitTimeoutError
from dscache.prepare.envfile import build_env, render_exports
from dscache.prepare.holds import DEFAULT_MAX_AGE, write_hold
from dscache.prepare.links import LinkSpec, apply_links
from dscache.prepare.overlap import check_apart
from dscache.prepare.request import Wanted, from_ref, from_versions
from dscache.prepare.scratch import Placement, place_on_scratch
from dscache.prepare.scratchpaths import ScratchPaths
from dscache.prepare.waiting import WaitResult, wait_published
from dscache.store.atomic import write_bytes_atomic
from dscache.store.paths import CachePaths
from dscache.store.records import read_complete, read_ref
from dscache.store.refgaps import refuse_gaps


class PrepareTimeoutError(WaitTimeoutError):
    """The ref or some versions were not published in time; the message names each missing one."""


@dataclass(frozen=True)
class PrepareRequest:
    """What to prepare: the versions a ref points at (`ref`), or explicit `versions` (directory links).

    `scratch_max_bytes` bounds the scratch copies (LRU eviction; None: unbounded). Copies used in the
    last `scratch_keep_recent` seconds, or linked from a links directory that still exists (holds.py;
    another pod's, which cannot be seen, for `scratch_hold_max` seconds) are never evicted. `wait` is
    how many seconds to wait for the versions to be published. `env_file`, if given, receives the
    workload's `export` lines.
    """

    cache: Path
    links: Path
    ref: str | None = None
    versions: tuple[VersionKey, ...] = ()
    scratch: Path | None = None
    scratch_max_bytes: int | None = None
    scratch_keep_recent: float = 3600.0
    scratch_hold_max: float = DEFAULT_MAX_AGE
    wait: float = 0.0
    env_file: Path | None = None


@dataclass(frozen=True)
class PrepareResult:
    """The workload's environment (variable -> stable path) and where each version was placed."""

    env: dict[str, str]
    wanted: list[Wanted]
    placements: list[Placement] = field(default_factory=list)

    @property
    def exports(self) -> str:
        """The environment as `export NAME='value'` lines."""
        return render_exports(self.env)

    def to_json(self) -> dict[str, Any]:
        """The `--json` document: env, one entry per version, scratch warnings."""
        versions = [
            {
                "dataType": p.key.data_type,
                "source": p.key.source,
                "version": p.key.version,
                "linkStrategy": w.strategy,
                "location": "scratch" if p.on_scratch else "cache",
                "target": str(p.path),
                "copied": p.copied,
            }
            for w, p in zip(self.wanted, self.placements, strict=True)
        ]
        warnings = [p.warning for p in self.placements if p.warning]
        return {"env": self.env, "versions": versions, "warnings": warnings}


def _no_log(message: str) -> None:
    del message


def _wanted(request: PrepareRequest, cache: CachePaths, links: Path) -> list[Wanted] | None:
    """The versions asked for (None: the ref does not exist yet); usage errors surface before any wait."""
    if request.ref is not None:
        ref = read_ref(cache, request.ref)
        if ref is None:
            return None
        wanted = from_ref(ref)
        build_env(links, wanted)
        refuse_gaps(cache, ref)  # a version nothing will publish: fail now, not after the whole wait
        return wanted
    wanted = from_versions(list(request.versions))
    build_env(links, wanted)
    return wanted


def _timeout_message(request: PrepareRequest, missing: list[str] | None) -> str:
    if missing is None:
        return f"timed out after {request.wait:g}s: ref {request.ref!r} does not exist in {request.cache}"
    lines = [f"timed out after {request.wait:g}s waiting for {len(missing)} version(s) to be published:"]
    lines += [f"  {m}" for m in missing]
    return "\n".join(lines)


def waiting_message(request: PrepareRequest, state: WaitResult, waited: float) -> str:
    """Pure: what prepare still waits for, e.g. `waiting 30s of 3600s for 1 version(s) to be
    published: objects/thor=v1` or `waiting 0s of 3600s for ref 'ns.name' to exist in /cache`."""
    limit = "no limit" if request.wait == float("inf") else f"{request.wait:g}s"
    head = f"waiting {waited:.0f}s of {limit}"
    if state.wanted is None:
        return f"{head} for ref {request.ref!r} to exist in {request.cache} (its DatasetCache installs it)"
    names = ", ".join(str(k) for k in state.missing)
    return f"{head} for {len(state.missing)} version(s) to be published: {names}"


def _write_if_changed(path: Path, data: bytes) -> None:
    """Rewrite (tmp + fsync + rename) only when different: most pod starts find the same content."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_bytes_atomic(path, data)


def _hold(
    scratch: ScratchPaths,
    links: Path,
    placements: list[Placement],
    hold_max: float,
    log: Callable[[str], None],
) -> None:
    """Record which scratch copies `links` now points at (holds.py), so no other prepare evicts them."""
    on_scratch = [p.key for p in placements if p.on_scratch]
    try:
        write_hold(scratch, links, on_scratch, hold_max=hold_max)
    except OSError as exc:
        if on_scratch:
            log(
                f"warning: could not record that {links} uses its scratch copies ({exc}); another "
                "prepare may evict them once they were last prepared longer ago than --scratch-keep-recent"
            )


def prepare(request: PrepareRequest, log: Callable[[str], None] = _no_log) -> PrepareResult:
    """Wait for, place and link the requested versions; write `env_file`.

    `log` gets a line when the wait begins and every 30 s while it lasts (`waiting_message`), the
    scratch copies' progress (every 30 s) and scratch warnings (prefixed `warning: `).
    """
    check_apart(request.cache, request.links, request.scratch, request.env_file)
    cache = CachePaths(request.cache.absolute())
    links = request.links.absolute()
    waited = wait_published(
        cache,
        lambda: _wanted(request, cache, links),
        request.wait,
        report=lambda state, seconds: log(waiting_message(request, state, seconds)),
    )
    if waited.wanted is None or waited.missing:
        missing = None if waited.wanted is None else [f"{k} ({cache.version_dir(k)})" for k in waited.missing]
        raise PrepareTimeoutError(_timeout_message(request, missing))
    wanted = waited.wanted
    env = build_env(links, wanted)
    records = {}
    for w in wanted:
        record = read_complete(cache.version_dir(w.key))
        if record is None:
            raise OSError(f"{w.key}: unreadable completion record in {cache.version_dir(w.key)}")
        records[w.key] = record
    if request.scratch is not None:
        placements = place_on_scratch(
            ScratchPaths(request.scratch.absolute()),
            cache,
            records,
            request.scratch_max_bytes,
            log,
            keep_recent=request.scratch_keep_recent,
            links=links,
            hold_max=request.scratch_hold_max,
        )
    else:
        placements = [Placement(w.key, cache.version_dir(w.key), on_scratch=False) for w in wanted]
    specs = [LinkSpec(w.key, w.strategy, p.path) for w, p in zip(wanted, placements, strict=True)]
    roots = (cache.root,) if request.scratch is None else (cache.root, request.scratch.absolute())
    apply_links(links, specs, owned_roots=roots)
    if request.scratch is not None:
        _hold(ScratchPaths(request.scratch.absolute()), links, placements, request.scratch_hold_max, log)
    result = PrepareResult(env, wanted, placements)
    if request.env_file is not None:
        _write_if_changed(request.env_file.absolute(), result.exports.encode())
    return result
