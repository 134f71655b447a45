"""The environment variables the data-plane commands read: one table that feeds each command's help
(epilog) and the up-front check of the `DSCACHE_*` values, which names the variable to fix.

A variable only one kind of remote reads (`AWS_ENDPOINT_URL` for s3://, `HF_ENDPOINT` for hf://,
`STORAGE_EMULATOR_HOST` for gs://) is checked only when the command uses a remote of that kind
(`source_problems`, called once the command knows its source): a stale endpoint left in the shell
does not stop a file:// install.

The `DSCACHE_RETRY_*`/`DSCACHE_*_TIMEOUT` values are parsed by `dscache.remotes.retry.RetryPolicy`;
this check runs first (before any lock, remote or worker) and also refuses what that parser would let
through or crash on: NaN, infinities where they make no sense, negative delays, a fractional or
non-positive attempt count. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from dscache.api.sizes import ZSTD_WINDOW_ENV, parse_count, parse_positive_size, parse_zstd_window
from dscache.api.urls import endpoint_refusal, hide_userinfo


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    if math.isnan(value):
        raise ValueError("not a number")
    return value


def _attempts(raw: str) -> None:
    value = _float(raw)
    if not value.is_integer() or value < 1:
        raise ValueError("must be a whole number >= 1")


def _count(raw: str) -> None:
    parse_count(raw)


def _size(raw: str) -> None:
    parse_positive_size(raw)


def _delay(raw: str) -> None:
    value = _float(raw)
    if value < 0 or math.isinf(value):
        raise ValueError("must be a finite number of seconds >= 0")


def _deadline(raw: str) -> None:
    if _float(raw) < 0:
        raise ValueError("must be seconds >= 0 (inf: no deadline)")


def _timeout(raw: str) -> None:
    value = _float(raw)
    if value <= 0 or math.isinf(value):
        raise ValueError("must be a finite number of seconds > 0")


def _zstd_window(raw: str) -> None:
    parse_zstd_window(raw)


def _interval(raw: str) -> None:
    value = _float(raw)
    if value < 0 or math.isinf(value):
        raise ValueError("must be a finite number of seconds >= 0")


def _api_url(raw: str) -> None:
    refused = endpoint_refusal(raw, credentials=False)
    if refused is not None:
        raise ValueError(f"must be an http(s)://HOST[:PORT] URL of the Kubernetes API server: {refused}")


def _s3_endpoint(raw: str) -> None:
    refused = endpoint_refusal(raw, dns=True, credentials=False)  # botocore takes DNS host names only
    if refused is not None:
        raise ValueError(f"not a usable endpoint URL: {refused}")


def _endpoint(raw: str) -> None:
    refused = endpoint_refusal(raw, credentials=False)
    if refused is not None:
        raise ValueError(f"not a usable endpoint URL: {refused}")


def _emulator_host(raw: str) -> None:
    refused = endpoint_refusal(raw if "://" in raw else f"http://{raw}", credentials=False)
    if refused is not None:
        raise ValueError(f"not HOST:PORT nor an http(s):// URL: {refused}")


@dataclass(frozen=True)
class EnvVar:
    name: str
    meaning: str
    check: Callable[[str], None] | None = None
    """Raises ValueError (the reason) for a value that cannot be used; None: not checked here."""
    kind: str | None = None
    """The `Source` field (`dscache.api.spec.SOURCE_KINDS`) of the one kind of remote that reads it;
    None: the command reads it whatever its remote."""
    exact: bool = False
    """Its reader uses the value as written (a URL): checked unstripped, so a stray space or newline is
    refused here rather than failing a request later."""


RETRY = (
    EnvVar(
        "DSCACHE_RETRY_ATTEMPTS",
        "tries per remote operation without progress, a count (default 8)",
        _attempts,
    ),
    EnvVar("DSCACHE_RETRY_BASE_DELAY", "first retry backoff cap, seconds (default 0.5)", _delay),
    EnvVar("DSCACHE_RETRY_MAX_DELAY", "largest retry backoff, seconds (default 30)", _delay),
    EnvVar(
        "DSCACHE_RETRY_DEADLINE", "give up after this many seconds without progress (default 600)", _deadline
    ),
    EnvVar("DSCACHE_CONNECT_TIMEOUT", "connect timeout, seconds (default 15)", _timeout),
    EnvVar(
        "DSCACHE_READ_TIMEOUT",
        "seconds of silence before a connection counts as dropped (default 60)",
        _timeout,
    ),
)
STREAMS = (
    EnvVar(
        "DSCACHE_STREAMS",
        "streams an install reads large objects over, all jobs together (at least one per job), a count "
        "(default 32)",
        _count,
    ),
    EnvVar("DSCACHE_PART_SIZE", "smallest part of an object fetched in parts, a size (default 8Mi)", _size),
)
REMOTES = (
    EnvVar(
        "AWS_ACCESS_KEY_ID", "S3 credentials (also AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE)"
    ),
    EnvVar(
        "AWS_ENDPOINT_URL",
        "S3 endpoint for R2/MinIO (AWS_ENDPOINT_URL_S3 wins; the spec's endpoint over both)",
        _s3_endpoint,
        "s3",
        exact=True,
    ),
    EnvVar("AWS_ENDPOINT_URL_S3", "S3 endpoint, over AWS_ENDPOINT_URL", _s3_endpoint, "s3", exact=True),
    EnvVar("AWS_REGION", "S3 region (also AWS_DEFAULT_REGION)"),
    EnvVar("DSCACHE_S3_SSE_C_KEY", "base64 of the key of S3 objects encrypted with SSE-C (never shown)"),
    EnvVar("HF_TOKEN", "Hugging Face token for private or gated repos"),
    EnvVar(
        "HF_ENDPOINT",
        "Hugging Face Hub endpoint (default https://huggingface.co)",
        _endpoint,
        "hugging_face",
        exact=True,
    ),
    EnvVar(
        "STORAGE_EMULATOR_HOST",
        "gs:// sources: a GCS emulator's HOST:PORT or URL (the spec's endpoint wins)",
        _emulator_host,
        "gcs",
    ),
    EnvVar("DSCACHE_HTTP_TOKEN", "http remotes: bearer token (never shown)"),
    EnvVar("DSCACHE_HTTP_USERNAME", "http remotes: Basic auth user, without DSCACHE_HTTP_TOKEN"),
    EnvVar("DSCACHE_HTTP_PASSWORD", "http remotes: Basic auth password (never shown)"),
    EnvVar("HTTPS_PROXY", "proxy for https remotes (also HTTP_PROXY, ALL_PROXY; NO_PROXY exempts hosts)"),
)
ZSTD = EnvVar(
    ZSTD_WINDOW_ENV,
    "largest zstd window an archive may need, a size (default 2Gi, zstd --long=31; at least 1Ki)",
    _zstd_window,
)
LIBARCHIVE = EnvVar("LIBARCHIVE", "path of the libarchive shared library, if not found by the loader")
KUBE = (
    EnvVar(
        "DSCACHE_KUBE_API_URL",
        "with --report-status: the API server (default: KUBERNETES_SERVICE_HOST/PORT)",
        _api_url,
        exact=True,
    ),
    EnvVar(
        "DSCACHE_STATUS_INTERVAL",
        "with --report-status: least seconds between progress writes to the API server (default 10)",
        _interval,
    ),
)

BY_COMMAND: dict[str, tuple[EnvVar, ...]] = {
    "install": (*RETRY, *STREAMS, *REMOTES, ZSTD, LIBARCHIVE, *KUBE),
    "publish": (*RETRY, *REMOTES),
    "ls-remote": (*RETRY, *REMOTES),
    "demo": (*RETRY, ZSTD, LIBARCHIVE),  # its install opens the local remote with the retry policy
}
"""The variables each command reads (commands not listed read none)."""


def _problems(variables: Iterable[EnvVar], env: Mapping[str, str]) -> list[str]:
    found = []
    for var in variables:
        raw = env.get(var.name)
        if var.check is None or raw is None or raw == "" or (raw.strip() == "" and not var.exact):
            continue
        try:
            var.check(raw if var.exact else raw.strip())
        except ValueError as err:
            found.append(f"environment variable {var.name}={hide_userinfo(raw)!r}: {err}")
    return found


def problems(command: str, env: Mapping[str, str]) -> list[str]:
    """One line per unusable value `command` reads whatever its remote (`DSCACHE_*`): `NAME='value':
    reason` (credentials in a URL shown as `***`). The variables of one kind of remote are
    `source_problems`'."""
    return _problems((v for v in BY_COMMAND.get(command, ()) if v.kind is None), env)


_STS_REASON = (
    "spec.source.s3.endpoint is set, so S3 requests do not use it, but botocore also sends the "
    "requests that fetch credentials (STS: IRSA web identity, assumed roles) there"
)
"""Why `AWS_ENDPOINT_URL` is still checked when the spec names the S3 endpoint."""


def source_problems(
    command: str, kind: str, env: Mapping[str, str], *, endpoint_set: bool = False, anonymous: bool = False
) -> list[str]:
    """As `problems`, for the variables only a remote of `kind` (a `Source` field: "s3", "gcs",
    "hugging_face", ...) reads, when `command` uses one. For an s3 source whose spec sets the endpoint
    (`endpoint_set`), `AWS_ENDPOINT_URL_S3` is not read at all (not checked) and `AWS_ENDPOINT_URL` only
    for credentials (checked unless `anonymous`: unsigned requests fetch none), the line saying so."""
    variables = [v for v in BY_COMMAND.get(command, ()) if v.kind == kind]
    if kind != "s3" or not endpoint_set:
        return _problems(variables, env)
    if anonymous:
        return []
    sts = [v for v in variables if v.name == "AWS_ENDPOINT_URL"]
    return [f"{line} ({_STS_REASON})" for line in _problems(sts, env)]


def epilog_lines(command: str) -> list[str]:
    """The `Environment:` section of a command's help."""
    variables = BY_COMMAND.get(command, ())
    if not variables:
        return ["Environment: none read."]
    width = max(len(v.name) for v in variables)
    return ["Environment:", *(f"  {v.name:<{width}}  {v.meaning}" for v in variables)]
