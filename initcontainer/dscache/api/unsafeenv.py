"""Variable names a DatasetCache may not give its sources: those that change what code a process runs.

A cache's `spec.versions[].envName`s set variables in every container of every pod that uses the
cache, each to a directory whose files come from the cache's source (`<mountPath>/<dataType>/<source>`). Named
`LD_LIBRARY_PATH`, `PATH` or `PYTHONPATH`, that directory would supply the workload's libraries,
programs or modules; named `SSL_CERT_DIR`, the certificate authorities it trusts. So such names are
refused wherever a spec is read (the model, the CRD, the webhook's env and `prepare`'s env file).

The list is the union of lists others keep for the same reason, each entry with its origin:
- glibc's `UNSECURE_ENVVARS` (sysdeps/generic/unsecvars.h), which the dynamic loader removes for
  setuid programs, and the loader's whole `LD_` namespace (ld.so(8)); macOS dyld's `DYLD_` (dyld(1));
  IRIX's `_RLD` (kept by sudo);
- sudo's `initial_badenv_table` (plugins/sudoers/env.c), the variables it removes even with
  `env_reset` off: shells, terminfo, Perl, Python, Ruby, Java;
- the interpreters' own documentation of variables that add search paths or run code at start-up:
  every `PYTHON*` variable (python(1): PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONUSERBASE,
  PYTHONPYCACHEPREFIX, PYTHONWARNINGS, PYTHONBREAKPOINT...), `PERL*`, `RUBY*` and RubyGems' GEM_PATH,
  GEM_HOME, `NODE_*` (node(1): NODE_OPTIONS, NODE_PATH, NODE_EXTRA_CA_CERTS), `LUA_*`, the JVM's
  JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, JDK_JAVA_OPTIONS, CLASSPATH, JAVA_HOME, R's startup files and
  library paths, Julia's load and depot paths;
- GCC's search paths (gcc(1), ENVIRONMENT: CPATH, C_INCLUDE_PATH, CPLUS_INCLUDE_PATH, LIBRARY_PATH,
  GCC_EXEC_PREFIX, COMPILER_PATH) and pkg-config's PKG_CONFIG_PATH: training pods compile kernels
  and extensions at run time;
- `GIT_*` (git(1): GIT_EXEC_PATH, GIT_CONFIG_GLOBAL, GIT_SSH_COMMAND, GIT_TEMPLATE_DIR run programs
  or hooks), `XDG_*` (the XDG Base Directory specification: where programs read configuration,
  data and plugins), HOME (every program's startup files, `~/.local` site-packages, git and pip
  configuration);
- libraries that load plugins from a directory a variable names: OpenSSL (OPENSSL_MODULES,
  OPENSSL_ENGINES, OPENSSL_CONF: `OPENSSL_*`), the Vulkan loader (VK_ICD_FILENAMES, VK_DRIVER_FILES,
  VK_ADD_DRIVER_FILES, VK_LAYER_PATH, VK_ADD_LAYER_PATH), libglvnd's EGL vendor files, Mesa's
  LIBGL_DRIVERS_PATH, the OpenCL ICD loader (OCL_ICD_VENDORS), GStreamer and Qt plugin paths, CUDA's
  injection libraries (CUDA_INJECTION32_PATH, CUDA_INJECTION64_PATH), and the caches of compiled
  code that PyTorch, Triton and Hugging Face transformers import from (TORCH_EXTENSIONS_DIR,
  TRITON_CACHE_DIR, HF_MODULES_CACHE); CUDA_HOME and CUDA_PATH say where nvcc is;
- trust anchors: OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR (`SSL_*`, also SSLKEYLOGFILE), requests'
  REQUESTS_CA_BUNDLE, curl's CURL_CA_BUNDLE, botocore's AWS_CA_BUNDLE, gRPC's
  GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, pip's PIP_CERT.

No list can name every variable some program reads; a workload that takes code from a variable not
listed here should not let an untrusted DatasetCache name it. Names dscache derives
(`DSCACHE_<DT>_<SRC>`, `DSCACHE_ROOT`) are never refused: dscache reads none of its own settings from a
workload's environment, and an explicit name equal to a derived one is refused as a clash when the
variables are built (`dscache.api.envnames`). Standard library only (`prepare` imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Refused:
    """Names refused for one reason: whole names, and prefixes (every name that starts with one)."""

    names: tuple[str, ...]
    prefixes: tuple[str, ...]
    why: str


REFUSED: tuple[Refused, ...] = (
    Refused(
        names=(
            "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
            "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "PATH_LOCALE", "RESOLV_HOST_CONF", "RES_OPTIONS",
            "TMPDIR", "TZDIR",
        ),
        prefixes=("LD_", "DYLD_", "_RLD"),
        why="the dynamic loader and the C library read it to choose the libraries and data files every "
        "program loads (glibc removes it for setuid programs)",
    ),
    Refused(
        names=(
            "PATH", "HOME", "IFS", "CDPATH", "ENV", "BASH_ENV", "BASHOPTS", "SHELLOPTS", "PS4",
            "PROMPT_COMMAND", "GLOBIGNORE", "FPATH", "NULLCMD", "READNULLCMD", "ZDOTDIR", "TMPPREFIX",
            "TERMINFO", "TERMINFO_DIRS", "TERMPATH", "TERMCAP",
        ),
        prefixes=("XDG_", "GIT_"),
        why="shells and programs read it to find the programs they run and the startup files and "
        "configuration they execute",
    ),
    Refused(
        names=(
            "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "JAVA_HOME",
            "GEM_PATH", "GEM_HOME", "JULIA_LOAD_PATH", "JULIA_DEPOT_PATH", "R_PROFILE",
            "R_PROFILE_USER", "R_ENVIRON", "R_ENVIRON_USER", "R_LIBS", "R_LIBS_USER", "R_LIBS_SITE",
        ),
        prefixes=("PYTHON", "PERL", "RUBY", "NODE_", "LUA_"),
        why="an interpreter reads it to find the modules it imports or the code it runs at start-up",
    ),
    Refused(
        names=(
            "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX",
            "COMPILER_PATH", "PKG_CONFIG_PATH", "CUDA_HOME", "CUDA_PATH",
        ),
        prefixes=(),
        why="compilers read it to find headers, libraries and tools for the code they build at run time",
    ),
    Refused(
        names=(
            "VK_ICD_FILENAMES", "VK_DRIVER_FILES", "VK_ADD_DRIVER_FILES", "VK_LAYER_PATH",
            "VK_ADD_LAYER_PATH", "__EGL_VENDOR_LIBRARY_DIRS", "__EGL_VENDOR_LIBRARY_FILENAMES",
            "LIBGL_DRIVERS_PATH", "OCL_ICD_VENDORS", "GST_PLUGIN_PATH", "GST_PLUGIN_SYSTEM_PATH",
            "QT_PLUGIN_PATH", "CUDA_INJECTION32_PATH", "CUDA_INJECTION64_PATH", "TORCH_EXTENSIONS_DIR",
            "TRITON_CACHE_DIR", "HF_MODULES_CACHE",
        ),
        prefixes=("OPENSSL_",),
        why="a library loads plugins, drivers or compiled code from the directory it names",
    ),
    Refused(
        names=(
            "SSLKEYLOGFILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE",
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "PIP_CERT",
        ),
        prefixes=("SSL_",),
        why="TLS clients read it to choose the certificate authorities they trust",
    ),
)  # fmt: skip


def refusal(name: str) -> str | None:
    """Why a DatasetCache may not name a variable `name` (None: it may)."""
    for rule in REFUSED:
        prefix = next((p for p in rule.prefixes if name.startswith(p)), None)
        if name in rule.names or prefix is not None:
            family = f" (nor any {prefix}* name)" if prefix is not None else ""
            return (
                f"{name} is not allowed{family}: {rule.why}; set to a directory of the cache, it would let "
                "the cache's source decide that in every pod that uses the cache"
            )
    return None


def _refused_pattern() -> str:
    """An RE2 pattern matching exactly the names `refusal` refuses (for the CRD's CEL rule)."""
    names = "|".join(re.escape(n) for rule in REFUSED for n in rule.names)
    prefixes = "|".join(re.escape(p) for rule in REFUSED for p in rule.prefixes)
    return rf"^(?:(?:{names})$|(?:{prefixes}))"


REFUSED_PATTERN = _refused_pattern()
