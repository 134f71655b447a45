"""Build the bed's container images once, from Debian packages and the repository, into a cache.

No registry is reachable, so every image a pod of the bed runs is made here:

- `shell`: Debian's `busybox-static` as `/bin/busybox` plus its applet links; loaded into containerd
  as `busybox` (the tag test manifests use) and, with a sleeping entrypoint, as the pod sandbox
  ("pause") image.
- `python-base`: a Debian 12 root filesystem with Debian's Python 3.11 made by `mmdebstrap`; the
  stand-in for `python:3.11-slim-bookworm` (same release, same Python minor) that the Dockerfile's
  `PYTHON_IMAGE` build argument accepts; loaded as `python:3.11` for test pods that run Python.
- `dscache`: the repository's `Dockerfile`, built by `buildah bud` on that base, loaded under the
  chart's default image reference; and `dscache-prepare`, its `prepare` target (the init-container
  image), loaded under that reference with the tag suffix `-prepare` (the chart's default).

Each image is saved as a docker-archive under `<cache>/images/<name>-<key>.tar`, the key hashing
everything that goes in (package versions, Dockerfile, lock file, sources); buildah keeps its own
storage under `<cache>/buildah` (vfs driver: no overlay mounts needed). The machine's trust store
and pip configuration are mounted read-only into the build (package indexes are reached through
them here) and never copied into an image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import build

REPO = build.HACK.parent
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates", "passwd")
BASE_REF = "localhost/dscache-testbed/python:3.11-bookworm"
SHELL_REF = "localhost/dscache-testbed/shell:latest"
PAUSE_REF = "localhost/dscache-testbed/pause:latest"
# What the Dockerfile's context admits (.dockerignore denies everything else).
CONTEXT = ("pyproject.toml", "README.md", "requirements.lock", "initcontainer", "operator", "image")
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# What Debian's official slim images leave out (their /etc/dpkg/dpkg.cfg.d/docker and
# /etc/apt/apt.conf.d/docker-clean): documentation, manuals, translations, apt's binary caches.
SLIM_DPKG = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
)
SLIM_APT = ('Dir::Cache::pkgcache ""', 'Dir::Cache::srcpkgcache ""')
CLEAN_HOOK = 'rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/apt "$1"/var/log/dpkg.log'

HOST_CA = Path("/etc/ssl/certs")


@dataclass(frozen=True)
class Image:
    """One built image: its docker-archive and the references it is loaded under in containerd."""

    name: str
    archive: Path
    refs: tuple[str, ...]


def _log(msg: str) -> None:
    print(f"[testbed images] {msg}", file=sys.stderr, flush=True)


def images_dir() -> Path:
    return build.cache_root() / "images"


def _buildah(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    store = build.cache_root() / "buildah"
    argv = ["buildah", f"--root={store / 'storage'}", f"--runroot={store / 'run'}", "--storage-driver=vfs"]
    return subprocess.run([*argv, *args], check=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def _pkg_version(pkg: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True
    )
    return out.stdout


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:12]


def _tree_bytes(paths: tuple[str, ...]) -> bytes:
    """Names and contents of the build context, in a stable order, without caches."""
    h = hashlib.sha256()
    for rel in paths:
        top = REPO / rel
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc" or ".mypy_cache" in f.parts:
                continue
            h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return h.digest()


def _commit_archive(ctr: str, ref: str, archive: Path) -> None:
    _buildah("commit", "--quiet", "--rm", ctr, ref, stdout=subprocess.DEVNULL)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _buildah("push", "--quiet", ref, f"docker-archive:{tmp}:{ref}")
    tmp.rename(archive)


def _shell_images() -> list[Image]:
    key = _digest(_pkg_version("busybox-static").encode())
    shell = images_dir() / f"shell-{key}.tar"
    pause = images_dir() / f"pause-{key}.tar"
    if shell.exists() and pause.exists():
        return [_shell_image(shell), Image("pause", pause, (PAUSE_REF,))]
    _log("building the shell and pause images from busybox-static")
    with tempfile.TemporaryDirectory() as td:
        root = Path(td) / "rootfs"
        for d in ("bin", "tmp", "etc", "root"):
            (root / d).mkdir(parents=True)
        (root / "tmp").chmod(0o1777)
        shutil.copy2("/bin/busybox", root / "bin" / "busybox")
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
        for applet in applets.stdout.split():
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        )
        (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
        for archive, ref, cmd in (
            (shell, SHELL_REF, '["sh"]'),
            (pause, PAUSE_REF, '["sleep", "2147483647"]'),
        ):
            ctr = _buildah("from", "scratch", capture_output=True).stdout.strip()
            _buildah("copy", "--quiet", ctr, f"{root}/", "/", stdout=subprocess.DEVNULL)
            _buildah("config", "--env", "PATH=/bin", "--cmd", cmd, ctr)
            _commit_archive(ctr, ref, archive)
    return [_shell_image(shell), Image("pause", pause, (PAUSE_REF,))]


def _shell_image(archive: Path) -> Image:
    return Image(
        "shell", archive, (SHELL_REF, "docker.io/library/busybox:latest", "docker.io/library/busybox:1.36")
    )


def _base_image() -> Image:
    recipe = [SUITE, *BASE_PACKAGES, *SLIM_DPKG, *SLIM_APT, CLEAN_HOOK, _pkg_version("mmdebstrap")]
    key = _digest("\n".join(recipe).encode())
    archive = images_dir() / f"python-base-{key}.tar"
    image = Image(
        "python-base",
        archive,
        (BASE_REF, "docker.io/library/python:3.11", "docker.io/library/python:3.11-slim"),
    )
    if archive.exists():
        return image
    _log(f"building the Debian {SUITE} Python base with mmdebstrap")
    with tempfile.TemporaryDirectory(dir=images_dir()) as td:
        rootfs = Path(td) / "rootfs.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                *(f"--dpkgopt={o}" for o in SLIM_DPKG),
                *(f"--aptopt={o}" for o in SLIM_APT),
                f"--customize-hook={CLEAN_HOOK}",
                SUITE,
                str(rootfs),
                # The machine's mirror when it has one configured, else mmdebstrap's default.
                *([str(APT_SOURCES)] if APT_SOURCES.exists() else []),
            ],
            check=True,
        )
        ctr = _buildah("from", "scratch", capture_output=True).stdout.strip()
        _buildah("add", "--quiet", ctr, str(rootfs), "/", stdout=subprocess.DEVNULL)
        _buildah(
            "config",
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env",
            "LANG=C.UTF-8",
            "--cmd",
            '["python3"]',
            ctr,
        )
        _commit_archive(ctr, BASE_REF, archive)
    return image


def project_ref() -> str:
    """The chart's default image reference: `<values.image.repository>:<appVersion>`."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return f"ghcr.io/dscache/dscache:{version}"


def prepare_ref() -> str:
    """The init-container image's reference: the chart's default `<repository>:<appVersion>-prepare`."""
    return f"{project_ref()}-prepare"


def _project_images(base: Image) -> list[Image]:
    """The Dockerfile's default target (the full image) and its `prepare` target."""
    key = _digest(base.archive.name.encode(), (REPO / "Dockerfile").read_bytes(), _tree_bytes(CONTEXT))
    return [
        _project_image("dscache", key, None, project_ref()),
        _project_image("dscache-prepare", key, "prepare", prepare_ref()),
    ]


def _project_image(name: str, key: str, target: str | None, ref: str) -> Image:
    archive = images_dir() / f"{name}-{key}.tar"
    image = Image(name, archive, (ref,))
    if archive.exists():
        return image
    _log(f"building {name} from the Dockerfile (buildah bud{f' --target={target}' if target else ''})")
    start = time.monotonic()
    volumes = [f"--volume={HOST_CA}:{HOST_CA}:ro"]
    if Path("/etc/pip.conf").exists():
        volumes.append("--volume=/etc/pip.conf:/etc/pip.conf:ro")
    _buildah(
        "bud",
        "--quiet",
        "--isolation=chroot",
        "--network=host",
        "--pull-never",
        "--layers=false",
        f"--build-arg=PYTHON_IMAGE={BASE_REF}",
        *([f"--target={target}"] if target else []),
        *volumes,
        f"--tag={ref}",
        str(REPO),
        stdout=subprocess.DEVNULL,
    )
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _buildah("push", "--quiet", ref, f"docker-archive:{tmp}:{ref}")
    _buildah("rmi", "--force", ref, stdout=subprocess.DEVNULL)  # vfs: a full copy per build
    tmp.rename(archive)
    _log(f"{name} built in {time.monotonic() - start:.0f}s")
    return image


def _prune(keep: list[Image]) -> None:
    """Drop archives of earlier inputs (each is hundreds of MB)."""
    names = {i.archive.name for i in keep}
    for old in images_dir().glob("*.tar"):
        if old.name not in names:
            old.unlink()
    _buildah("rmi", "--prune", stdout=subprocess.DEVNULL)  # earlier bases, untagged by a rebuild


def ensure_images() -> list[Image]:
    """Build whatever image is missing; seconds when the cache is warm. Needs root, buildah, mmdebstrap."""
    for tool in ("buildah", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"test bed images: `{tool}` is missing (apt-get install {tool}; see .ci/testbed.sh)"
            )
    images_dir().mkdir(parents=True, exist_ok=True)
    with build.lock():
        images = _shell_images()
        base = _base_image()
        images += [base, *_project_images(base)]
        _prune(images)
    return images


if __name__ == "__main__":
    os.umask(0o022)
    for img in ensure_images():
        print(img.archive, *img.refs)
