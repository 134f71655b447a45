"""Transfer one work item into a version's staging dir: stream-extract an archive, or copy a file.

Both are resumable at item granularity: an archive counts as done only with its `.done.json` marker
(written after extraction and verification); a file only once renamed from `parts/` into `files/`.
A partially copied file resumes from its length with a Range request.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dscache.errors import DscacheError
from dscache.install.extract import Extracted, extract_stream
from dscache.layouts.plan import WorkItem
from dscache.remotes.base import Remote
from dscache.store.atomic import read_json, write_json_atomic
from dscache.store.fsops import rmtree_readonly
from dscache.store.modes import file_mode, is_executable

Progress = Callable[[int], None]
DIGEST_ATTEMPTS = 2


class VerificationError(DscacheError):
    """Transferred bytes do not match the size or digest the remote published."""


@dataclass(frozen=True)
class StagingPaths:
    """Layout of one version's staging dir."""

    root: Path

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    def archive_dir(self, name: str) -> Path:
        return self.archives / f"{name}.d"

    def archive_done(self, name: str) -> Path:
        return self.archives / f"{name}.done.json"

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    @property
    def tree(self) -> Path:
        return self.root / "tree"


@dataclass(frozen=True)
class ItemResult:
    """A finished item: what it transferred and (archives) what it extracted."""

    item: WorkItem
    size: int
    sha256: str | None
    extracted: Extracted


def item_done(staging: StagingPaths, item: WorkItem) -> ItemResult | None:
    """The result of an item finished by an earlier (possibly crashed) run, or None."""
    if item.kind == "archive":
        try:
            done = read_json(staging.archive_done(item.name))
        except (OSError, ValueError):
            return None
        return ItemResult(item, done["size"], done["sha256"], Extracted.from_json(done))
    target = staging.files / item.name
    if target.is_file():
        st = target.stat()
        return ItemResult(
            item,
            st.st_size,
            item.sha256,
            Extracted.single_file(item.name, st.st_size, is_executable(st.st_mode)),
        )
    return None


def _check(item: WorkItem, size: int, digest: str, md5: str | None, where: str) -> None:
    if item.size is not None and size != item.size:
        raise VerificationError(f"{where}: got {size} bytes, the remote lists {item.size}")
    if item.sha256 is not None and digest != item.sha256.lower():
        raise VerificationError(f"{where}: sha256 {digest} does not match the published {item.sha256}")
    if item.md5 is not None and md5 is not None and md5 != item.md5.lower():
        raise VerificationError(f"{where}: md5 {md5} does not match the remote ETag {item.md5}")


def _stream_extract(
    remote: Remote, item: WorkItem, dest: Path, progress: Progress
) -> tuple[Extracted, int, str]:
    """One attempt: stream the archive through sha256 into the extractor; (extracted, bytes, sha256)."""
    hasher = hashlib.sha256()
    counted = 0

    def chunks() -> Iterator[bytes]:
        nonlocal counted
        for chunk in remote.stream(item.remote_path, item.offset, item.length):
            hasher.update(chunk)
            counted += len(chunk)
            progress(len(chunk))
            yield chunk

    stream = chunks()
    extracted = extract_stream(stream, dest, item.name)
    for _ in stream:  # the bytes after tar's end-of-archive still count for the digest
        pass
    return extracted, counted, hasher.hexdigest()


def fetch_archive(remote: Remote, item: WorkItem, staging: StagingPaths, progress: Progress) -> ItemResult:
    """Stream, verify and extract one archive into its own dir (no temp copy of the archive)."""
    dest = staging.archive_dir(item.name)
    for attempt in range(1, DIGEST_ATTEMPTS + 1):
        if dest.exists():
            rmtree_readonly(dest)
        dest.mkdir(parents=True)
        extracted, counted, digest = _stream_extract(remote, item, dest, progress)
        try:
            _check(item, counted, digest, None, item.name)
        except VerificationError:
            progress(-counted)
            if attempt == DIGEST_ATTEMPTS:
                rmtree_readonly(dest)
                raise
            continue
        done = {"size": counted, "sha256": digest, **extracted.to_json()}
        # Atomic against kill -9; not fsynced: the version is synced as a whole before it is published.
        write_json_atomic(staging.archive_done(item.name), done, pretty=False, durable=False)
        return ItemResult(item, counted, digest, extracted)
    raise AssertionError("unreachable")


def fetch_file(remote: Remote, item: WorkItem, staging: StagingPaths, progress: Progress) -> ItemResult:
    """Copy one plain file, resuming a partial copy, verifying size and digest before it counts."""
    part = staging.parts / item.name
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, DIGEST_ATTEMPTS + 1):
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False) if item.md5 else None
        have = part.stat().st_size if part.exists() else 0
        if item.size is not None and have > item.size:
            part.unlink()
            have = 0
        if have:
            with open(part, "rb") as fh:
                while block := fh.read(1 << 20):
                    sha.update(block)
                    if md5 is not None:
                        md5.update(block)
            progress(have)
        counted = have
        with open(part, "ab") as out:
            if item.size is None or have < item.size:
                for chunk in remote.stream(item.remote_path, have, None):
                    out.write(chunk)
                    sha.update(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    counted += len(chunk)
                    progress(len(chunk))
        try:
            _check(item, counted, sha.hexdigest(), md5.hexdigest() if md5 else None, item.name)
        except VerificationError:
            progress(-counted)
            part.unlink(missing_ok=True)
            if attempt == DIGEST_ATTEMPTS:
                raise
            continue
        os.chmod(part, file_mode(item.executable))
        target = staging.files / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        extracted = Extracted.single_file(item.name, counted, item.executable)
        return ItemResult(item, counted, sha.hexdigest(), extracted)
    raise AssertionError("unreachable")


def fetch_item(remote: Remote, item: WorkItem, staging: StagingPaths, progress: Progress) -> ItemResult:
    """Dispatch on the item kind."""
    if item.kind == "archive":
        return fetch_archive(remote, item, staging, progress)
    return fetch_file(remote, item, staging, progress)
