"""A fake Hugging Face Hub on 127.0.0.1, speaking the HTTP API huggingface_hub uses.

Implemented: repo info (`/api/{t}s/{id}[/revision/{rev}]`, with `sha`), tree listing with LFS info
and Link pagination, `resolve/{rev}/{path}` with Range (LFS files redirect to a signed-looking
`/cdn/...` URL like the real Hub), repo creation, preupload (always "regular") and NDJSON commits
(base64 content), tags and branches (created, and listed by `/api/{t}s/{id}/refs`), README YAML
validation. Each repo's commits are snapshot
directories on disk; branches and tags map names to commit ids. Optional token: when `token` is set,
every API/resolve request must carry `Authorization: Bearer <token>` (checked and logged).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from tests.servers.httpbase import Handler, ServerBase

LFS_SUFFIXES = (".tar", ".zst", ".parquet", ".bin", ".safetensors", ".gz", ".arrow", ".zip")
_API = re.compile(
    r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/(revision|tree|preupload|commit|tag|branch|refs)(?:/(.*))?)?$"
)
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_CDN = re.compile(r"^/cdn/([0-9a-f]{64})$")
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileInfo:
    size: int
    oid: str
    sha256: str | None  # set when stored in LFS


@dataclass
class HubRepo:
    repo_type: str
    repo_id: str
    root: Path
    refs: dict[str, str] = field(default_factory=dict)
    branches: set[str] = field(default_factory=set)
    infos: dict[str, dict[str, FileInfo]] = field(default_factory=dict)  # commit -> path -> info

    def snapshot(self, commit: str) -> Path:
        return self.root / commit

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if _COMMIT_ID.match(revision) and revision in self.infos:
            return revision
        return None


class FakeHub(ServerBase):
    """A Hub at `url`. Seed it with `create_repo`/`commit`/`tag`; arm `faults`; inspect `log`."""

    def __init__(self, root: Path, *, token: str | None = None, redirect_lfs: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.redirect_lfs = redirect_lfs
        self.page_size = 1000
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.blobs: dict[str, Path] = {}  # sha256 -> a file with that content (the "CDN")
        self.lock = threading.RLock()
        self._counter = itertools.count()
        super().__init__()

    def start(self) -> FakeHub:
        super().start()
        return self

    @property
    def endpoint(self) -> str:
        return self.url

    # --- seeding and inspection (also used by the HTTP handlers) ----------------------------------

    def is_lfs(self, path: str, size: int) -> bool:
        return path.endswith(LFS_SUFFIXES) or size >= 10 << 20

    def repo(self, repo_id: str, repo_type: str = "dataset") -> HubRepo:
        return self.repos[(repo_type, repo_id)]

    def create_repo(self, repo_id: str, repo_type: str = "dataset") -> HubRepo:
        with self.lock:
            key = (repo_type, repo_id)
            if key in self.repos:
                return self.repos[key]
            repo = HubRepo(repo_type, repo_id, self.root / f"{repo_type}s" / repo_id)
            repo.root.mkdir(parents=True, exist_ok=True)
            self.repos[key] = repo
            repo.branches.add("main")
            self._new_commit(
                repo, None, {".gitattributes": b"*.tar filter=lfs diff=lfs merge=lfs -text\n"}, ()
            )
            return repo

    def commit(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        repo_type: str = "dataset",
        branch: str = "main",
        delete: Iterable[str] = (),
    ) -> str:
        """Commit `files` (path -> content or local file) on `branch` (created from main if new)."""
        with self.lock:
            repo = self.create_repo(repo_id, repo_type)
            if branch not in repo.branches:
                repo.branches.add(branch)
                repo.refs[branch] = repo.refs["main"]
            return self._new_commit(repo, branch, files, delete)

    def commit_dir(
        self, repo_id: str, local: Path, *, prefix: str = "", repo_type: str = "dataset", branch: str = "main"
    ) -> str:
        """Commit every file under the local directory `local` (at `prefix/` in the repo)."""
        files: dict[str, bytes | Path] = {
            "/".join(p for p in (prefix.strip("/"), f.relative_to(local).as_posix()) if p): f
            for f in sorted(Path(local).rglob("*"))
            if f.is_file()
        }
        return self.commit(repo_id, files, repo_type=repo_type, branch=branch)

    def tag(self, repo_id: str, tag: str, revision: str = "main", repo_type: str = "dataset") -> str:
        with self.lock:
            repo = self.repo(repo_id, repo_type)
            sha = repo.resolve(revision)
            if sha is None:
                raise KeyError(revision)
            repo.refs[tag] = sha
            return sha

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> str:
        sha = self.repo(repo_id, repo_type).resolve(revision)
        if sha is None:
            raise KeyError(revision)
        return sha

    def read(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "dataset") -> bytes:
        repo = self.repo(repo_id, repo_type)
        return (repo.snapshot(self.head(repo_id, revision, repo_type)) / path).read_bytes()

    def _new_commit(
        self, repo: HubRepo, branch: str | None, files: Mapping[str, bytes | Path], delete: Iterable[str]
    ) -> str:
        parent = repo.refs.get(branch) if branch else None
        seed = f"{repo.repo_id}:{parent}:{next(self._counter)}:{secrets.token_hex(8)}"
        sha = hashlib.sha1(seed.encode()).hexdigest()
        snap = repo.snapshot(sha)
        if parent is not None:
            shutil.copytree(repo.snapshot(parent), snap, copy_function=os.link)
        else:
            snap.mkdir(parents=True)
        infos = dict(repo.infos.get(parent, {})) if parent else {}
        for rel in delete:
            target = snap / rel
            if target.is_dir():
                shutil.rmtree(target)
                infos = {p: i for p, i in infos.items() if not p.startswith(rel.rstrip("/") + "/")}
            else:
                target.unlink(missing_ok=True)
                infos.pop(rel, None)
        for rel, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            target = snap / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # never write through a hard link into older snapshots
            target.write_bytes(data)
            sha256 = hashlib.sha256(data).hexdigest() if self.is_lfs(rel, len(data)) else None
            infos[rel] = FileInfo(len(data), git_blob_oid(data), sha256)
            if sha256:
                self.blobs[sha256] = target
        repo.infos[sha] = infos
        repo.refs[branch or "main"] = sha
        return sha


class _HubHandler(Handler):
    owner: FakeHub

    def _authorized(self) -> bool:
        token = self.owner.token
        if token is None:
            return True
        got = self.headers.get("Authorization")
        if got == f"Bearer {token}":
            return True
        if got:
            self.send_error_json(401, "Invalid credentials in Authorization header")
        else:
            self.send_error_json(401, "Repository Not Found", "RepoNotFound")
        return False

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.url_path
        body = self.read_body() if self.command == "POST" else b""
        if (m := _CDN.match(path)) and self.command in ("GET", "HEAD"):
            blob = self.owner.blobs.get(m.group(1))
            if blob is None:
                self.send(404, {"Content-Type": "text/plain"}, b"no such blob\n")
            else:
                self.send_file(blob, f'"{m.group(1)}"')
            return
        if not self._authorized():
            return
        try:
            if path == "/api/validate-yaml" and self.command == "POST":
                self.send_json(200, {"errors": [], "warnings": []})
            elif path == "/api/repos/create" and self.command == "POST":
                self._create_repo(json.loads(body or b"{}"))
            elif m := _API.match(path):
                self._api(m.group(1)[:-1], m.group(2), m.group(3), m.group(4), body)
            elif (m := _RESOLVE.match(path)) and self.command in ("GET", "HEAD"):
                self._resolve(
                    "dataset" if m.group(1) else "model", m.group(2), unquote(m.group(3)), m.group(4)
                )
            else:
                self.send_error_json(404, f"no route for {self.command} {path}")
        except Exception as exc:  # a bug in the fake must fail the client loudly, not hang it
            self.send_error_json(500, f"fake hub error: {type(exc).__name__}: {exc}")

    def _repo(self, repo_type: str, repo_id: str) -> Any:
        repo = self.owner.repos.get((repo_type, repo_id))
        if repo is None:
            self.send_error_json(404, "Repository Not Found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: HubRepo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            self.send_error_json(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _create_repo(self, payload: dict[str, Any]) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        exists = (repo_type, repo_id) in self.owner.repos
        self.owner.create_repo(repo_id, repo_type)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.owner.url}/{prefix}{repo_id}"
        if exists:
            self.send_error_json(409, "You already created this repo")
        else:
            self.send_json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _api(self, repo_type: str, repo_id: str, action: str | None, rest: str | None, body: bytes) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        with self.owner.lock:
            if action in (None, "revision") and self.command in ("GET", "HEAD"):
                sha = self._commit_of(repo, unquote(rest or "main"))
                if sha:
                    self._info(repo, sha)
            elif action == "tree" and self.command == "GET":
                rev, _, sub = (rest or "").partition("/")
                sha = self._commit_of(repo, unquote(rev))
                if sha:
                    self._tree(repo, sha, unquote(sub).strip("/"))
            elif action == "refs" and self.command == "GET" and not rest:
                self._refs(repo)
            elif action == "preupload" and self.command == "POST":
                files = json.loads(body)["files"]
                out = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                self.send_json(200, {"files": out})
            elif action == "commit" and self.command == "POST":
                self._commit(repo, unquote(rest or "main"), body)
            elif action == "tag" and self.command == "POST":
                sha = self._commit_of(repo, unquote(rest or "main"))
                if sha:
                    tag = json.loads(body)["tag"]
                    if tag in repo.refs:
                        self.send_error_json(409, f"Tag {tag} already exists")
                    else:
                        repo.refs[tag] = sha
                        self.send_json(200, {})
            elif action == "branch" and self.command == "POST":
                name = unquote(rest or "")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                sha = self._commit_of(repo, start)
                if sha:
                    if name in repo.refs:
                        self.send_error_json(409, f"Branch {name} already exists")
                    else:
                        repo.refs[name] = sha
                        repo.branches.add(name)
                        self.send_json(200, {})
            else:
                self.send_error_json(405, f"{self.command} {action} not supported by the fake hub")

    def _refs(self, repo: HubRepo) -> None:
        """Branches and tags as the Hub lists them (`GitRefs`: name, full ref, target commit)."""

        def entry(name: str, kind: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": repo.refs[name]}

        doc: dict[str, Any] = {
            "branches": [entry(n, "heads") for n in sorted(repo.branches)],
            "tags": [entry(n, "tags") for n in sorted(repo.refs) if n not in repo.branches],
            "converts": [],
        }
        if parse_qs(self.url_query).get("include_prs"):
            doc["pullRequests"] = []
        self.send_json(200, doc)

    def _info(self, repo: HubRepo, sha: str) -> None:
        siblings = [{"rfilename": p} for p in sorted(repo.infos[sha])]
        self.send_json(
            200,
            {
                "id": repo.repo_id,
                "sha": sha,
                "private": self.owner.token is not None,
                "siblings": siblings,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "tags": [],
                "downloads": 0,
                "likes": 0,
            },
        )

    def _tree(self, repo: HubRepo, sha: str, sub: str) -> None:
        recursive = parse_qs(self.url_query).get("recursive", ["false"])[0].lower() in ("true", "1")
        infos = repo.infos[sha]
        base = f"{sub}/" if sub else ""
        if sub and sub not in {d for p in infos for d in _parents(p)}:
            self.send_error_json(404, f"{sub} does not exist on {sha}", "EntryNotFound")
            return
        entries: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path in sorted(infos):
            if not path.startswith(base):
                continue
            tail = path[len(base) :]
            if not recursive and "/" in tail:
                dirs.add(base + tail.split("/", 1)[0])
                continue
            if recursive:
                dirs.update(d for d in _parents(path) if d.startswith(base) and d != sub)
            info = infos[path]
            entry: dict[str, Any] = {"type": "file", "oid": info.oid, "size": info.size, "path": path}
            if info.sha256:
                entry["lfs"] = {"oid": info.sha256, "size": info.size, "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                    for d in sorted(dirs)]  # fmt: skip
        entries.sort(key=lambda e: str(e["path"]))
        cursor = int(parse_qs(self.url_query).get("cursor", ["0"])[0])
        page = entries[cursor : cursor + self.owner.page_size]
        headers = {}
        if cursor + self.owner.page_size < len(entries):
            query = f"recursive={str(recursive).lower()}&cursor={cursor + len(page)}"
            nxt = f"{self.owner.url}{self.url_path}?{query}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        self.send_json(200, page, headers)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, quoted_path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return
        sha = self._commit_of(repo, revision)
        if sha is None:
            return
        path = unquote(quoted_path)
        info = repo.infos[sha].get(path)
        if info is None:
            self.send_error_json(404, "Entry not found", "EntryNotFound")
            return
        headers = {"X-Repo-Commit": sha}
        if info.sha256 and self.owner.redirect_lfs:
            signed = f"/cdn/{info.sha256}?Expires=4102444800&X-Amz-Signature={secrets.token_hex(16)}"
            self.send(302, {**headers, "Location": signed, "X-Linked-Size": str(info.size),
                            "X-Linked-Etag": f'"{info.sha256}"'})  # fmt: skip
            return
        etag = f'"{info.sha256 or info.oid}"'
        self.send_file(repo.snapshot(sha) / path, etag, headers)

    def _commit(self, repo: HubRepo, revision: str, body: bytes) -> None:
        if revision not in repo.branches:
            self.send_error_json(404, f"Invalid rev id: {revision} is not a branch", "RevisionNotFound")
            return
        files: dict[str, bytes | Path] = {}
        deletes: list[str] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            op = json.loads(line)
            key, value = op["key"], op["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deletes.append(value["path"])
            elif key != "header":
                self.send_error_json(400, f"fake hub does not support commit operation {key!r}")
                return
        sha = self.owner._new_commit(repo, revision, files, deletes)
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        self.send_json(
            200,
            {
                "commitUrl": f"{self.owner.url}/{prefix}{repo.repo_id}/commit/{sha}",
                "commitOid": sha,
                "pullRequestUrl": None,
            },
        )


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


FakeHub.handler = _HubHandler


def resolve_url(hub: FakeHub, repo_id: str, path: str, revision: str, repo_type: str = "dataset") -> str:
    """The resolve URL of a file, as huggingface_hub builds it (for asserting on the log)."""
    prefix = "" if repo_type == "model" else f"/{repo_type}s"
    return f"{prefix}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"
