"""A local directory as a remote (laptops, CI, `dscache demo`, NFS-mounted mirrors).

Writes go to a temporary file in the target directory and are renamed into place, so a reader of
the "remote" never sees half an archive.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from dscache.remotes.base import CHUNK, Identity, NotFoundError, Pin, RemoteError, RemoteFile
from dscache.remotes.retry import check_rel_path
from dscache.store.atomic import fsync_dir, tmp_name


def stat_identity(st: os.stat_result) -> Identity:
    """A local file's identity: inode, modification and change times (ns) in place of an ETag, so
    a file replaced, rewritten or touched is told from the one a partial copy started from."""
    token = f"{st.st_dev:x}:{st.st_ino:x}:{st.st_mtime_ns:x}:{st.st_ctime_ns:x}"
    return Identity(size=st.st_size, etag=token, last_modified=int(st.st_mtime))


class FileRemote:
    """Files under a local directory; paths are '/'-separated and relative to it."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)
        if not self._root.is_absolute():
            raise RemoteError(f"file remote needs an absolute path, got {str(root)!r}")

    @property
    def url(self) -> str:
        return f"file://{self._root}"

    def _path(self, path: str) -> Path:
        return self._root / check_rel_path(path)

    def _what(self, path: str) -> str:
        return f"{self.url}/{path}"

    def resolve_revision(self) -> str | None:
        return None

    def read_bytes(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{self._what(path)}: not found") from None
        except OSError as err:
            raise RemoteError(f"{self._what(path)}: {err.strerror}") from None

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        local = self._path(path)  # validate eagerly, read lazily like the network remotes
        return self._read(local, path, offset, length, pin if pin is not None else Pin())

    def _read(self, local: Path, path: str, offset: int, length: int | None, pin: Pin) -> Iterator[bytes]:
        what = self._what(path)
        try:
            fh = open(local, "rb")  # noqa: SIM115 - closed in finally, across yields
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{what}: not found") from None
        except OSError as err:
            raise RemoteError(f"{what}: {err.strerror}") from None
        try:
            pin.check(stat_identity(os.fstat(fh.fileno())), what)
            size = pin.identity.size or 0
            if length is not None and offset + length > size:
                raise RemoteError(
                    f"{what}: bytes {offset}-{offset + length - 1} requested, the file ends at {size}"
                )
            fh.seek(offset)
            left = size - offset if length is None else length
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                # Written to in place while being read: these bytes may mix two contents.
                pin.check(stat_identity(os.fstat(fh.fileno())), what)
                if not chunk:
                    raise RemoteError(f"{what}: file shrank while being read")
                left -= len(chunk)
                yield chunk
        except OSError as err:
            raise RemoteError(f"{what}: {err.strerror}") from None
        finally:
            fh.close()

    def list_files(self, prefix: str) -> list[RemoteFile]:
        clean = prefix.strip("/")
        base = self._path(clean) if clean else self._root
        out: list[RemoteFile] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in filenames:
                full = Path(dirpath) / name
                try:
                    st = full.stat()
                except OSError:
                    continue  # vanished or dangling link
                rel = full.relative_to(self._root).as_posix()
                out.append(
                    RemoteFile(
                        rel, st.st_size, identity=stat_identity(st), executable=bool(st.st_mode & 0o111)
                    )
                )
        return sorted(out, key=lambda f: f.path)

    def put_file(self, path: str, local: Path) -> None:
        dest = self._path(path)
        tmp = dest.parent / tmp_name(dest.name, secrets.token_hex(4))
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "rb") as src, open(tmp, "xb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise RemoteError(f"{self._what(path)}: cannot write: {err.strerror}") from None

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str | None:
        """Upload several files (same call as HfRemote.put_files, where it makes one commit)."""
        for path, local in files:
            self.put_file(path, local)
        return None

    def close(self) -> None:
        return None
