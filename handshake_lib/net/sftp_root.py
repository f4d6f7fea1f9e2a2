"""``ConfinedRoot``: an SFTP :class:`~handshake_lib.ssh.sftp.FileSystem` that never leaves one folder.

Theory of operation
-------------------
The client sees a virtual tree whose ``/`` is the folder (as under OpenSSH's ``ChrootDirectory``): an
SFTP path, absolute or relative (relative paths start at ``/``), is first normalised *as text*: empty
parts and ``.`` are dropped and ``..`` removes the part before it.  A ``..`` with nothing left to
remove would climb above the root: refused with PERMISSION_DENIED, not clamped to ``/``, so a client
that tries learns that it cannot.  ``/etc/passwd`` is therefore the folder's ``etc/passwd``.

The normalised parts are then walked **with file descriptors**: the root is opened once (``O_DIRECTORY``),
every directory on the way is opened with ``os.open(part, O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)``,
and the last part is used relative to its parent's descriptor (``dir_fd=``, ``follow_symlinks=False``,
``O_NOFOLLOW``).  A symbolic link anywhere on a path is never followed: a symlinked parent makes
``O_NOFOLLOW`` fail with ``ELOOP``, a symlink as the last part of OPEN, OPENDIR or STAT is found by
``lstat`` first (and ``O_NOFOLLOW`` would refuse it anyway); both are answered PERMISSION_DENIED.  LSTAT,
READDIR, REMOVE and RENAME act on a link itself, which stays inside the folder.

Why descriptors rather than ``os.path.realpath`` and a prefix check: a realpath check looks at the tree
once and then uses the path, so a link swapped in between (another user of the folder, or a second
SFTP session racing this one) is followed after the check said yes.  A descriptor walk checks and uses
the same directory entries, so there is no window; and refusing links (rather than resolving them
inside the root) keeps the rule short enough to trust.  Since links are never followed, the textual
``..`` above equals the real one.

Only regular files are opened (``O_NONBLOCK`` so that a FIFO planted in the folder cannot block the
server; anything but a regular file is refused).  RENAME, as draft-02 and ``sftp-server`` want, fails
when the new name exists (``link`` + ``unlink`` for files, which cannot overwrite).  SETSTAT changes
permissions, times and size; owner changes are OP_UNSUPPORTED.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from ..errors import SFTPStatusError
from ..ssh.sftp import Attributes, Name, OpenFlags, StatusCode, longname

__all__ = ["ConfinedRoot"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _refused(why: str) -> SFTPStatusError:
    return SFTPStatusError(StatusCode.PERMISSION_DENIED, why)


def _attributes(st: os.stat_result) -> Attributes:
    return Attributes(
        size=st.st_size,
        uid=st.st_uid,
        gid=st.st_gid,
        permissions=st.st_mode,
        atime=int(st.st_atime) & 0xFFFFFFFF,
        mtime=int(st.st_mtime) & 0xFFFFFFFF,
    )


@dataclass
class _OpenFile:
    fd: int


@dataclass
class _OpenDirectory:
    path: tuple[str, ...]
    entries: list[str] = field(default_factory=list)  # names not yet returned


class ConfinedRoot:
    """Serve ``root`` (a directory) as ``/``; see the module docstring for the rules."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(root)  # the operator's choice: resolved once, here
        if not os.path.isdir(self.root):
            raise NotADirectoryError(self.root)

    # -- paths ----------------------------------------------------------------------------------------
    @staticmethod
    def parts(path: str) -> tuple[str, ...]:
        """The normalised parts of a virtual path; PERMISSION_DENIED for a ``..`` above the root."""
        if "\x00" in path:
            raise SFTPStatusError(StatusCode.BAD_MESSAGE, "a path with a NUL byte")
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise _refused(f"{path!r} climbs above the root")
                parts.pop()
            else:
                parts.append(part)
        return tuple(parts)

    def _open_dir(self, parts: tuple[str, ...]) -> int:
        """A descriptor of the directory ``parts``, no link followed on the way."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    # Linux says ENOTDIR (O_DIRECTORY wins) or ELOOP for a link opened with O_NOFOLLOW;
                    # tell a link apart from a plain file, so that the refusal says why.
                    if error.errno in (errno.ELOOP, errno.ENOTDIR) and self._is_link(fd, part):
                        raise _refused(f"{part!r} is a symbolic link; links are not followed") from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, path: str) -> tuple[int, str]:
        """(descriptor of the parent directory, last part); the root itself is (root, ".")."""
        parts = self.parts(path)
        if not parts:
            return self._open_dir(()), "."
        return self._open_dir(parts[:-1]), parts[-1]

    def _is_link(self, fd: int, name: str) -> bool:
        try:
            return stat.S_ISLNK(self._lstat_at(fd, name).st_mode)
        except OSError:
            return False

    def _lstat_at(self, fd: int, name: str) -> os.stat_result:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)

    def _no_link(self, fd: int, name: str) -> os.stat_result:
        st = self._lstat_at(fd, name)
        if stat.S_ISLNK(st.st_mode):
            raise _refused(f"{name!r} is a symbolic link; links are not followed")
        return st

    # -- FileSystem -----------------------------------------------------------------------------------
    def realpath(self, path: str) -> str:
        return "/" + "/".join(self.parts(path))

    def stat(self, path: str, *, follow_symlinks: bool) -> Attributes:
        fd, name = self._parent(path)
        try:
            return _attributes(self._no_link(fd, name) if follow_symlinks else self._lstat_at(fd, name))
        finally:
            os.close(fd)

    def setstat(self, path: str, attrs: Attributes) -> None:
        fd, name = self._parent(path)
        try:
            self._no_link(fd, name)
            # ftruncate needs a descriptor open for writing; the rest work on a read-only one (a directory).
            access = os.O_WRONLY if attrs.size is not None else os.O_RDONLY
            target = os.open(name, access | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            self._set(target, attrs)
        finally:
            os.close(target)

    def _set(self, fd: int, attrs: Attributes) -> None:
        if attrs.uid is not None:
            raise SFTPStatusError(StatusCode.OP_UNSUPPORTED, "changing the owner is not supported")
        if attrs.size is not None:
            os.ftruncate(fd, attrs.size)
        if attrs.permissions is not None:
            os.fchmod(fd, attrs.permissions & 0o7777)
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(fd, (attrs.atime, attrs.mtime))

    def open(self, path: str, flags: OpenFlags, attrs: Attributes) -> object:
        mode = {OpenFlags.READ: os.O_RDONLY, OpenFlags.WRITE: os.O_WRONLY}.get(
            flags & (OpenFlags.READ | OpenFlags.WRITE), os.O_RDWR
        )
        for flag, os_flag in (
            (OpenFlags.APPEND, os.O_APPEND),
            (OpenFlags.CREAT, os.O_CREAT),
            (OpenFlags.TRUNC, os.O_TRUNC),
            (OpenFlags.EXCL, os.O_EXCL),
        ):
            if flags & flag:
                mode |= os_flag
        permissions = attrs.permissions & 0o777 if attrs.permissions is not None else 0o666
        fd, name = self._parent(path)
        try:
            if name == ".":
                raise SFTPStatusError(StatusCode.FAILURE, "the root is a directory")
            try:
                file_fd = os.open(name, mode | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, permissions, dir_fd=fd)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise _refused(f"{name!r} is a symbolic link; links are not followed") from None
                raise
        finally:
            os.close(fd)
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            os.close(file_fd)
            raise SFTPStatusError(StatusCode.FAILURE, f"{name!r} is not a regular file")
        return _OpenFile(file_fd)

    def read(self, file: object, offset: int, length: int) -> bytes:
        assert isinstance(file, _OpenFile)
        return os.pread(file.fd, length, offset)

    def write(self, file: object, offset: int, data: bytes) -> None:
        assert isinstance(file, _OpenFile)
        view = memoryview(data)
        while view:
            written = os.pwrite(file.fd, view, offset)
            view, offset = view[written:], offset + written

    def fstat(self, file: object) -> Attributes:
        assert isinstance(file, _OpenFile)
        return _attributes(os.fstat(file.fd))

    def fsetstat(self, file: object, attrs: Attributes) -> None:
        assert isinstance(file, _OpenFile)
        self._set(file.fd, attrs)

    def close(self, file: object) -> None:
        assert isinstance(file, _OpenFile)
        os.close(file.fd)

    def opendir(self, path: str) -> object:
        parts = self.parts(path)
        fd = self._open_dir(parts)  # a link to a directory is refused here, as O_NOFOLLOW says ELOOP
        try:
            names = [".", "..", *sorted(os.listdir(fd))]
        finally:
            os.close(fd)
        return _OpenDirectory(parts, names)

    def readdir(self, directory: object, limit: int) -> list[Name]:
        assert isinstance(directory, _OpenDirectory)
        batch, directory.entries = directory.entries[:limit], directory.entries[limit:]
        if not batch:
            return []
        fd = self._open_dir(directory.path)  # again by descriptor: the tree may have changed
        try:
            names = []
            for entry in batch:
                try:
                    if entry == "..":  # the root's parent is shown as the root itself
                        st = os.stat(".." if directory.path else ".", dir_fd=fd, follow_symlinks=False)
                    else:
                        st = self._lstat_at(fd, entry)
                except FileNotFoundError:
                    continue  # removed since OPENDIR
                attrs = _attributes(st)
                names.append(Name(entry, longname(entry, attrs), attrs))
            return names
        finally:
            os.close(fd)

    def closedir(self, directory: object) -> None:
        assert isinstance(directory, _OpenDirectory)
        directory.entries = []

    def remove(self, path: str) -> None:
        fd, name = self._parent(path)
        try:
            if name == ".":
                raise _refused("the root cannot be removed")
            os.unlink(name, dir_fd=fd)  # a link is removed itself, its target untouched
        finally:
            os.close(fd)

    def mkdir(self, path: str, attrs: Attributes) -> None:
        fd, name = self._parent(path)
        try:
            if name == ".":
                raise SFTPStatusError(StatusCode.FAILURE, "the root exists")
            permissions = attrs.permissions & 0o777 if attrs.permissions is not None else 0o777
            os.mkdir(name, permissions, dir_fd=fd)
        finally:
            os.close(fd)

    def rmdir(self, path: str) -> None:
        fd, name = self._parent(path)
        try:
            if name == ".":
                raise _refused("the root cannot be removed")
            os.rmdir(name, dir_fd=fd)
        finally:
            os.close(fd)

    def rename(self, old_path: str, new_path: str) -> None:
        old_fd, old_name = self._parent(old_path)
        try:
            new_fd, new_name = self._parent(new_path)
            try:
                if "." in (old_name, new_name):
                    raise _refused("the root cannot be renamed")
                st = self._lstat_at(old_fd, old_name)
                if stat.S_ISREG(st.st_mode):
                    # link + unlink, as sftp-server: link cannot overwrite, so an existing name fails.
                    os.link(old_name, new_name, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
                    os.unlink(old_name, dir_fd=old_fd)
                else:
                    try:
                        self._lstat_at(new_fd, new_name)
                    except FileNotFoundError:
                        os.rename(old_name, new_name, src_dir_fd=old_fd, dst_dir_fd=new_fd)
                    else:
                        raise SFTPStatusError(StatusCode.FAILURE, "Failure")
            finally:
                os.close(new_fd)
        finally:
            os.close(old_fd)
