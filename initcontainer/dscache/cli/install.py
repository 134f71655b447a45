"""`dscache install -f DATASETCACHE.yaml --cache DIR` (or `--source/--layout/--version` flags)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dscache.api.names import NameError_, check_segment
from dscache.cli.common import fail
from dscache.cli.exits import EXIT_OK, EXIT_USAGE, exit_code

DEFAULT_FLAGS_REF = "default"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f", "--file", type=Path, help="a DatasetCache manifest (YAML or JSON), as for kubectl apply"
    )
    p.add_argument("--cache", type=Path, required=True, help="the cache directory (the shared volume)")
    p.add_argument(
        "--ref", help="ref to point at the versions (default: <namespace>.<name> with -f, else 'default')"
    )
    p.add_argument("--jobs", type=int, help="items transferred at once (default: spec.install.parallelism)")
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    p.add_argument(
        "--source",
        help="instead of -f: s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix, "
        "hf://datasets/OWNER/REPO[/PREFIX][@REV], http(s)://base or file:///dir",
    )
    p.add_argument("--layout", choices=["archives", "files"], default="archives", help="with --source")
    p.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="DT/SRC=VER",
        dest="versions",
        help="with --source, repeatable",
    )
    p.add_argument("--lock-timeout", type=float, default=600.0, help="seconds to wait for another writer")
    p.add_argument(
        "--report-status",
        action="store_true",
        help="with -f, in a Job: report progress into the DatasetCache's status through the API server",
    )


def run(args: argparse.Namespace) -> int:
    from dscache.api.manifest import load_manifest, spec_from_flags
    from dscache.api.spec import SpecError
    from dscache.cli.render import make_sink
    from dscache.install.pipeline import InstallError, install

    try:
        if args.file is not None:
            if args.source or args.versions:
                return fail("use either -f or --source/--version, not both", EXIT_USAGE)
            manifest = load_manifest(args.file)
            spec, ref = manifest.spec, args.ref or manifest.ref_name
        elif args.report_status:
            return fail("--report-status needs -f DATASETCACHE.yaml", EXIT_USAGE)
        elif args.source:
            spec, ref = (
                spec_from_flags(args.source, args.layout, args.versions),
                args.ref or DEFAULT_FLAGS_REF,
            )
        else:
            return fail("give -f DATASETCACHE.yaml or --source URL --version DT/SRC=VER", EXIT_USAGE)
        check_segment(ref, "--ref")
        if args.jobs is not None and not 1 <= args.jobs <= 64:
            return fail("--jobs must be between 1 and 64", EXIT_USAGE)
    except (SpecError, NameError_) as err:
        return fail(str(err), exit_code(err))
    sink = make_sink(args.json)
    if args.report_status:
        from dscache.install.kubestatus import TeeSink, status_sink

        sink = TeeSink(sink, status_sink(manifest.metadata.namespace, manifest.metadata.name, args.cache))
    try:
        install(spec, args.cache, ref, sink, jobs=args.jobs, lock_timeout=args.lock_timeout)
    except InstallError as err:
        sink.emit("error", {"message": str(err)})  # the sink prints it, once
        sink.close()
        return exit_code(err)
    sink.close()
    return EXIT_OK
