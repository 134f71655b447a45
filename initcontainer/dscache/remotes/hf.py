"""Hugging Face Hub repositories (datasets or models) as remotes.

The Hub API (repo info, tree, commits) goes through huggingface_hub's HfApi; file bytes go through
the `resolve` URL (`hf_hub_url`) with Range requests on our own keep-alive client, so archives
inside tar shards can be fetched by offset and a dropped connection resumes. A branch or tag is
pinned to its commit on first use (`resolve_revision`), so one install reads one snapshot even if
the branch moves meanwhile, and the commit is what gets recorded.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import dscache
from dscache.api.urls import display_url
from dscache.remotes.base import Identity, NotFoundError, Pin, RemoteError, RemoteFile
from dscache.remotes.http import HttpFetcher
from dscache.remotes.retry import RetryPolicy, call_with_retry, check_rel_path, describe

if TYPE_CHECKING:
    from huggingface_hub import HfApi

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


_FOUND: set[tuple[str, str, str, str]] = set()
"""(endpoint, repo type, repo, commit) this process has found on the Hub: a remote opened at such a
commit needs no check of its own. The installer's workers, forked once the parent pinned the
revision, inherit it, so none of them asks the Hub for the commit again before its first GET (one
request per worker and install, each a first-byte latency on the way to the first bytes)."""


@dataclass(frozen=True)
class HfRef:
    """A branch or tag of a Hub repo and the commit it names."""

    kind: Literal["branch", "tag"]
    name: str
    commit: str


class _Repo:
    """What a repo's remotes share: API client, byte fetcher, and the pinned commit."""

    def __init__(
        self,
        repo: str,
        *,
        repo_type: str,
        revision: str,
        endpoint: str,
        token: str | None,
        policy: RetryPolicy,
    ) -> None:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        self.repo, self.repo_type, self.revision = repo, repo_type, revision
        self.endpoint, self.policy = endpoint, policy
        self.token = token
        name, version = "dscache", dscache.__version__
        self.api: HfApi = HfApi(
            endpoint=endpoint, token=token or False, library_name=name, library_version=version
        )
        headers = build_hf_headers(token=token or False, library_name=name, library_version=version)
        self.fetch = HttpFetcher(policy, headers=headers, secrets=(token,), if_match=False)
        # Even a commit id is checked once against the Hub, once per process (see `_FOUND`).
        self.commit: str | None = revision if (endpoint, repo_type, repo, revision) in _FOUND else None
        self.lock = threading.Lock()
        self.display = f"hf://{repo_type}s/{repo}"

    def call(self, fn: Callable[[], T], what: str, missing: str | None = None) -> T:
        """Run an HfApi call with retries; map its errors to safe RemoteErrors."""
        from huggingface_hub import errors

        try:
            return call_with_retry(fn, self.policy, what, secrets=(self.token,))
        except RemoteError:
            raise
        except errors.RevisionNotFoundError:
            raise RemoteError(f"{what}: revision {self.revision!r} not found") from None
        except errors.RepositoryNotFoundError:
            raise RemoteError(
                f"{what}: repository not found or not accessible (private repos need HF_TOKEN)"
            ) from None
        except errors.HfHubHTTPError as exc:
            if isinstance(exc, errors.EntryNotFoundError) or getattr(exc.response, "status_code", 0) == 404:
                raise NotFoundError(f"{what}: {missing or 'not found'}") from None
            if getattr(exc.response, "status_code", 0) in (401, 403):
                raise RemoteError(f"{what}: access denied; check HF_TOKEN") from None
            raise RemoteError(f"{what}: {describe(exc, (self.token,))}") from None
        except Exception as exc:
            if type(exc).__module__.startswith(("huggingface_hub", "httpx", "requests", "urllib3")):
                raise RemoteError(f"{what}: {describe(exc, (self.token,))}") from None
            raise

    def pin(self) -> str:
        """The commit every read uses; resolves the branch or tag once."""
        with self.lock:
            if self.commit is None:
                info: Any = self.call(
                    lambda: self.api.repo_info(
                        self.repo, repo_type=self.repo_type, revision=self.revision,
                        timeout=self.policy.read_timeout,
                    ),
                    f"{self.display}@{self.revision}",
                )  # fmt: skip
                sha = getattr(info, "sha", None)
                if not isinstance(sha, str) or not _COMMIT.match(sha):
                    raise RemoteError(
                        f"{self.display}@{self.revision}: the Hub returned no commit for the revision"
                    )
                self.commit = sha
                _FOUND.add((self.endpoint, self.repo_type, self.repo, sha))
            return self.commit


class HfRemote:
    """Files of a Hub repo under `prefix`, read at one pinned commit."""

    def __init__(
        self,
        repo: str,
        *,
        repo_type: str = "dataset",
        revision: str = "main",
        prefix: str = "",
        endpoint: str | None = None,
        token: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        """`endpoint` defaults to HF_ENDPOINT; `token` to huggingface_hub's (HF_TOKEN, then the login)."""
        if repo_type not in ("dataset", "model"):
            raise RemoteError(f"unsupported Hugging Face repo type {repo_type!r}")
        if token is None:
            from huggingface_hub import get_token

            token = get_token()
        endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self._repo = _Repo(
            repo,
            repo_type=repo_type,
            revision=revision,
            endpoint=endpoint,
            token=token,
            policy=policy or RetryPolicy.from_env(),
        )
        self.prefix = prefix.strip("/")

    @classmethod
    def _sibling(cls, repo: _Repo, prefix: str) -> HfRemote:
        self = cls.__new__(cls)
        self._repo, self.prefix = repo, prefix
        return self

    @property
    def root(self) -> HfRemote:
        """The same repo and pinned commit without the prefix (e.g. for README.md and index configs)."""
        return HfRemote._sibling(self._repo, "")

    @property
    def url(self) -> str:
        r = self._repo
        path = f"{r.repo}/{self.prefix}".rstrip("/")
        return f"hf://{r.repo_type}s/{path}@{r.revision}"

    @property
    def endpoint(self) -> str:
        return display_url(self._repo.endpoint)

    @property
    def commit(self) -> str | None:
        """The pinned commit, once resolved."""
        return self._repo.commit

    def _in_repo(self, path: str) -> str:
        check_rel_path(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def resolve_revision(self) -> str:
        return self._repo.pin()

    def _file_url(self, path: str) -> tuple[str, str]:
        from huggingface_hub import hf_hub_url

        r = self._repo
        in_repo = self._in_repo(path)
        commit = r.pin()
        url = hf_hub_url(r.repo, in_repo, repo_type=r.repo_type, revision=commit, endpoint=r.endpoint)
        return url, f"{r.display}/{in_repo}@{commit[:12]}"

    def read_bytes(self, path: str) -> bytes:
        url, what = self._file_url(path)
        return self._repo.fetch.read(url, what)

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        """The URL names the pinned commit, so the content cannot change under it; the answers (LFS
        redirect targets included) are still held to the pin's ETag and size."""
        url, what = self._file_url(path)
        pinned = pin if pin is not None else Pin()
        if pinned.identity.content_id is None:  # the commit in the URL names immutable content
            in_repo = self._in_repo(path)
            pinned.identity = replace(pinned.identity, content_id=f"{self._repo.pin()}:{in_repo}")
        return self._repo.fetch.stream(url, offset, length, what, pinned)

    def list_files(self, prefix: str) -> list[RemoteFile]:
        from huggingface_hub.hf_api import RepoFile

        r = self._repo
        clean = prefix.strip("/")
        in_repo = self._in_repo(clean) if clean else self.prefix
        commit = r.pin()
        cut = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[RemoteFile]:
            out = []
            tree = r.api.list_repo_tree(
                r.repo, path_in_repo=in_repo or None, recursive=True, revision=commit, repo_type=r.repo_type
            )
            for item in tree:
                if isinstance(item, RepoFile):
                    sha = item.lfs.sha256 if item.lfs is not None else None
                    # The content's own name (LFS sha256, else git blob id): the same at any commit.
                    content = Identity(size=int(item.size), content_id=sha or item.blob_id)
                    out.append(RemoteFile(item.path[cut:], int(item.size), sha256=sha, identity=content))
            return sorted(out, key=lambda f: f.path)

        try:
            return r.call(listing, f"{r.display}/{in_repo}@{commit[:12]}")
        except NotFoundError:
            return []  # no such directory: nothing under it, as on S3

    def list_refs(self) -> list[HfRef]:
        """The repo's branches and tags with their commits (HfApi.list_repo_refs), branches first,
        each kind sorted by name. Raises RemoteError."""
        r = self._repo
        refs: Any = r.call(
            lambda: r.api.list_repo_refs(r.repo, repo_type=r.repo_type), f"{r.display}: branches and tags"
        )
        branches = [HfRef("branch", b.name, b.target_commit) for b in refs.branches]
        tags = [HfRef("tag", t.name, t.target_commit) for t in refs.tags]
        return sorted(branches, key=lambda b: b.name) + sorted(tags, key=lambda t: t.name)

    def put_file(self, path: str, local: Path) -> None:
        self.put_files([(path, local)])

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str:
        """Upload several files in ONE commit to the branch (the Hub rate-limits commits); returns it."""
        from huggingface_hub import CommitOperationAdd

        ops = [
            CommitOperationAdd(path_in_repo=self._in_repo(p), path_or_fileobj=str(local))
            for p, local in files
        ]
        return self._commit(ops, message or f"dscache: upload {len(ops)} file(s)")

    def delete_files(self, paths: list[str], message: str | None = None) -> None:
        """Remove `paths` in ONE commit to the branch."""
        from huggingface_hub import CommitOperationDelete

        ops = [CommitOperationDelete(path_in_repo=self._in_repo(p)) for p in paths]
        self._commit(ops, message or f"dscache: remove {len(ops)} file(s)")

    def _commit(self, ops: list[Any], message: str) -> str:
        """One commit of `ops` (huggingface_hub CommitOperation*) to the branch; returns its id."""
        r = self._repo
        info: Any = r.call(
            lambda: r.api.create_commit(
                r.repo, ops, commit_message=message, repo_type=r.repo_type, revision=r.revision
            ),
            f"{r.display}@{r.revision}: commit",
        )
        with r.lock:
            if not _COMMIT.match(r.revision):
                r.commit = None  # the branch moved: the next read pins the new head
        return str(info.oid)

    def close(self) -> None:
        self._repo.fetch.close()
