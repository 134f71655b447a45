"""`dscache demo`: a complete local round trip with no network and no cluster.

Builds a small dataset, publishes it as a molmospaces/dscache remote on local disk (`file://`),
installs it into a cache, and reports what happened: the same code paths the installer Job runs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from dscache.api.names import VersionKey
from dscache.install.progress import Sink

DEMO_VERSIONS = (VersionKey("objects", "toys", "v1"), VersionKey("scenes", "kitchen", "2025.1"))


@dataclass
class DemoResult:
    root: Path
    remote: Path
    cache: Path
    timings: dict[str, float]


def make_dataset(root: Path, key: VersionKey, files: int, seed: int) -> None:
    """A deterministic little tree: nested dirs of text-like files of a few KiB."""
    rng = random.Random(seed)
    words = [f"{key.source}{i}" for i in range(64)]
    for i in range(files):
        path = root / f"{key.data_type}_{i % 7}" / f"item_{i:04d}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = " ".join(rng.choices(words, k=rng.randint(10, 600)))
        path.write_text(f'<asset name="{key.source}-{i}">{body}</asset>\n')


def run_demo(root: Path, sink: Sink) -> DemoResult:
    """Publish two versions to `root/remote`, install them into `root/cache`, time each step."""
    from dscache.api.manifest import spec_from_flags
    from dscache.install.pipeline import install
    from dscache.publish.upload import PublishOptions, publish
    from dscache.remotes.file import FileRemote

    remote, cache = root / "remote", root / "cache"
    timings: dict[str, float] = {}
    start = time.monotonic()
    for n, key in enumerate(DEMO_VERSIONS):
        tree = root / "source" / key.rel
        make_dataset(tree, key, files=300 + 200 * n, seed=n)
        publish(
            tree,
            FileRemote(remote),
            key,
            PublishOptions(archive_size=256 << 10, overwrite=True),
            log=lambda _: None,
        )
    timings["publish"] = time.monotonic() - start
    spec = spec_from_flags(f"file://{remote}", "archives", [str(k) for k in DEMO_VERSIONS])
    start = time.monotonic()
    install(spec, cache, "demo", sink)
    timings["install"] = time.monotonic() - start
    start = time.monotonic()
    install(spec, cache, "demo", sink)
    timings["reinstall (no network)"] = time.monotonic() - start
    return DemoResult(root, remote, cache, timings)
