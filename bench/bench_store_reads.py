"""Benchmark ranged reads from GCS and Azure Blob Storage clients against their emulators (issue 15,
the client-library choice written down in `dscache.remotes.gcs` and `dscache.remotes.azure`).

    bash .ci/emulators.sh && python bench/bench_store_reads.py [--mib 256]

Starts fake-gcs-server and Azurite on 127.0.0.1 (as the tests do), stores one object of `--mib` MiB
in each, and reads bytes [1 MiB, end) with every client, each in a fresh process, best of three:
the time to import and build the client, time to first byte, wall time, client CPU (user+system: the emulator
caps the rate, so CPU is the comparable figure) and peak RSS. Then the cost in a forked worker
(the installer forks its workers after the parent planned): opening a remote and a first 1 MiB
range. Clients: dscache's remotes (HttpFetcher on urllib3), the official SDKs' downloads, and
obstore / gcsfs / adlfs when installed (they are not dependencies; `pip install` them to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "initcontainer")]

from dscache.remotes.azure import AZURITE_KEY  # noqa: E402
from tests.servers.azure import ACCOUNT, Azurite  # noqa: E402
from tests.servers.gcs import FakeGcs  # noqa: E402

BUCKET = CONTAINER = "bench"
NAME = "big.bin"
START = 1 << 20

Reader = Callable[[int, int], Iterator[bytes]]
_LOCAL = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
"""No client may look for a cloud metadata server: traffic stays on 127.0.0.1."""


class _PublicHostGcs(FakeGcs):
    """fake-gcs-server also answering the XML API at its own address (obstore reads through it)."""

    def command(self, workdir: Path) -> list[str]:
        return [*super().command(workdir), "-public-host", f"127.0.0.1:{self.upstream_port}"]


def gcs_clients(endpoint: str) -> dict[str, tuple[str, Callable[[], Reader]]]:
    def dscache() -> Reader:
        from dscache.remotes.gcs import GcsRemote

        remote = GcsRemote(BUCKET, endpoint=endpoint, anonymous=True)
        return lambda a, b: remote.stream(NAME, a, b - a)

    def sdk() -> Reader:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(
            "b", AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint)
        )
        blob = client.bucket(BUCKET).blob(NAME)
        return lambda a, b: iter(
            [blob.download_as_bytes(start=a, end=b - 1, raw_download=True, checksum=None)]
        )

    def obstore() -> Reader:
        import obstore as obs
        from obstore.store import GCSStore

        store = GCSStore(
            BUCKET, config={"base_url": endpoint, "skip_signature": True},
            client_options={"allow_http": True}, retry_config={"max_retries": 0},
        )  # fmt: skip
        return lambda a, b: (
            bytes(c) for c in obs.get(store, NAME, options={"range": (a, b)}).stream(256 << 10)
        )

    def gcsfs() -> Reader:
        import gcsfs

        fs = gcsfs.GCSFileSystem(endpoint_url=endpoint, token="anon")
        return lambda a, b: iter([fs.cat_file(f"{BUCKET}/{NAME}", start=a, end=b)])

    return {
        "dscache (urllib3)": ("dscache.remotes.gcs", dscache),
        "google-cloud-storage": ("google.cloud.storage", sdk),
        "obstore": ("obstore", obstore),
        "gcsfs": ("gcsfs", gcsfs),
    }


def azure_clients(endpoint: str) -> dict[str, tuple[str, Callable[[], Reader]]]:
    def dscache() -> Reader:
        from dscache.remotes.azure import AzureRemote

        os.environ["AZURE_STORAGE_KEY"] = AZURITE_KEY
        remote = AzureRemote(ACCOUNT, CONTAINER, endpoint=endpoint)
        return lambda a, b: remote.stream(NAME, a, b - a)

    def sdk() -> Reader:
        from azure.storage.blob import BlobClient

        blob = BlobClient(
            endpoint, CONTAINER, NAME, credential={"account_name": ACCOUNT, "account_key": AZURITE_KEY}
        )
        return lambda a, b: blob.download_blob(offset=a, length=b - a, max_concurrency=1).chunks()

    def obstore() -> Reader:
        import obstore as obs
        from obstore.store import AzureStore

        store = AzureStore(
            CONTAINER, config={"account_name": ACCOUNT, "account_key": AZURITE_KEY, "endpoint": endpoint},
            client_options={"allow_http": True}, retry_config={"max_retries": 0},
        )  # fmt: skip
        return lambda a, b: (
            bytes(c) for c in obs.get(store, NAME, options={"range": (a, b)}).stream(256 << 10)
        )

    def adlfs() -> Reader:
        import adlfs

        conn = f"AccountName={ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
        fs = adlfs.AzureBlobFileSystem(connection_string=conn)
        return lambda a, b: iter([fs.cat_file(f"{CONTAINER}/{NAME}", start=a, end=b)])

    return {
        "dscache (urllib3)": ("dscache.remotes.azure", dscache),
        "azure-storage-blob": ("azure.storage.blob", sdk),
        "obstore": ("obstore", obstore),
        "adlfs": ("adlfs", adlfs),
    }


def measure(store: str, endpoint: str, client: str, size: int) -> dict[str, float]:
    """In this (fresh) process: one client's import, then the best of three reads."""
    clients = (gcs_clients if store == "gcs" else azure_clients)(endpoint)
    _, make = clients[client]
    started = time.perf_counter()
    read = make()  # imports the client's libraries, then builds it
    opened = time.perf_counter() - started
    best: tuple[float, float, float] | None = None
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        first, got = None, 0
        for chunk in read(START, size):
            first = first if first is not None else time.perf_counter() - t0
            got += len(chunk)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        assert got == size - START, got
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        if best is None or wall < best[0]:
            best = (wall, cpu, first or 0.0)
    assert best is not None
    return {
        "open_ms": opened * 1e3,
        "first_ms": best[2] * 1e3,
        "wall_s": best[0],
        "cpu_s": best[1],
        "rss_mib": _peak_rss(),
    }


def _peak_rss() -> float:
    """MiB: this process's peak resident set (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def forked(store: str, endpoint: str) -> list[float]:
    """Milliseconds to open a remote and read its first 1 MiB range in each of two forked workers."""
    clients = (gcs_clients if store == "gcs" else azure_clients)(endpoint)
    make = clients["dscache (urllib3)"][1]
    b"".join(make()(START, 2 * START))  # the parent plans first: imports and its own remote
    out = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            t0 = time.perf_counter()
            b"".join(make()(START, 2 * START))
            os.write(write, f"{(time.perf_counter() - t0) * 1e3:.1f}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        out.append(float(os.read(read, 64)))
    return out


def run_child(store: str, endpoint: str, client: str, module: str, size: int) -> str:
    """One client measured in a fresh process (this checkout's dscache first on its path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "initcontainer"), str(REPO)]), **_LOCAL}
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, check=False
    )
    if probe.returncode != 0:
        return "not installed"
    cmd = [sys.executable, __file__, "--child", store, endpoint, client, str(size)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1][:100]}"
    r = json.loads(proc.stdout.splitlines()[-1])
    return (
        f"import+open {r['open_ms']:5.0f} ms  first byte {r['first_ms']:5.0f} ms  wall {r['wall_s']:5.2f} s  "
        f"client CPU {r['cpu_s']:5.2f} s  peak RSS {r['rss_mib']:4.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument(
        "--child", nargs=4, metavar=("STORE", "ENDPOINT", "CLIENT", "SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        store, endpoint, client, size = args.child
        print(json.dumps(measure(store, endpoint, client, int(size))))
        return
    size = args.mib << 20
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="dscache-bench-") as tmp:
        os.environ.update(_LOCAL)
        gcs = _PublicHostGcs().start_in(Path(tmp) / "gcs")
        azure = Azurite().start_in(Path(tmp) / "azure")
        try:
            gcs.client().create_bucket(BUCKET)
            gcs.client().bucket(BUCKET).blob(NAME).upload_from_string(data)
            azure.service().create_container(CONTAINER)
            azure.service().get_blob_client(CONTAINER, NAME).upload_blob(data, max_concurrency=2)
            for store, endpoint in (("gcs", gcs.direct_url), ("azure", f"{azure.direct_url}/{ACCOUNT}")):
                print(f"{store}: bytes [1 MiB, {args.mib} MiB), best of 3, one fresh process per client")
                clients = (gcs_clients if store == "gcs" else azure_clients)(endpoint)
                for client, (module, _) in clients.items():
                    print(f"  {client:22s} {run_child(store, endpoint, client, module, size)}")
                print(f"  forked workers (dscache): open + first 1 MiB range {forked(store, endpoint)} ms")
        finally:
            gcs.stop()
            azure.stop()


if __name__ == "__main__":
    main()
