"""`dscache install -f DATASETCACHE.yaml --cache DIR` (or `--source/--layout/--version` flags)."""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dscache.api.names import NameError_, VersionKey, check_segment
from dscache.cli import output
from dscache.cli.argtypes import integer, layout_arg, path_arg
from dscache.cli.common import add_lock_timeout_argument, fail, source_env_problem
from dscache.cli.exits import EXIT_BROKEN_PIPE, EXIT_OK, EXIT_USAGE, exit_code
from dscache.cli.pathcheck import dir_problem, file_problem, nesting_problem

if TYPE_CHECKING:
    from dscache.api.manifest import DatasetCache
    from dscache.api.spec import DatasetCacheSpec

DEFAULT_FLAGS_REF = "default"
INDEX_ENV = "JOB_COMPLETION_INDEX"
REPAIR_SHOWN = 5
"""Extra files `--repair` names per version before `and N more`."""
EXAMPLES = """\
  dscache install -f datasetcache.yaml --cache /data/cache
  dscache install -f manifests.yaml --name molmo-assets --cache /data/cache --dry-run
  dscache install --cache ./cache --source s3://bucket/prefix --version objects/thor=20250101 --jobs 8
  dscache install --cache ./cache --source hf://datasets/OWNER/REPO/mujoco@main \\
      --version objects/thor=v2 --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--file",
        type=path_arg,
        metavar="FILE",
        help="a DatasetCache manifest (YAML or JSON; - for stdin), as for kubectl apply",
    )
    p.add_argument(
        "--name",
        metavar="[NAMESPACE/]NAME",
        help="with -f: the DatasetCache to install when the file holds several",
    )
    p.add_argument(
        "--cache", type=path_arg, required=True, metavar="DIR", help="the cache directory (the shared volume)"
    )
    p.add_argument(
        "--ref",
        help="ref to point at the versions (default: <namespace>.<name> with -f, else 'default'); "
        "-f sets the ref to the file's versions; --source with --version adds to it (replacing a source's "
        "older version)",
    )
    p.add_argument(
        "--jobs",
        type=integer(1, 64),
        metavar="N",
        help="items transferred at once, 1-64 (default: spec.install.parallelism)",
    )
    p.add_argument(
        "--workers",
        type=integer(1, 64),
        default=1,
        metavar="K",
        help="run as one of K cooperating workers of this install (processes or pods sharing --cache), "
        "each transferring its share of the items; the last one to finish publishes (default 1)",
    )
    p.add_argument(
        "--worker-index",
        type=integer(0, 63),
        metavar="I",
        help=f"with --workers: this worker's index, 0..K-1 (default: ${INDEX_ENV}, set in an Indexed Job)",
    )
    p.add_argument(
        "--team",
        metavar="ID",
        help="with --workers: the id the K workers share (default: a digest of the spec, ref and K)",
    )
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only show what would be fetched (versions, items, bytes) and what the install would warn "
        "about; with --repair, what the repair would fetch again; write nothing, take no lock",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="publish a fresh copy of each version that fails `dscache verify`: its intact items are "
        "linked (files checked against their recorded digest first), the damaged ones fetched again, "
        "and the copy replaces the version atomically",
    )
    p.add_argument(
        "--content",
        action="store_true",
        help="with --repair: pick the versions to repair as `dscache verify --content` does, hashing "
        "every file (finds bytes changed in place; reads every byte)",
    )
    p.add_argument(
        "--source",
        metavar="URL",
        help="instead of -f: s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix, "
        "hf://datasets/OWNER/REPO[/PREFIX][@REV], http(s)://base or file:///dir",
    )
    p.add_argument(
        "--layout",
        type=layout_arg,
        choices=["Archives", "Files"],
        help="with --source: Archives (the default) or Files, any case",
    )
    p.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        dest="versions",
        help="with --source, repeatable",
    )
    p.add_argument(
        "--allow-pattern",
        action="append",
        default=[],
        metavar="GLOB",
        dest="allow_patterns",
        help="with an hf:// --source and --layout files: install only files matching GLOB (repeatable; "
        "as snapshot_download's allow_patterns)",
    )
    p.add_argument(
        "--ignore-pattern",
        action="append",
        default=[],
        metavar="GLOB",
        dest="ignore_patterns",
        help="with an hf:// --source and --layout files: leave out files matching GLOB (repeatable)",
    )
    add_lock_timeout_argument(p)
    p.add_argument(
        "--report-status",
        action="store_true",
        help="with -f, in a Job: report progress into the DatasetCache's status through the API server",
    )


# The flags whose part of the spec -f's file gives instead: (argparse dest, flag, where the file says it).
FILE_GIVES = (
    ("source", "--source", "spec.source"),
    ("versions", "--version", "spec.versions"),
    ("layout", "--layout", "spec.layout"),
    ("allow_patterns", "--allow-pattern", "spec.source.huggingFace.allowPatterns"),
    ("ignore_patterns", "--ignore-pattern", "spec.source.huggingFace.ignorePatterns"),
)


def file_conflict(args: argparse.Namespace) -> str | None:
    """Pure: the line refusing the flags given with -f that the file's spec would override (each
    flag with the field of the file to set instead), or None."""
    given = [f"{flag} (set {field} in the file)" for dest, flag, field in FILE_GIVES if getattr(args, dest)]
    if not given:
        return None
    return f"-f takes the whole spec from its file; drop {', '.join(given)}"


def _spec(args: argparse.Namespace) -> tuple[DatasetCacheSpec, str, DatasetCache | None]:
    """The spec, the ref name and the manifest (with -f); raises SpecError/NameError_ for usage errors."""
    from dscache.api.manifest import load_manifest, spec_from_flags
    from dscache.api.spec import SpecError

    if args.file is not None:
        conflict = file_conflict(args)
        if conflict is not None:
            raise SpecError(conflict)
        if str(args.file) != "-":
            problem = file_problem(args.file)
            if problem is not None:
                raise SpecError(f"-f {problem}")
        manifest = load_manifest(args.file, args.name)
        return manifest.spec, args.ref or manifest.ref_name, manifest
    if args.name is not None:
        raise SpecError("--name chooses a DatasetCache in the -f file; it needs -f")
    if args.report_status:
        raise SpecError("--report-status needs -f DATASETCACHE.yaml")
    if not args.source:
        raise SpecError("give -f DATASETCACHE.yaml or --source URL --version DT/SRC=VER")
    spec = spec_from_flags(args.source, args.layout or "Archives", args.versions)
    return with_patterns(spec, args.allow_patterns, args.ignore_patterns), args.ref or DEFAULT_FLAGS_REF, None


def with_patterns(spec: DatasetCacheSpec, allow: list[str], ignore: list[str]) -> DatasetCacheSpec:
    """`spec` with `--allow-pattern/--ignore-pattern` globs on its Hugging Face source (validated as
    the spec's own fields); raises SpecError for another kind of source."""
    from dscache.api.spec import SpecError, parse_spec

    if not allow and not ignore:
        return spec
    if spec.source.hugging_face is None:
        raise SpecError("--allow-pattern/--ignore-pattern select files of an hf:// --source only")
    if spec.layout != "Files":
        raise SpecError(
            "--allow-pattern/--ignore-pattern select files of --layout Files; "
            "the Archives layout (the default) installs whole archives"
        )
    doc = spec.model_dump(by_alias=True, exclude_none=True)
    hf = doc["source"]["huggingFace"]
    hf.update({k: v for k, v in (("allowPatterns", allow), ("ignorePatterns", ignore)) if v})
    return parse_spec(doc, "flags")


def run(args: argparse.Namespace) -> int:
    from dscache.api.spec import SpecError

    try:
        spec, ref, manifest = _spec(args)
        check_segment(ref, "--ref")
    except (SpecError, NameError_) as err:
        return fail(str(err), exit_code(err))
    problem = source_env_problem("install", spec.source)
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    try:
        worker_index = _worker_index(args, os.environ)
    except (SpecError, NameError_) as err:
        return fail(str(err), EXIT_USAGE)
    problem = (
        dir_problem(args.cache, create=True, write=not args.dry_run)
        or nesting_problem(args.cache)
        or _own_link_problem(args)
    )
    if problem is not None:
        return fail(f"--cache {problem}", EXIT_USAGE)
    if args.content and not args.repair:
        return fail("--content chooses what --repair fetches again: use it with --repair", EXIT_USAGE)
    if args.repair and worker_index is not None:
        return fail("--repair runs as one installer: not with --workers", EXIT_USAGE)
    if args.dry_run:
        if args.report_status:
            return fail("--dry-run changes nothing, so it has no status to report", EXIT_USAGE)
        from dscache.cli.dryrun import run_dry

        repair = _repairs(spec, args.cache, content=args.content, dry_run=True) if args.repair else None
        return run_dry(spec, args.cache, ref, as_json=args.json, merge=manifest is None, repair=repair)
    return _install(args, spec, ref, manifest, worker_index)


def _own_link_problem(args: argparse.Namespace) -> str | None:
    """A symlink where dscache keeps its own directory (its control dir, the versions refs name).
    A symlink at the path of a version no ref names yet is the publish step's `occupant_problem`."""
    from dscache.store.ownpaths import own_link_problem, ref_keys
    from dscache.store.paths import CachePaths

    cache = CachePaths(args.cache)
    return own_link_problem(cache, ref_keys(cache))


def _worker_index(args: argparse.Namespace, env: Mapping[str, str]) -> int | None:
    """This worker's index with --workers K > 1 (the flag, else `$JOB_COMPLETION_INDEX`), else None;
    raises SpecError naming the flag or variable that is wrong."""
    from dscache.api.spec import SpecError

    if args.workers == 1:
        if args.worker_index not in (None, 0) or args.team is not None:
            raise SpecError("--worker-index and --team need --workers K with K > 1")
        return None
    if args.dry_run:
        raise SpecError("--dry-run plans the whole install; it takes no --workers")
    index = args.worker_index
    if index is None:
        text = env.get(INDEX_ENV, "").strip()
        if not text:
            raise SpecError(f"--workers {args.workers} needs --worker-index I (or ${INDEX_ENV})")
        if not text.isdigit():
            raise SpecError(f"${INDEX_ENV} is {text!r}, not a worker index")
        index = int(text)
    if index >= args.workers:
        raise SpecError(
            f"--worker-index {index} is out of range for --workers {args.workers} (0..{args.workers - 1})"
        )
    if args.team is not None:
        check_segment(args.team, "--team")
    return int(index)


def workers_note(spec_workers: int, flag_workers: int) -> str:
    """Pure: what to say when the file asks for `spec.install.workers: K` (K > 1) and this process
    runs without `--workers`: K is the cluster's Indexed Job of K pods (the operator passes
    `--workers K`); here one process installs every item. '' otherwise."""
    if spec_workers <= 1 or flag_workers > 1:
        return ""
    return (
        f"spec.install.workers: {spec_workers} is the cluster's installer Job of {spec_workers} pods; "
        f"this process installs every item (to split the install over {spec_workers} processes, run "
        f"each with --workers {spec_workers} --worker-index I, I = 0..{spec_workers - 1})"
    )


def _install(
    args: argparse.Namespace,
    spec: DatasetCacheSpec,
    ref: str,
    manifest: DatasetCache | None,
    worker_index: int | None,
) -> int:
    from dscache.cli.render import make_sink
    from dscache.install.pipeline import InstallError, install
    from dscache.install.progress import Sink

    output.debug(f"installing from {spec.source.display_url()} into {args.cache} (ref {ref})")
    note = workers_note(spec.install.workers, args.workers)
    if note:
        output.info(note)
    output_sink = make_sink(
        args.json, output.MODE.verbosity, "files" if spec.layout == "Files" else "archives"
    )
    sink: Sink = output_sink
    if args.report_status:
        from dscache.install.kubestatus import TeeSink, status_sink

        assert manifest is not None
        sink = TeeSink(sink, status_sink(manifest.metadata.namespace, manifest.metadata.name, args.cache))
    code = EXIT_OK
    try:
        if worker_index is None:
            repair = _repairs(spec, args.cache, content=args.content) if args.repair else None
            result = install(
                spec,
                args.cache,
                ref,
                sink,
                jobs=args.jobs,
                lock_timeout=args.lock_timeout,
                repair=repair,
                merge=manifest is None,
            )
            hint_repair(result.present, args.cache)
        else:
            from dscache.install.teamwork import Worker, default_team, install_share

            team = args.team or default_team(spec, ref, args.workers)
            worker = Worker(args.workers, worker_index, team)
            install_share(
                spec,
                args.cache,
                ref,
                sink,
                worker,
                jobs=args.jobs,
                lock_timeout=args.lock_timeout,
                merge=manifest is None,
            )
    except InstallError as err:
        code = exit_code(err)
        sink.emit("error", {"message": str(err), "exitCode": code})  # the sink prints it, once
    sink.close()
    if output_sink.output_lost:
        output.discard_stdout()
        output.warning(
            "the output was closed early (broken pipe): the install carried on to the end without printing "
            + ("and succeeded" if code == EXIT_OK else "and failed")
        )
        return code or EXIT_BROKEN_PIPE
    return code


def _repairs(
    spec: DatasetCacheSpec, cache_dir: Path, *, content: bool, dry_run: bool = False
) -> dict[VersionKey, frozenset[str] | None]:
    """`damaged_versions`, saying so when there is nothing to repair."""
    repair = damaged_versions(spec, cache_dir, content=content, dry_run=dry_run)
    if not repair:
        output.info("nothing to repair: no published version of the spec fails verify")
    return repair


def damaged_versions(
    spec: DatasetCacheSpec, cache_dir: Path, *, content: bool = False, dry_run: bool = False
) -> dict[VersionKey, frozenset[str] | None]:
    """The versions of `spec` that fail `verify` (with `content`: `verify --content`), each with the
    paths to fetch again (`VersionCheck.damaged`; None: its inventory is unreadable, so all of it is
    suspect): published ones, and those whose completion record is unreadable (their intact items
    are reused all the same). `dry_run`: the warnings say what a repair would remove."""
    from dscache.maintain.verify import verify_version
    from dscache.store.paths import CachePaths
    from dscache.store.records import is_installed

    cache = CachePaths(cache_dir)
    damaged: dict[VersionKey, frozenset[str] | None] = {}
    for key in spec.version_keys():
        published = is_installed(cache, key)
        if published or cache.complete_record(key).is_file():
            check = verify_version(cache, key, content=content)
            if not check.ok or not published:
                damaged[key] = check.damaged()
            if check.extra:
                say_extras(key, check.extra, dry_run=dry_run)
    return damaged


def say_extras(key: VersionKey, extra: list[str], *, dry_run: bool = False) -> None:
    """One warning naming the files `--repair` removes from `key`: a version is dscache's, and the
    fresh copy holds only what the remote has, so what was put into it goes with the damaged copy."""
    from dscache.store.members import shown_name

    names = ", ".join(shown_name(name) for name in extra[:REPAIR_SHOWN])
    more = f" and {len(extra) - REPAIR_SHOWN} more" if len(extra) > REPAIR_SHOWN else ""
    replaces, are = ("would replace", "would be") if dry_run else ("replaces", "are")
    output.warning(
        f"--repair {replaces} {key} with a fresh copy of what the remote has: the {len(extra)} file(s) in "
        f"it that dscache did not install {are} removed with the damaged copy ({names}{more})"
    )


def hint_repair(present: list[VersionKey], cache_dir: Path) -> None:
    """A warning per version the install found present that fails `verify`, naming the repair. Costs
    one `lstat` per file of those versions (measured: 0.22-0.30 s per 50,000 files on a local disk)."""
    for key in present:
        hint = repair_hint(key, cache_dir)
        if hint is not None:
            output.warning(hint)


def repair_hint(key: VersionKey, cache_dir: Path) -> str | None:
    """The warning an install gives for the present version `key` when it fails `verify` (what
    differs, and the repair), else None; `install --dry-run` predicts it with the same words."""
    from dscache.maintain.verify import verify_version
    from dscache.store.paths import CachePaths

    check = verify_version(CachePaths(cache_dir), key)
    if check.ok:
        return None
    what = check.error or (
        f"{len(check.missing)} missing, {len(check.changed)} changed, {len(check.extra)} extra, "
        f"{len(check.modes)} re-moded, {len(check.unreadable)} unreadable path(s)"
    )
    return (
        f"{key} is present but differs from what was installed ({what}; see dscache verify --cache "
        f"{shlex.quote(str(cache_dir))}): run this install again with --repair to fetch its damaged "
        "items and publish a fresh copy"
    )
