"""`dscache publish DIR --to URL --version DT/SRC=VER`: the CLI front of `dscache.publish.upload`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dscache.api.sizes import format_size
from dscache.cli import output
from dscache.cli.argtypes import integer, path_arg
from dscache.cli.common import fail, source_env_problem
from dscache.cli.exits import EXIT_OK, EXIT_USAGE, exit_code
from dscache.cli.pathcheck import dir_problem

if TYPE_CHECKING:
    from dscache.api.spec import Source

EXAMPLES = """\
  dscache publish ./my-tree --to s3://bucket/prefix --version objects/thor=20250101 --archive-size 256Mi
  dscache publish ./my-tree --to hf://datasets/org/repo/mujoco --version objects/thor=v2 --hf-shards
  dscache publish ./my-tree --to file:///srv/mirror --version scenes/ithor=7 --json"""
ZSTD_LEVELS = (-131072, 22)  # ZSTD_minCLevel() .. ZSTD_maxCLevel()
ZSTD_MAX_THREADS = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=path_arg, metavar="DIR", help="directory tree to publish")
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="remote: s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix, "
        "hf://datasets/OWNER/REPO[/PREFIX], file:///path",
    )
    parser.add_argument("--version", required=True, metavar="DT/SRC=VER", help="version to publish")
    parser.add_argument(
        "--archive-size",
        default="64MiB",
        metavar="SIZE",
        help="uncompressed content per archive: bytes or a Kubernetes quantity, Ki/Mi/Gi (binary), "
        "k/M/G (decimal); default 64MiB",
    )
    parser.add_argument(
        "--hf-shards",
        action="store_true",
        help="write the Hugging Face variant: archives inside tar shards, a parquet index, README configs",
    )
    parser.add_argument(
        "--hf-prefix",
        default="",
        metavar="PREFIX",
        help="repo prefix for a non-hf:// mirror of an HF repo (an hf:// URL carries its own prefix)",
    )
    parser.add_argument(
        "--shard-size", default="1GiB", metavar="SIZE", help="HF tar shard size (default 1GiB)"
    )
    parser.add_argument(
        "--level", type=integer(*ZSTD_LEVELS), default=3, metavar="N", help="zstd level, up to 22 (default 3)"
    )
    parser.add_argument(
        "--threads",
        type=integer(-1, ZSTD_MAX_THREADS),
        default=-1,
        metavar="N",
        help="zstd threads: 0 for none, -1 for one per CPU (default)",
    )
    parser.add_argument(
        "--work-dir", type=path_arg, metavar="DIR", help="staging dir for archives (default: temp)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a version the remote already has")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from dscache.api.manifest import source_from_url
    from dscache.api.names import NameError_, parse_version_arg
    from dscache.api.spec import HuggingFaceSource, Source, SpecError
    from dscache.publish.pack import BadInputError, PublishError
    from dscache.publish.upload import PublishOptions, parse_size, publish
    from dscache.remotes.base import RemoteError

    try:
        key = parse_version_arg(args.version)
        source = source_from_url(args.to, flag="--to")
        if source.http is not None:
            raise SpecError(
                f"--to {args.to!r}: plain HTTP remotes are read-only; use s3://, gs://, az://, hf:// or file://"
            )
        repo_prefix = args.hf_prefix.strip("/")
        if source.hugging_face is not None:
            if repo_prefix:
                raise SpecError("--hf-prefix is for non-hf:// remotes; put the prefix in the hf:// URL")
            # The index and README live at the repo root, so open the repo there and add the prefix.
            hf: HuggingFaceSource = source.hugging_face
            repo_prefix = hf.prefix
            source = Source(hugging_face=hf.model_copy(update={"prefix": ""}))
        options = PublishOptions(
            archive_size=parse_size(args.archive_size),
            shard_size=parse_size(args.shard_size),
            level=args.level,
            threads=args.threads,
            hf_shards=args.hf_shards,
            repo_prefix=repo_prefix,
            overwrite=args.overwrite,
            work_dir=args.work_dir,
        )
    except (NameError_, SpecError, BadInputError) as err:
        return fail(str(err), exit_code(err))
    problem = source_env_problem("publish", source) or _path_problem(args, source)
    if problem is not None:
        return fail(problem, EXIT_USAGE)

    from dscache.remotes.factory import open_remote

    started = time.monotonic()
    try:
        remote = open_remote(source)
    except RemoteError as err:
        return fail(str(err), exit_code(err))
    try:
        result = publish(args.dir, remote, key, options, log=output.info)
    except BadInputError as err:
        return fail(str(err), exit_code(err))
    except (PublishError, RemoteError, OSError) as err:
        return fail(str(err), exit_code(err))
    finally:
        close = getattr(remote, "close", None)
        if close is not None:
            close()
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({**result.to_json(), "remote": remote.url, "seconds": round(seconds, 3)}))
    else:
        for name in result.skipped:
            output.info(f"skipped installer bookkeeping file {name}")
        output.summary(
            f"published {key} to {remote.url}/{result.version_dir}: {len(result.archives)} archives, "
            f"{result.files} files, {format_size(result.bytes)} "
            f"({format_size(result.compressed)} compressed) in {seconds:.1f}s"
        )
    return EXIT_OK


def _path_problem(args: argparse.Namespace, source: Source) -> str | None:
    """Why the tree, the work dir or a file:// destination cannot be used, in one line (or None)."""
    problem = dir_problem(args.dir)
    if problem is not None:
        return f"DIR {problem}"
    problem = _overlap(args, source)
    if problem is not None:
        return problem
    if args.work_dir is not None:
        problem = dir_problem(args.work_dir, create=True, write=True)
        if problem is not None:
            return f"--work-dir {problem}"
    if source.file is not None:
        problem = dir_problem(Path(source.file.path), create=True, write=True)
        if problem is not None:
            return f"--to {problem}"
    return None


def _overlap(args: argparse.Namespace, source: Source) -> str | None:
    """Why `--work-dir` or a file:// `--to` overlaps DIR, in one line (or None)."""
    from dscache.publish.placement import overlap_problem

    places = [("--work-dir", args.work_dir)] if args.work_dir is not None else []
    if source.file is not None:
        places.append(("--to", Path(source.file.path)))
    return next((p for flag, place in places if (p := overlap_problem(args.dir, flag, place))), None)
