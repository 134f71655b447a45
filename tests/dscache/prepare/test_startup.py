"""Start-up cost: the init-container path must not pull in heavy or networking modules."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.dscache.prepare.prepare_helpers import Dirs, publish_version

PROBE = """
import json, sys
from dscache.cli.app import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

FORBIDDEN = {
    "boto3", "botocore", "kubernetes", "kopf", "huggingface_hub",  # the design forbids these
    "google", "azure", "requests",  # the GCS and Azure clients and their HTTP stack
    "pydantic", "yaml", "rich",  # slow to import
    "socket", "ssl", "http", "urllib3", "httpx",  # no network I/O on this path
}  # fmt: skip


def test_prepare_imports_nothing_heavy_and_nothing_networked(dirs: Dirs) -> None:
    publish_version(dirs.cache, "objects/thor=v1", {"f": b"1"})
    args = dirs.args("--version", "objects/thor=v1", "--env-file", str(dirs.cache.parent / "env"))
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0, proc.stderr
    assert "dscache.prepare.scratch" in result["modules"]  # the probe really ran a copy
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert loaded & FORBIDDEN == set()
