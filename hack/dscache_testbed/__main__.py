"""`hack/testbed up|down|status|build|env`: the command-line face of the bed."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import bed, build, images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/testbed", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "build", "env"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=bed.DEFAULT_DIR,
        help="bed directory (default: $DSCACHE_TESTBED_DIR or /tmp/dscache-testbed)",
    )
    parser.add_argument("--no-helm", action="store_true", help="build: skip helm")
    parser.add_argument("--no-images", action="store_true", help="build: skip the container images")
    args = parser.parse_args(argv)
    if args.command == "build":
        build.ensure_all(helm=not args.no_helm)
        for name in (*build.K8S_BINARIES, "local-path-provisioner", "kubectl", "helm"):
            print(build.binary(name))
        if not args.no_images:
            for image in images.ensure_images():
                print(image.archive, *image.refs)
        return 0
    if args.command == "up":
        start = time.monotonic()
        state = bed.up(args.dir)
        print(
            f"# test bed ready in {time.monotonic() - start:.1f}s (logs: {state.root}/logs)", file=sys.stderr
        )
        print("\n".join(bed.env_lines(state)))
        return 0
    if args.command == "down":
        bed.down(args.dir)
        return 0
    if args.command == "env":
        found = bed.load_state(args.dir.resolve())
        if found is None:
            print(f"no test bed in {args.dir}", file=sys.stderr)
            return 1
        print("\n".join(bed.env_lines(found)))
        return 0
    info = bed.status(args.dir)
    print(json.dumps(info, indent=2))
    return 0 if info.get("running") and info.get("apiserver_ready") else 1


if __name__ == "__main__":
    sys.exit(main())
