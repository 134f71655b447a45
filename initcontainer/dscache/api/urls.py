"""URLs safe to show (in logs, status, events and error messages), and the check that a URL can be an
endpoint. Standard library only."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_LOOSE_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")  # docker/compose service names have '_'
ENDPOINT_EXAMPLE = "https://storage.example.com or http://127.0.0.1:9000"

HTTP_FILES = (
    "plain http(s) cannot list a directory, so it serves the Archives layout only (each version's "
    "`mjthor_resource_file_to_size_mb.json`, `dscache-manifest.json` and the archives they name, as "
    "`dscache publish` writes them to another remote and any web server can then serve them); for a plain "
    "file tree (layout Files) use an s3, gcs, azure, huggingFace or file source"
)
"""Why an http source cannot have layout Files: the spec refuses the pair, the remote's listing says so."""


def display_url(url: str) -> str:
    """`url` without userinfo, query or fragment: safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def hide_userinfo(url: str) -> str:
    """Pure: `url` with any `user:password@` replaced by `***@`; never raises, even on a URL that
    does not parse (for error messages about such URLs). Everything before the last '@' ahead of any
    '?' or '#' is hidden, also without a scheme (`user:pw@host:9000`) and when the password holds a
    '/': hiding a path's '@' too is the price of never showing a secret."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    head = rest.split("?", 1)[0].split("#", 1)[0]
    if "@" not in head:
        return url
    shown = rest[len(head.rpartition("@")[0]) + 1 :]
    return f"{scheme}{sep}***@{shown}"


def _parse_refusal(err: ValueError) -> str:
    """The reason urllib gives for an unparseable URL, in words."""
    text = str(err)
    if "IPv6" in text:
        return "its host is not a valid bracketed IPv6 address (write e.g. http://[::1]:9000)"
    if text.startswith("Port"):
        return "its port is not a number from 1 to 65535"
    return text


def _host_refusal(netloc: str, host: str, dns: bool) -> str | None:
    """Why `host` (from `netloc`, as written) is no host name nor IP address, or None."""
    if "[" in netloc:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return f"[{host}] is not an IPv6 address"
        return None
    written = netloc.rpartition("@")[2].rpartition(":")[0] or netloc.rpartition("@")[2]
    label = _LABEL if dns else _LOOSE_LABEL
    bad = [part for part in host.rstrip(".").split(".") if not label.match(part)]
    if len(host) > 253 or bad:
        chars = "ASCII letters, digits and '-'" if dns else "ASCII letters, digits, '_' and '-'"
        return (
            f"host {written!r} is not a host name: dot-separated labels of {chars} (not starting or "
            "ending with '-', at most 63 characters each), or an IP address"
        )
    return None


def endpoint_refusal(url: str, *, dns: bool = False, credentials: bool = True) -> str | None:
    """Pure: why `url` cannot be an endpoint or base URL, `http(s)://HOST[:PORT][/PATH]`, in words
    (no regular expressions, the URL not repeated), or None when it can. Catches what would make
    urllib, botocore or the HTTP clients fail later with a library's message: a scheme other than
    http/https, no host, a host with characters DNS names cannot have (`ACCOUNT_ID.example.com`), an
    unclosed or invalid IPv6 bracket, a port that is no number from 1 to 65535, spaces or control
    characters anywhere (a URL is used as written: a stray space is refused, never stripped). `dns`:
    host names as DNS (and botocore) take them, without the '_' container host names may have.
    `credentials`: whether `user:password@` may be written in the URL (an http source's base URL);
    an endpoint's credentials come from the remote's own settings, so there it is refused."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "a URL cannot contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is no number in range
    except ValueError as err:
        return _parse_refusal(err)
    if port == 0:
        return "its port is not a number from 1 to 65535"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http:// or https:// URL (e.g. {ENDPOINT_EXAMPLE})"
    host = parts.hostname
    if not host:
        return f"no host (e.g. {ENDPOINT_EXAMPLE})"
    if not credentials and "@" in parts.netloc:
        return (
            "an endpoint URL cannot carry credentials (user:password@): give them as the remote's "
            "credentials (its secretRef, or the environment)"
        )
    return _host_refusal(parts.netloc, host, dns)
