"""Decode the zstd layer of a `.tar.zst` stream within a stated memory bound.

A zstd decoder holds one window of output (`zstd --long=N` writes frames with a 2**N-byte window, 128
MiB to 2 GiB for N = 27..31). libarchive's zstd filter keeps zstd's default limit of 128 MiB and has no
option to raise it, so archives made with `--long=28` and above failed there as "Frame requires too
much memory for decoding". So the zstd layer is decoded here with the `zstandard` package
(`max_window_size`) and libarchive reads plain tar.

The bound: `DEFAULT_ZSTD_WINDOW` = 2 GiB, the largest window zstd writes (`--long=31`), so every archive
zstd can make is decoded; each parallel transfer holds at most one window. Installers with little
memory lower it with the environment variable `DSCACHE_ZSTD_MAX_WINDOW` (a size, e.g. `512Mi`); a frame
whose window is above the bound is refused before it is decoded, with a message naming the window size
and the bound. The decoder's own error names no size, so frame headers are read as the bytes pass by
(`FrameWalker`, RFC 8878 section 3.1), which also tells a stream that ends between frames from a
truncated one (the decoder reports both as a clean end). The walk reads one 3-byte header per block:
measured 4 ms for a 64 MiB archive of 9,905 blocks, about 3% of its extraction time (decoding in C and
handing libarchive the decoded bytes without a copy made the whole extraction no slower than with
libarchive's zstd filter: 0.79x the `curl | zstd -dc | tar -x` floor in bench/bench_install.py, against
1.03x and 1.39x before on the same, noisy, 2-core machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

import zstandard

from dscache.api.sizes import DEFAULT_ZSTD_WINDOW, ZSTD_WINDOW_ENV, format_size, parse_zstd_window

_FRAME_MAGIC = 0xFD2FB528
_SKIPPABLE_MAGIC = 0x184D2A50  # the low 4 bits are free
_CHECKSUM_FLAG = 0x04
_SINGLE_SEGMENT_FLAG = 0x20
_READ_SIZE = 1 << 20

# what the walker expects next
_MAGIC, _FRAME_HEADER_START, _FRAME_HEADER, _SKIPPABLE_SIZE, _BLOCK = range(5)


class ZstdStreamError(Exception):
    """The bytes are not one complete zstd stream, or need a larger window than allowed."""


class WindowLimitError(ZstdStreamError):
    """The stream is valid as far as read but needs a larger window than allowed (or the bound is bad)."""


def max_window(environ: Mapping[str, str] = os.environ) -> int:
    """The window bound in bytes: `DSCACHE_ZSTD_MAX_WINDOW`, else 2 GiB. Raises ZstdStreamError if bad."""
    text = environ.get(ZSTD_WINDOW_ENV, "").strip()
    if not text:
        return DEFAULT_ZSTD_WINDOW
    try:
        return parse_zstd_window(text)
    except ValueError as err:
        raise WindowLimitError(f"{ZSTD_WINDOW_ENV}={text!r}: {err}") from None


def frame_window(header: bytes) -> int:
    """The window size a complete frame header declares, in bytes (RFC 8878 section 3.1.1.1.2).

    Computed here rather than by `zstandard.get_frame_parameters`, which refuses windows above zstd's
    own maximum instead of saying how large they are. Single-segment frames: their content size.
    """
    if header[4] & _SINGLE_SEGMENT_FLAG:
        return int(zstandard.get_frame_parameters(header).content_size)
    descriptor = header[5]
    base = 1 << (10 + (descriptor >> 3))
    return base + (base >> 3) * (descriptor & 7)


class FrameWalker:
    """Follows a zstd stream's frame and block headers as its bytes pass by, checking each frame's window.

    `feed` every byte of the stream in order, then `finish`. Raises ZstdStreamError for a window above
    `bound`, bytes that are neither a zstd nor a skippable frame, and (in `finish`) a stream that is
    empty or ends inside a frame.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.frames = 0
        self._seen = 0  # bytes fed so far
        self._want = _MAGIC
        self._need = 4  # bytes of the header expected next
        self._header = bytearray()
        self._skip = 0  # bytes to pass over before the next header
        self._checksum = False

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if self._want == _BLOCK and not self._header:
                pos = self._blocks(data, pos, end)
                continue
            take = min(self._need - len(self._header), end - pos)
            self._header += data[pos : pos + take]
            pos += take
            if len(self._header) == self._need:
                self._parse(self._seen + pos - len(self._header))
        self._seen += end

    def finish(self) -> None:
        if not self.frames:
            raise ZstdStreamError("no zstd frame: not a .tar.zst archive")
        if self._want != _MAGIC or self._header or self._skip:
            raise ZstdStreamError(f"truncated: the zstd stream ends inside a frame, after {self._seen} bytes")

    def _blocks(self, data: bytes, pos: int, end: int) -> int:
        """The fast path: walk the block headers lying whole in `data[pos:end]`; the position reached."""
        while pos + 3 <= end:
            block = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            kind = block >> 1 & 3
            if kind == 3:
                raise ZstdStreamError(f"corrupt zstd data: reserved block type at byte {self._seen + pos}")
            pos += 3 + (1 if kind == 1 else block >> 3)  # an RLE block stores one byte
            if block & 1:
                self._next(_MAGIC, 4, skip=4 if self._checksum else 0)
                break
        if pos > end:
            self._skip += pos - end
            return end
        if self._want == _BLOCK and pos < end:  # a header cut by the chunk's end: collect it
            self._header += data[pos:end]
            return end
        return pos

    def _next(self, want: int, need: int, skip: int = 0) -> None:
        self._want, self._need, self._skip = want, need, skip
        self._header.clear()

    def _parse(self, at: int) -> None:
        header = bytes(self._header)
        if self._want == _MAGIC:
            magic = int.from_bytes(header, "little")
            if magic == _FRAME_MAGIC:
                self._want, self._need = _FRAME_HEADER_START, 5  # magic and frame header descriptor
            elif magic & 0xFFFFFFF0 == _SKIPPABLE_MAGIC:
                self._want, self._need = _SKIPPABLE_SIZE, 8
            else:
                raise ZstdStreamError(f"not zstd data at byte {at}")
        elif self._want == _FRAME_HEADER_START:
            self._want, self._need = _FRAME_HEADER, zstandard.frame_header_size(header)
        elif self._want == _FRAME_HEADER:
            self._check_frame(header, at)
            self._checksum = bool(header[4] & _CHECKSUM_FLAG)
            self.frames += 1
            self._next(_BLOCK, 3)
        elif self._want == _SKIPPABLE_SIZE:
            self._next(_MAGIC, 4, skip=int.from_bytes(header[4:8], "little"))
        else:
            block = int.from_bytes(header, "little")
            last, kind, size = block & 1, (block >> 1) & 3, block >> 3
            if kind == 3:
                raise ZstdStreamError(f"corrupt zstd data: reserved block type at byte {at}")
            content = 1 if kind == 1 else size  # an RLE block stores one byte
            if last:
                self._next(_MAGIC, 4, skip=content + (4 if self._checksum else 0))
            else:
                self._next(_BLOCK, 3, skip=content)

    def _check_frame(self, header: bytes, at: int) -> None:
        try:
            window = frame_window(header)
        except zstandard.ZstdError as err:
            raise ZstdStreamError(f"corrupt zstd frame header at byte {at}: {err}") from None
        if window > self.bound:
            raise WindowLimitError(
                f"zstd window of {format_size(window)} ({window} bytes) is above the bound of "
                f"{format_size(self.bound)} ({ZSTD_WINDOW_ENV}, at most 2Gi)"
            )


class _Source:
    """The compressed chunks as the file object `zstandard` reads from, each seen by the walker first."""

    def __init__(self, chunks: Iterable[bytes], walker: FrameWalker) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._walker = walker

    def read(self, _size: int = -1) -> bytes:
        for chunk in self._chunks:
            if chunk:  # an empty chunk is not the end (a stream may yield b"" while it waits)
                self._walker.feed(chunk)
                return chunk
        return b""


class ZstdReader:
    """The decompressed bytes of the zstd stream `chunks`, read into the caller's buffer.

    Memory: one window (at most `bound`) plus one chunk. Errors of `chunks` itself propagate unchanged;
    bad or truncated zstd data and windows above `bound` raise ZstdStreamError.
    """

    def __init__(self, chunks: Iterable[bytes], bound: int) -> None:
        self._walker = FrameWalker(bound)
        decoder = zstandard.ZstdDecompressor(max_window_size=bound)
        source = _Source(chunks, self._walker)  # zstandard only calls its read()
        self._reader = decoder.stream_reader(
            source,  # type: ignore[arg-type]
            read_size=_READ_SIZE,
            read_across_frames=True,
        )
        self._done = False

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` with the next bytes; 0 only at the end of a complete stream."""
        if self._done:
            return 0
        try:
            count: int = self._reader.readinto(buffer)
        except zstandard.ZstdError as err:
            raise ZstdStreamError(f"corrupt zstd data: {err}") from None
        if count == 0:
            self._walker.finish()
            self._done = True
        return count
