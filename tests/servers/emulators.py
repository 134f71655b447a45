"""Store emulators run as child processes on 127.0.0.1, each behind a fault-injecting proxy.

fake-gcs-server (built from its Go module) and Azurite (from npm) are installed by `.ci/emulators.sh`
into a cache outside the repo, keyed by version (`$DSCACHE_EMULATORS_DIR`, default
`~/.cache/dscache-emulators`). A test session starts each once, on a free port, and stops it at the
end. Clients talk to the proxy (`endpoint`, a `tests.servers.proxy.FaultProxy`): it forwards every
request to the emulator and relays the answer through the shared fault machinery (`faults`, `log`),
like the moto proxy for S3; each store's handler makes the emulator answer as the store does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import ClassVar

from tests.servers.proxy import FaultProxy

FAKE_GCS_VERSION = "v1.56.1"
AZURITE_VERSION = "3.37.0"


def emulators_dir() -> Path:
    return Path(os.environ.get("DSCACHE_EMULATORS_DIR") or Path.home() / ".cache" / "dscache-emulators")


def emulator_binary(name: str) -> Path:
    """The installed emulator executable; fails naming the install script if it is missing."""
    paths = {
        "fake-gcs-server": emulators_dir() / f"fake-gcs-server-{FAKE_GCS_VERSION}" / "fake-gcs-server",
        "azurite": emulators_dir() / f"azurite-{AZURITE_VERSION}" / "node_modules" / ".bin" / "azurite-blob",
    }
    path = paths[name]
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: run `bash .ci/emulators.sh` (CI does)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


class EmulatorProxy(FaultProxy):
    """An emulator child process and the proxy in front of it. Subclasses give the command line."""

    name: ClassVar[str]

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()))
        self.upstream_port = self.upstream[1]
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    def command(self, workdir: Path) -> list[str]:
        raise NotImplementedError

    def start_in(self, workdir: Path) -> EmulatorProxy:
        workdir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir
        log = open(workdir / f"{self.name}.log", "wb")  # noqa: SIM115 (the child writes it until stopped)
        self._proc = subprocess.Popen(
            self.command(workdir), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir
        )
        log.close()
        wait_for(self.upstream_port, self._proc, self.name)
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    @property
    def endpoint(self) -> str:
        """The proxy: faults and the log apply."""
        return self.url

    @property
    def direct_url(self) -> str:
        """The emulator itself (no proxy: no faults, no log), for seeding data."""
        return f"http://127.0.0.1:{self.upstream_port}"
