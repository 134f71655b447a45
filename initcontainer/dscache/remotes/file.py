"""A local directory as a remote (laptops, CI, `dscache demo`, NFS-mounted mirrors).

Writes go to a temporary file in the target directory and are renamed into place, so a reader of
the "remote" never sees half an archive.

What a listing makes of the entries of the directory (nothing is ever read outside the source root):
- a regular file is listed;
- a symlink whose target resolves to a regular file inside the source root is listed as that file
  (under the link's own path; its bytes are the target's);
- a directory is walked; a directory that cannot be listed (permissions, I/O error) fails the listing
  with one line naming it, never skipped;
- a symlink to a directory, a symlink resolving outside the root, a dangling symlink, a symlink loop,
  a FIFO, a socket or a device fails the listing with one line naming the path and what it is.
An entry removed while the directory is listed is not listed. Reads apply the same rules: they open
the resolved path without following a symlink again and refuse anything but a regular file inside
the root, so a symlink retargeted after the listing reads nothing outside it (and a FIFO never
blocks a read).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from dscache.remotes.base import CHUNK, Identity, NotFoundError, Pin, RemoteError, RemoteFile
from dscache.remotes.retry import check_rel_path
from dscache.store.atomic import fsync_dir, tmp_name
from dscache.store.filetypes import file_type


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

    def _inside(self, real: str) -> bool:
        root = os.path.realpath(self._root)
        return real == root or real.startswith(root.rstrip("/") + "/")

    def _open(self, local: Path, what: str) -> int:
        """A read-only descriptor of the regular file `local` resolves to inside the root.
        Raises NotFoundError (missing, dangling) or RemoteError (outside the root, not a regular
        file, unreadable)."""
        try:
            real = os.path.realpath(local, strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{what}: not found") from None
        except OSError as err:
            raise RemoteError(f"{what}: {err.strerror}") from None
        if not self._inside(real):
            raise RemoteError(f"{what}: symlink to {real}, outside {self._root}; not read")
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{what}: not found") from None
        except OSError as err:
            raise RemoteError(f"{what}: {err.strerror}") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise RemoteError(f"{what}: {file_type(mode)}, not a regular file")
        return fd

    def read_bytes(self, path: str) -> bytes:
        what = self._what(path)
        fd = self._open(self._path(path), what)
        try:
            with open(fd, "rb") as fh:
                return fh.read()
        except OSError as err:
            raise RemoteError(f"{what}: {err.strerror}") from None

    def stream(
        self, path: str, offset: int = 0, length: int | None = None, pin: Pin | None = None
    ) -> Iterator[bytes]:
        local = self._path(path)  # validate eagerly, read lazily like the network remotes
        return self._read(local, path, offset, length, pin if pin is not None else Pin())

    def _read(self, local: Path, path: str, offset: int, length: int | None, pin: Pin) -> Iterator[bytes]:
        what = self._what(path)
        fh = open(self._open(local, what), "rb")  # noqa: SIM115 - closed in finally, across yields
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
        """The files below `prefix` (see the module docstring for symlinks and odd entries), sorted by
        path; empty if `prefix` does not name a directory. Raises RemoteError naming the first entry
        that cannot be listed or is refused."""
        clean = prefix.strip("/")
        base = self._path(clean) if clean else self._root
        if clean and os.path.lexists(base) and not self._inside(os.path.realpath(base)):
            raise RemoteError(f"{self._what(clean)}: symlink to outside {self._root}; not followed")
        out: list[RemoteFile] = []
        pending = [base]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except (FileNotFoundError, NotADirectoryError):
                if directory == base:
                    return []  # nothing under this prefix
                continue  # removed while being listed
            except OSError as err:
                raise RemoteError(
                    f"{self._rel_what(directory)}: cannot list the directory: {err.strerror}"
                ) from None
            for entry in entries:
                full = Path(entry.path)
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while being listed
                except OSError as err:
                    raise RemoteError(f"{self._rel_what(full)}: {err.strerror}") from None
                if stat.S_ISDIR(st.st_mode):
                    pending.append(full)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    st = self._link_target(full)
                elif not stat.S_ISREG(st.st_mode):
                    raise RemoteError(f"{self._rel_what(full)}: {file_type(st.st_mode)}, not a regular file")
                rel = full.relative_to(self._root).as_posix()
                executable = bool(st.st_mode & 0o111)
                out.append(RemoteFile(rel, st.st_size, identity=stat_identity(st), executable=executable))
        return sorted(out, key=lambda f: f.path)

    def _rel_what(self, full: Path) -> str:
        return self._what(full.relative_to(self._root).as_posix())

    def _link_target(self, link: Path) -> os.stat_result:
        """The stat of the regular file inside the root that the symlink `link` resolves to; raises
        RemoteError for a dangling link, a loop, a target outside the root or not a regular file."""
        what = self._rel_what(link)
        try:
            real = os.path.realpath(link, strict=True)
            st = os.stat(real, follow_symlinks=False)
        except FileNotFoundError:
            raise RemoteError(f"{what}: dangling symlink") from None
        except OSError as err:
            raise RemoteError(f"{what}: symlink cannot be resolved: {err.strerror}") from None
        if not self._inside(real):
            raise RemoteError(f"{what}: symlink to {real}, outside {self._root}; not followed")
        if not stat.S_ISREG(st.st_mode):
            raise RemoteError(f"{what}: symlink to {file_type(st.st_mode)}; only links to files are followed")
        return st

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

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Write `data` to `path` unless something is there (O_EXCL); whether it was written.
        Raises RemoteError."""
        dest = self._path(path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except FileExistsError:
            return False
        except OSError as err:
            raise RemoteError(f"{self._what(path)}: cannot write: {err.strerror}") from None
        fsync_dir(dest.parent)
        return True

    def put_files(self, files: list[tuple[str, Path]], message: str | None = None) -> str | None:
        """Upload several files (same call as HfRemote.put_files, where it makes one commit)."""
        for path, local in files:
            self.put_file(path, local)
        return None

    def delete_files(self, paths: list[str], message: str | None = None) -> None:
        """Remove `paths` (a missing one is fine), then the directories this empties, up to the root."""
        for path in paths:
            dest = self._path(path)
            try:
                dest.unlink(missing_ok=True)
                for parent in dest.parents:
                    if parent == self._root or not parent.is_relative_to(self._root) or any(parent.iterdir()):
                        break
                    parent.rmdir()
            except OSError as err:
                raise RemoteError(f"{self._what(path)}: cannot remove: {err.strerror}") from None

    def close(self) -> None:
        return None
