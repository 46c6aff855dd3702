"""Blocking file operations of the local blob store, each run in a worker thread.

Nothing here touches the event loop: `local.LocalBlobStore` hands each call to its
executor and never runs two calls on the same object at once.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

from tidings.blobs.base import BlobNotFound, CorruptBlob
from tidings.blobs.checksums import StreamDigest, crc64_concat
from tidings.blobs.fileformat import (
    HEADER_SIZE,
    KIND_DATA,
    KIND_MANIFEST,
    MANIFEST_NAME,
    Header,
    pack_header,
    pack_piece_sizes,
    piece_name,
    unpack_header,
    unpack_piece_sizes,
)

FILE_MODE = 0o644
# os.link fails with these where hard links are impossible (another filesystem, a
# filesystem without them, or an inode at its link limit); compose then copies.
LINK_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until every byte is written (a short write is legal, if rare)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pread_exact(fd: int, length: int, offset: int, blob_id: str) -> bytes:
    """Exactly `length` bytes at `offset`; CorruptBlob if the file is shorter."""
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            raise CorruptBlob(blob_id, "file is shorter than its header says")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class DirMaker:
    """Creates the fan-out directories on demand, durably, remembering which exist."""

    def __init__(self, fsync: bool) -> None:
        self._fsync = fsync
        self._known: set[Path] = set()
        self._lock = threading.Lock()

    def ensure(self, path: Path) -> None:
        """Make sure directory `path` exists (its parents must be under a made root)."""
        if path in self._known:
            return
        with self._lock:
            self._make(path)
            self._known.add(path)

    def _make(self, path: Path) -> None:
        if path.is_dir():
            return
        self._make(path.parent)
        try:
            path.mkdir()
        except FileExistsError:
            return
        # A new directory's own entry must reach the disk, or a crash could lose every
        # blob renamed into it.
        if self._fsync:
            fsync_dir(path.parent)


class PendingBlob:
    """A blob being written: a temp file that becomes the blob file on commit."""

    def __init__(self, blob_id: str, temp_path: Path, fsync: bool) -> None:
        self.blob_id = blob_id
        self.temp_path = temp_path
        self.digest = StreamDigest()
        self._fsync = fsync
        self._fd: int | None = None
        self._committed: Path | None = None

    def open(self) -> None:
        """Create the temp file, leaving room for the header."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._fd = os.open(self.temp_path, flags, FILE_MODE)
        # The header is known only at the end; a hole keeps its place until then.
        os.lseek(self._fd, HEADER_SIZE, os.SEEK_SET)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Hash and write the next bytes of the body."""
        assert self._fd is not None, "append before open"
        self.digest.update(data)
        write_all(self._fd, data)

    def commit(self, dest: Path, dirs: DirMaker) -> Header:
        """Write the header, fsync, and rename the file into place as the blob."""
        assert self._fd is not None, "commit before open"
        header = Header(
            kind=KIND_DATA,
            size=self.digest.size,
            crc64=self.digest.crc64,
            part_count=0,
            md5=self.digest.md5_digest,
        )
        packed = pack_header(header)
        if os.pwrite(self._fd, packed, 0) != len(packed):
            raise OSError(errno.EIO, "short write of a blob header", str(self.temp_path))
        if self._fsync:
            # fdatasync also flushes the file size, all a reader needs; skipping the
            # timestamps saves a journal write.
            os.fdatasync(self._fd)
        os.close(self._fd)
        self._fd = None
        dirs.ensure(dest.parent)
        os.rename(self.temp_path, dest)
        self._committed = dest
        if self._fsync:
            fsync_dir(dest.parent)
        return header

    def abort(self) -> None:
        """Remove every trace: the temp file, and the blob if commit got that far."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.temp_path.unlink(missing_ok=True)
        if self._committed is not None:
            self._committed.unlink(missing_ok=True)
            self._committed = None


def read_file_header(fd: int, blob_id: str, kind: int) -> Header:
    """The header at the start of an open blob file or manifest, of the given kind."""
    header = unpack_header(os.pread(fd, HEADER_SIZE, 0))
    if header is None or header.kind != kind:
        raise CorruptBlob(blob_id, "bad header")
    return header


def _open_at(name: Path | str, blob_id: str, dir_fd: int | None = None) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        raise BlobNotFound(blob_id) from None


def _read_manifest(dir_fd: int, blob_id: str) -> tuple[Header, list[int]]:
    fd = _open_at(MANIFEST_NAME, blob_id, dir_fd)
    try:
        header = read_file_header(fd, blob_id, KIND_MANIFEST)
        body = os.fstat(fd).st_size - HEADER_SIZE
        sizes = unpack_piece_sizes(pread_exact(fd, body, HEADER_SIZE, blob_id))
    finally:
        os.close(fd)
    if sizes is None or sum(sizes) != header.size:
        raise CorruptBlob(blob_id, "manifest does not add up")
    return header, sizes


def _open_dir(path: Path, blob_id: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise BlobNotFound(blob_id) from None


def read_info(path: Path, blob_id: str) -> Header:
    """The header of the blob at `path` (a file, or a composed blob's manifest)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise BlobNotFound(blob_id) from None
    if stat.S_ISDIR(mode):
        dir_fd = _open_dir(path, blob_id)
        try:
            return _read_manifest(dir_fd, blob_id)[0]
        finally:
            os.close(dir_fd)
    fd = _open_at(path, blob_id)
    try:
        return read_file_header(fd, blob_id, KIND_DATA)
    finally:
        os.close(fd)


class BlobSource:
    """An open blob, read by logical offset whether it is one file or a composed one.

    Holds the file (or the composed blob's directory) open, so reads go on after the
    blob is deleted: a file's bytes live until its last descriptor closes, and the store
    defers removing a composed blob's pieces until its readers are done.
    """

    def __init__(self, blob_id: str, path: Path) -> None:
        self.blob_id = blob_id
        self._fd: int | None = None
        self._dir_fd: int | None = None
        self._piece: int | None = None
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        if stat.S_ISDIR(mode):
            self._dir_fd = _open_dir(path, blob_id)
            try:
                self.header, self._sizes = _read_manifest(self._dir_fd, blob_id)
            except BaseException:
                self.close()
                raise
        else:
            self._fd = _open_at(path, blob_id)
            try:
                self.header = read_file_header(self._fd, blob_id, KIND_DATA)
            except BaseException:
                self.close()
                raise
            self._sizes = [self.header.size]
            self._piece = 0
        self._starts = [0]
        for size in self._sizes[:-1]:
            self._starts.append(self._starts[-1] + size)

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return self.header.size

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes from logical `offset` (the caller keeps within size)."""
        chunks: list[bytes] = []
        while length > 0:
            # bisect_right skips empty pieces that start at the same offset.
            index = bisect.bisect_right(self._starts, offset) - 1
            within = offset - self._starts[index]
            take = min(length, self._sizes[index] - within)
            fd = self._piece_fd(index)
            chunks.append(pread_exact(fd, take, HEADER_SIZE + within, self.blob_id))
            offset += take
            length -= take
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _piece_fd(self, index: int) -> int:
        if self._piece == index and self._fd is not None:
            return self._fd
        assert self._dir_fd is not None, "a single-file blob has one piece"
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        fd = _open_at(piece_name(index), self.blob_id, self._dir_fd)
        try:
            header = read_file_header(fd, self.blob_id, KIND_DATA)
        except BaseException:
            os.close(fd)
            raise
        if header.size != self._sizes[index]:
            os.close(fd)
            raise CorruptBlob(self.blob_id, f"piece {index} has the wrong size")
        self._fd, self._piece = fd, index
        return fd

    def close(self) -> None:
        """Release the descriptors."""
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._dir_fd = None


def _link_or_copy(source: Path, target: Path, fsync: bool) -> None:
    try:
        os.link(source, target)
        return
    except OSError as exc:
        if exc.errno not in LINK_UNSUPPORTED:
            raise
    # No hard link possible: copy (copyfile uses copy_file_range/sendfile, in-kernel).
    shutil.copyfile(source, target)
    if fsync:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _add_part(
    blob_id: str, path: Path, temp_dir: Path, first_piece: int, fsync: bool
) -> tuple[Header, list[int]]:
    """Link one part's piece file(s) into `temp_dir` from `first_piece` on."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            # A composed part: take over its pieces, so manifests never nest.
            dir_fd = _open_dir(path, blob_id)
            try:
                header, sizes = _read_manifest(dir_fd, blob_id)
            finally:
                os.close(dir_fd)
            for offset in range(len(sizes)):
                _link_or_copy(
                    path / piece_name(offset), temp_dir / piece_name(first_piece + offset), fsync
                )
            return header, sizes
        header = read_info(path, blob_id)
        _link_or_copy(path, temp_dir / piece_name(first_piece), fsync)
        return header, [header.size]
    except FileNotFoundError:
        raise BlobNotFound(blob_id) from None


def build_composed(parts: list[tuple[str, Path]], temp_dir: Path, fsync: bool) -> Header:
    """Fill `temp_dir` with the pieces of `parts` and a manifest; return its header.

    Reads each part's header, never its bytes: the CRC is combined and the MD5 is the
    multipart MD5 of the parts' MD5s.
    """
    temp_dir.mkdir()
    headers: list[Header] = []
    sizes: list[int] = []
    for blob_id, path in parts:
        header, piece_sizes = _add_part(blob_id, path, temp_dir, len(sizes), fsync)
        headers.append(header)
        sizes.extend(piece_sizes)
    header = Header(
        kind=KIND_MANIFEST,
        size=sum(sizes),
        crc64=crc64_concat([(part.crc64, part.size) for part in headers]),
        part_count=len(parts),
        md5=hashlib.md5(b"".join(part.md5 for part in headers)).digest(),
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    fd = os.open(temp_dir / MANIFEST_NAME, flags, FILE_MODE)
    try:
        write_all(fd, pack_header(header) + pack_piece_sizes(sizes))
        if fsync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    if fsync:
        fsync_dir(temp_dir)
    return header


def commit_dir(temp_dir: Path, dest: Path, dirs: DirMaker, fsync: bool) -> None:
    """Rename a finished composed blob's directory into place."""
    dirs.ensure(dest.parent)
    os.rename(temp_dir, dest)
    if fsync:
        fsync_dir(dest.parent)


def remove_blob(path: Path, trash: Path) -> bool | Path:
    """Delete the blob at `path`: False if absent, True if removed, or the trash path.

    A file is unlinked (open readers keep its bytes). A composed blob's directory is
    renamed to `trash`, which makes it disappear at once; emptying it is left to the
    caller, who knows whether someone is still reading it.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    try:
        if stat.S_ISDIR(mode):
            os.rename(path, trash)
            return trash
        os.unlink(path)
    except FileNotFoundError:  # a concurrent delete won
        return False
    return True


def remove_path(path: Path) -> None:
    """Remove a file or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
