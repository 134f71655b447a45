"""Environment names a DatasetCache author may not set: tried as an attacker would, on every path a
name takes (the spec model, the variables the webhook and `prepare` build, a ref on the volume)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from dscache.api.envnames import EnvNameError, build_env
from dscache.api.names import parse_version_arg
from dscache.api.spec import SpecError, parse_spec
from dscache.api.unsafeenv import REFUSED_PATTERN, refusal
from dscache.store.records import RefEntry
from tests.dscache.prepare.prepare_helpers import Dirs, publish_version, run_cli, write_ref
from tests.factories import version_items

THOR = parse_version_arg("objects/thor=v1")
SPEC = {"source": {"s3": {"bucket": "b"}}, "versions": version_items("objects/thor=v1")}

# glibc 2.39 sysdeps/generic/unsecvars.h, UNSECURE_ENVVARS: removed by ld.so for setuid programs.
GLIBC_UNSECURE = [
    "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LD_AUDIT", "LD_DEBUG",
    "LD_DEBUG_OUTPUT", "LD_DYNAMIC_WEAK", "LD_HWCAP_MASK", "LD_LIBRARY_PATH", "LD_ORIGIN_PATH",
    "LD_PRELOAD", "LD_PROFILE", "LD_SHOW_AUXV", "LD_USE_LOAD_BIAS", "LOCALDOMAIN", "LOCPATH",
    "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
]  # fmt: skip
# sudo plugins/sudoers/env.c, initial_badenv_table (wildcards written out with an example name).
SUDO_BADENV = [
    "IFS", "CDPATH", "LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES", "NLSPATH", "PATH_LOCALE", "LD_BIND_NOW",
    "_RLD_ARGS", "DYLD_INSERT_LIBRARIES", "TERMINFO", "TERMINFO_DIRS", "TERMPATH", "TERMCAP", "ENV",
    "BASH_ENV", "PS4", "GLOBIGNORE", "SHELLOPTS", "JAVA_TOOL_OPTIONS", "PERLIO_DEBUG", "PERLLIB",
    "PERL5LIB", "PERL5OPT", "PERL5DB", "FPATH", "NULLCMD", "READNULLCMD", "ZDOTDIR", "TMPPREFIX",
    "PYTHONHOME", "PYTHONPATH", "PYTHONINSPECT", "PYTHONUSERBASE", "RUBYLIB", "RUBYOPT",
]  # fmt: skip
# What an attacker reaches for beyond those lists: programs, startup hooks, plugins, trust anchors.
ATTACKS = [
    "PATH", "HOME", "PYTHONSTARTUP", "PYTHONPYCACHEPREFIX", "NODE_OPTIONS", "NODE_PATH", "_JAVA_OPTIONS",
    "CLASSPATH", "XDG_CONFIG_HOME", "GIT_EXEC_PATH", "CUDA_INJECTION64_PATH", "TORCH_EXTENSIONS_DIR",
    "VK_LAYER_PATH", "OPENSSL_MODULES", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "LIBRARY_PATH",
]  # fmt: skip


FINE = ["THOR_DIR", "DATA_PATH", "MY_PATH", "PATHS", "LDAP_URI", "NODE", "HOMEDIR", "SCENES", "DSCACHE_THOR"]


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    d = Dirs(tmp_path / "cache", tmp_path / "scratch", tmp_path / "links")
    d.cache.mkdir()
    d.scratch.mkdir()
    return d


@pytest.mark.parametrize("name", [*GLIBC_UNSECURE, *SUDO_BADENV, *ATTACKS])
def test_code_loading_names_are_refused_and_the_crd_pattern_agrees(name: str) -> None:
    assert refusal(name) is not None
    assert re.match(REFUSED_PATTERN, name), "the CRD's CEL rule must refuse it too"


@pytest.mark.parametrize("name", FINE)
def test_ordinary_names_pass_and_the_crd_pattern_agrees(name: str) -> None:
    assert refusal(name) is None
    assert not re.match(REFUSED_PATTERN, name)


def test_ld_preload_in_a_spec_is_refused_naming_the_source_and_why() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(
            {**SPEC, "versions": version_items("objects/thor=v1", envName={"objects/thor": "LD_PRELOAD"})}
        )
    assert str(err.value) == (
        "spec.versions[0].envName: LD_PRELOAD is not allowed (nor any LD_* name): the dynamic loader and "
        "the C library read it to choose the libraries and data files every program loads (glibc removes "
        "it for setuid programs); set to a directory of the cache, it would let the cache's source decide "
        "that in every pod that uses the cache"
    )


def test_path_in_a_spec_is_refused_naming_why() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({**SPEC, "versions": version_items("objects/thor=v1", envName={"objects/thor": "PATH"})})
    assert str(err.value).startswith(
        "spec.versions[0].envName: PATH is not allowed: shells and programs read it to find the "
        "programs they run"
    )


def test_the_variables_the_webhook_and_prepare_build_refuse_it_too() -> None:
    with pytest.raises(EnvNameError) as err:
        build_env(PurePosixPath("/dscache"), [(THOR, "PYTHONPATH")])
    assert str(err.value).startswith("objects/thor=v1: PYTHONPATH is not allowed (nor any PYTHON* name)")


def test_prepare_refuses_a_ref_that_names_ld_preload_and_writes_nothing(dirs: Dirs) -> None:
    """A ref written before the rule (or by hand) cannot make prepare export it."""
    publish_version(dirs.cache, "objects/thor=v1", {"f.txt": b"x"})
    write_ref(dirs.cache, "pod", [RefEntry("objects", "thor", "v1", env="LD_PRELOAD")])
    env_file = dirs.cache.parent / "env.sh"
    result = run_cli(*dirs.args("--ref", "pod", "--env-file", str(env_file)))
    assert result.code == 2
    assert "LD_PRELOAD is not allowed" in result.err and "Traceback" not in result.err
    assert not env_file.exists() and not dirs.links.exists()
    assert list(dirs.scratch.iterdir()) == []
