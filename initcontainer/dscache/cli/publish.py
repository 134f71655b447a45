"""`dscache publish DIR --to URL --version DT/SRC=VER`: the CLI front of `dscache.publish.upload`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dscache.cli.exits import EXIT_OK, exit_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="directory tree to publish")
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
        help="uncompressed content per archive: bytes, or Ki/Mi/Gi (binary), K/M/G (decimal); default 64MiB",
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
    parser.add_argument("--level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--threads", type=int, default=-1, help="zstd threads (default: one per CPU)")
    parser.add_argument("--work-dir", type=Path, help="staging dir for archives (default: temp)")
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
        source = source_from_url(args.to)
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
        print(f"dscache publish: {err}", file=sys.stderr)
        return exit_code(err)

    from dscache.remotes.factory import open_remote

    started = time.monotonic()
    try:
        remote = open_remote(source)
    except RemoteError as err:
        print(f"dscache publish: failed: {err}", file=sys.stderr)
        return exit_code(err)
    try:
        result = publish(args.dir, remote, key, options, log=_log)
    except BadInputError as err:
        print(f"dscache publish: {err}", file=sys.stderr)
        return exit_code(err)
    except (PublishError, RemoteError, OSError) as err:
        print(f"dscache publish: failed: {err}", file=sys.stderr)
        return exit_code(err)
    finally:
        close = getattr(remote, "close", None)
        if close is not None:
            close()
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({**result.to_json(), "remote": remote.url, "seconds": round(seconds, 3)}))
    else:
        for name in result.skipped:
            print(f"skipped installer bookkeeping file {name}", file=sys.stderr)
        print(
            f"published {key} to {remote.url}/{result.version_dir}: {len(result.archives)} archives, "
            f"{result.files} files, {result.bytes} bytes ({result.compressed} compressed) in {seconds:.1f}s"
        )
    return EXIT_OK


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
