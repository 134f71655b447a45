"""Mount paths a DatasetCache may not use, tried as an attacker would; the lexical form of paths."""

from __future__ import annotations

import re

import pytest

from dscache.api.spec import SpecError, parse_spec
from dscache.api.syspaths import (
    MOUNT_PATH_FORM,
    REFUSED_MOUNT_PATH,
    PathFormError,
    mount_path_refusal,
    normal_path,
)
from tests.factories import version_items

SPEC = {"source": {"s3": {"bucket": "b"}}, "versions": version_items("objects/thor=v1")}

# (mountPath, the system directory the refusal must name)
OVER_SYSTEM_DIRS = [
    ("/", "/bin"),
    ("/usr", "/usr"),
    ("/usr/", "/usr"),
    ("/usr/local/lib/python3.11/site-packages", "/usr"),
    ("/etc", "/etc"),
    ("/etc/ssl/certs", "/etc"),
    ("/bin", "/bin"),
    ("/sbin", "/sbin"),
    ("/lib", "/lib"),
    ("/lib64", "/lib64"),
    ("/lib/x86_64-linux-gnu", "/lib"),
    ("/proc", "/proc"),
    ("/sys", "/sys"),
    ("/dev", "/dev"),
    ("/boot", "/boot"),
    ("/root", "/root"),
    ("/run", "/run"),
    ("/var/run/secrets/kubernetes.io/serviceaccount", "/var/run"),
    ("/var", "/var/run"),
]
ALLOWED = [
    "/dscache",
    "/data/sets",
    "/data/sets/",
    "/tmp/data",
    "/home/me/data",
    "/library",
    "/usrdata",
    "/.d",
]


@pytest.mark.parametrize(("path", "system"), OVER_SYSTEM_DIRS)
def test_mount_paths_over_system_directories_are_refused_naming_the_directory(path: str, system: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({**SPEC, "mountPath": path})
    message = str(err.value)
    assert message.startswith(f"spec.mountPath: {path!r} ")
    assert f"the system directory {system}: the cache's links would replace what programs load" in message


def test_mount_path_usr_message() -> None:
    assert mount_path_refusal("/usr") == (
        "'/usr' is the system directory /usr: the cache's links would replace what programs load from "
        "there (code, configuration, credentials) in every pod that uses the cache; use a directory of its "
        "own such as /dscache"
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/data/../usr", "has a '..' segment"),
        ("/dscache/..", "has a '..' segment"),
        ("dscache", "is not an absolute path"),
        ("//usr", "has an empty or '.' segment"),
        ("/data/./x", "has an empty or '.' segment"),
    ],
)
def test_spellings_that_could_hide_a_system_directory_are_refused(path: str, reason: str) -> None:
    with pytest.raises(SpecError, match=re.escape(reason)):
        parse_spec({**SPEC, "mountPath": path})


@pytest.mark.parametrize("path", ALLOWED)
def test_data_directories_are_fine(path: str) -> None:
    assert parse_spec({**SPEC, "mountPath": path}).mount_path == path


@pytest.mark.parametrize("path", [p for p, _ in OVER_SYSTEM_DIRS] + ALLOWED)
def test_the_crd_patterns_agree_with_the_model(path: str) -> None:
    """The API server refuses with MOUNT_PATH_FORM and REFUSED_MOUNT_PATH what the model refuses."""
    assert re.match(MOUNT_PATH_FORM, path)
    refused_by_crd = re.match(REFUSED_MOUNT_PATH, path) is not None
    assert refused_by_crd == (mount_path_refusal(path) is not None)


@pytest.mark.parametrize("path", ["//usr", "/data/./x", "/a/../usr", "/a/..", "rel", "/a//"])
def test_the_crd_form_refuses_the_spellings_the_model_refuses(path: str) -> None:
    assert not re.match(MOUNT_PATH_FORM, path)


@pytest.mark.parametrize(
    ("path", "normal"),
    [("/", "/"), ("/a//b/./c/", "/a/b/c"), ("/mnt/nvme", "/mnt/nvme"), ("///x", "/x")],
)
def test_normal_path_drops_only_spelling(path: str, normal: str) -> None:
    assert normal_path(path) == normal


@pytest.mark.parametrize("path", ["/a/../b", "/..", "a/b", ""])
def test_normal_path_refuses_relative_and_dotdot(path: str) -> None:
    with pytest.raises(PathFormError):
        normal_path(path)
