"""Assemble the root filesystem of the init-container image (the Dockerfile's `prepare` target).

Usage, in a build stage on the Python base image: `python3 prepare_root.py ROOT PACKAGE_DIR`.

`dscache prepare` (every training pod's init container) needs only the standard library and dscache's
own modules (tests/dscache/prepare/test_startup.py), yet the full image carries the operator's and
installer's virtualenv (pyarrow alone is about 170 MB) and the base's pip, apt and perl. This copies,
into ROOT, at the same paths as in the base:

- the interpreter running this script, a `python3` link beside it and a `dscache` script (what pip
  writes for the console entry point) in the same directory;
- the standard library without what prepare never loads and only takes room (`SKIP_STDLIB`: tests,
  GUI, packaging tools, docs, the base's site-packages), compiled to hash-based .pyc files so the
  read-only container never compiles at start;
- every shared library the interpreter and the standard library's extension modules link (`ldd`),
  with the dynamic loader and the symbolic links on the way (merged /usr: /lib -> usr/lib);
- PACKAGE_DIR (the `dscache` package) into the interpreter's site directory;
- /etc/passwd and /etc/group naming root and dscache (65532), /tmp (mode 1777).

The result runs on an empty base (`FROM scratch`): no shell, no package manager. The collection asks
the interpreter where things are (sysconfig), so Debian's Python (the test bed's base, /usr) and the
official python image (/usr/local, libpython shared) both work. Written here rather than taken from a
distroless image: no registry is reachable from the test bed, and the init image must follow
PYTHON_IMAGE so it has the very interpreter the full image is tested with.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

# Top-level names in the standard library directory that prepare never imports.
SKIP_STDLIB = frozenset(
    {
        "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3", "pydoc_data",
        "distutils", "venv", "site-packages", "dist-packages", "__pycache__", "LICENSE.txt",
    }
)  # fmt: skip
SKIP_STDLIB_PREFIXES = ("config-",)  # the static libpython and Makefile of the official image
# Extension modules for the GUI and CPython's own tests.
SKIP_EXTENSION = re.compile(r"^(_tkinter|_test|_ctypes_test|_xxtest|xx)")
ENTRY_SCRIPT = "import sys\nfrom dscache.cli.app import entry\n\nsys.exit(entry())\n"
PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\ndscache:x:65532:65532::/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\ndscache:x:65532:\n"


def copy_path(path: Path, root: Path) -> None:
    """Copy the file at absolute `path` to the same place under `root`, re-creating each symlink met
    on the way (a directory or the file itself) and copying what it points to as well."""
    current = Path("/")
    parts = path.parts[1:]
    for i, part in enumerate(parts):
        current = current / part
        dest = root / current.relative_to("/")
        if current.is_symlink():
            target = os.readlink(current)
            if not dest.is_symlink():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(target)
            resolved = Path(os.path.normpath(current.parent / target))
            copy_path(resolved.joinpath(*parts[i + 1 :]), root)
            return
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(current, dest)


def linked_libraries(binaries: Iterable[Path]) -> set[Path]:
    """Absolute paths of the shared libraries (and the loader) the binaries need, from `ldd`."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            target = line.split("=>", 1)[1] if "=>" in line else line
            words = target.split()
            if words and words[0].startswith("/"):
                found.add(Path(words[0]))
    return found


STDLIB = Path(os.path.realpath(sysconfig.get_path("stdlib")))
EXTENSIONS = Path(os.path.realpath(str(sysconfig.get_config_var("DESTSHARED"))))


def _skip_stdlib(directory: str, names: list[str]) -> set[str]:
    """What `shutil.copytree` leaves out of the standard library (its `ignore` callback)."""
    if Path(directory) == STDLIB:
        return {n for n in names if n in SKIP_STDLIB or n.startswith(SKIP_STDLIB_PREFIXES)}
    if Path(directory) == EXTENSIONS:
        return {n for n in names if SKIP_EXTENSION.match(n) or n == "__pycache__"}
    return {"__pycache__"} & set(names)


def build(root: Path, package: Path) -> None:
    """Fill `root` (created if missing) as the module docstring says. Raises OSError or
    subprocess.CalledProcessError when a part cannot be copied or compiled."""
    python = Path(os.path.realpath(sys.executable))
    site = Path(sysconfig.get_path("purelib"))

    copy_path(python, root)
    shutil.copytree(STDLIB, root / STDLIB.relative_to("/"), ignore=_skip_stdlib, symlinks=True)
    kept = [p for p in EXTENSIONS.glob("*.so") if not SKIP_EXTENSION.match(p.name)]
    if not EXTENSIONS.is_relative_to(STDLIB):
        for ext in kept:
            copy_path(ext, root)
    for lib in sorted(linked_libraries([python, *kept])):
        copy_path(lib, root)
    for name in ("ld.so.cache",):  # libpython outside the loader's default directories (/usr/local/lib)
        if (Path("/etc") / name).exists():
            copy_path(Path("/etc") / name, root)

    bin_dir = root / python.parent.relative_to("/")
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(python.name)
    script = bin_dir / "dscache"
    script.write_text(f"#!{python}\n{ENTRY_SCRIPT}")
    script.chmod(0o755)

    dest_package = root / site.relative_to("/") / package.name
    shutil.copytree(package, dest_package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for tree, ddir in ((root / STDLIB.relative_to("/"), STDLIB), (dest_package, site / package.name)):
        ok = compileall.compile_dir(
            tree,
            ddir=ddir,
            quiet=1,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        if not ok:
            raise RuntimeError(f"compiling {ddir} failed")

    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: prepare_root.py ROOT PACKAGE_DIR", file=sys.stderr)
        return 2
    build(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
