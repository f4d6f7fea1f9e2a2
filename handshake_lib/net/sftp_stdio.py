"""SFTP over a process's standard input and output, both ways round.

Theory of operation
-------------------
SFTP's byte stream needs no SSH underneath: OpenSSH's ``sftp-server`` reads requests on stdin and writes
answers on stdout, and ``sftp -D PROGRAM`` starts PROGRAM and speaks SFTP over its pipes.  So:

* ``python -m handshake_lib.net.sftp_stdio ROOT`` is our server for ``sftp -D``: :class:`SFTPServer` over
  :class:`~handshake_lib.net.sftp_root.ConfinedRoot` on stdin/stdout.  It reads 64 KiB at a time and
  only while the server wants input (so a client that sends faster than it reads cannot grow our
  buffers past the server's bounds), writes every answer before reading again, and exits 0 at end of
  input.  A fatal protocol error exits as ``sftp-server`` does: 11 for a packet over 256 KiB
  (``sftp_server_cleanup_exit(11)``), 255 for anything else it cannot go on after (a ``fatal()``),
  with one line on stderr.
* :class:`SFTPPipeClient` runs our :class:`SFTPClient` against a program started with pipes
  (``/usr/lib/openssh/sftp-server``, or ours): blocking calls, each bounded by ``timeout`` seconds
  (:class:`~handshake_lib.errors.ConnectionTimeout`), a STATUS error raised as
  :class:`~handshake_lib.errors.SFTPStatusError`, the end of the peer's output as
  :class:`~handshake_lib.errors.UnexpectedEOF`.  ``close()`` closes its stdin (the server's EOF) and
  waits for it to exit, killing it at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from ..errors import ConnectionTimeout, DecodeError, SFTPError, SFTPPacketTooLarge, SFTPStatusError, UnexpectedEOF
from ..ssh.sftp import (
    Attributes,
    AttrsReply,
    Data,
    Handle,
    Name,
    NameReply,
    OpenFlags,
    ReadFinished,
    ResponseReceived,
    SFTPClient,
    SFTPPacket,
    SFTPServer,
    Status,
    StatusCode,
)
from . import DEFAULT_TIMEOUT
from .sftp_root import ConfinedRoot

__all__ = ["READ_SIZE", "serve_stdio", "main", "SFTPPipeClient"]

READ_SIZE = 64 * 1024  # bytes read from a pipe at a time


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve_stdio(root: str, *, stdin: int = 0, stdout: int = 1) -> int:
    """Serve ``root`` on the two descriptors until end of input; the exit status (see the docstring)."""
    server = SFTPServer(ConfinedRoot(root))
    try:
        while True:
            out = server.data_to_send()
            if out:
                _write_all(stdout, out)
                continue
            data = os.read(stdin, READ_SIZE) if server.wants_input else b""
            if not data:
                return 0
            server.receive_data(data)
    except SFTPPacketTooLarge as error:
        print(f"sftp_stdio: bad message: {error}", file=sys.stderr)
        return 11
    except (SFTPError, DecodeError) as error:
        print(f"sftp_stdio: {error}", file=sys.stderr)
        return 255
    except BrokenPipeError:
        return 0
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not os.path.isdir(args[0]):
        print("usage: python -m handshake_lib.net.sftp_stdio ROOT  (ROOT: an existing directory)", file=sys.stderr)
        return 2
    return serve_stdio(args[0])


class SFTPOperations:
    """The file operations on top of an :class:`SFTPClient`, whatever carries its bytes.

    A subclass moves bytes (:meth:`_pump`: until ``done()``, with a deadline) and hands the client's events
    to :meth:`_absorb`: over a child's pipes (:class:`SFTPPipeClient`), or over an SSH channel
    (``net.ssh_session.SFTPChannelClient``).
    """

    client: SFTPClient
    _answers: dict[int, SFTPPacket]
    _finished_reads: list[ReadFinished]

    def _pump(self, done: Callable[[], bool]) -> int | None:
        raise NotImplementedError

    def _absorb(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, ResponseReceived):
                self._answers[event.request_id] = event.response
            elif isinstance(event, ReadFinished):
                self._finished_reads.append(event)

    def request(self, request_id: int) -> SFTPPacket:
        """Wait for the answer to ``request_id`` (queued with ``self.client``) and return it."""
        self._pump(lambda: request_id in self._answers)
        return self._answers.pop(request_id)

    def answered(self, request_id: int) -> bool:
        """Whether the answer to ``request_id`` has arrived (and not been taken by :meth:`request`)."""
        return request_id in self._answers

    def _ok(self, request_id: int) -> SFTPPacket:
        answer = self.request(request_id)
        if isinstance(answer, Status) and answer.code != StatusCode.OK:
            raise SFTPStatusError(answer.code, answer.message)
        return answer

    def _expect(self, request_id: int, kind: type[SFTPPacket]) -> SFTPPacket:
        answer = self._ok(request_id)
        if not isinstance(answer, kind):
            raise SFTPError(f"expected {kind.__name__}, got {answer.type_name}")
        return answer

    # -- operations (shared) -----------------------------------------------------------------------------------
    def realpath(self, path: str) -> str:
        answer = self._expect(self.client.realpath(path), NameReply)
        assert isinstance(answer, NameReply)
        if len(answer.names) != 1:
            raise SFTPError(f"REALPATH answered {len(answer.names)} names")
        return answer.names[0].filename

    def stat(self, path: str) -> Attributes:
        answer = self._expect(self.client.stat(path), AttrsReply)
        assert isinstance(answer, AttrsReply)
        return answer.attrs

    def lstat(self, path: str) -> Attributes:
        answer = self._expect(self.client.lstat(path), AttrsReply)
        assert isinstance(answer, AttrsReply)
        return answer.attrs

    def open(self, path: str, flags: int = OpenFlags.READ, attrs: Attributes | None = None) -> bytes:
        answer = self._expect(self.client.open(path, flags, attrs), Handle)
        assert isinstance(answer, Handle)
        return answer.handle

    def close_handle(self, handle: bytes) -> None:
        self._ok(self.client.close(handle))

    def listdir(self, path: str) -> list[Name]:
        answer = self._expect(self.client.opendir(path), Handle)
        assert isinstance(answer, Handle)
        names: list[Name] = []
        try:
            while True:
                batch = self.request(self.client.readdir(answer.handle))
                if isinstance(batch, Status) and batch.code == StatusCode.EOF:
                    return names
                if isinstance(batch, Status):
                    raise SFTPStatusError(batch.code, batch.message)
                if not isinstance(batch, NameReply):
                    raise SFTPError(f"READDIR answered {batch.type_name}")
                names.extend(batch.names)
        finally:
            self.close_handle(answer.handle)

    def read_file(self, path: str, *, chunk: int = 32 * 1024) -> bytes:
        """The whole file, read with pipelined READs (``max_in_flight`` of ``chunk`` bytes)."""
        handle = self.open(path)
        try:
            self.client.read_file(handle, chunk=chunk)
            self._pump(lambda: any(r.handle == handle for r in self._finished_reads))
            finished = next(r for r in self._finished_reads if r.handle == handle)
            self._finished_reads.remove(finished)
            if finished.error is not None:
                raise finished.error
            return finished.data
        finally:
            self.close_handle(handle)

    def write_file(self, path: str, data: bytes, *, chunk: int = 32 * 1024, mode: int = 0o644) -> None:
        """Create or truncate ``path`` and write ``data`` with pipelined WRITEs."""
        flags = OpenFlags.WRITE | OpenFlags.CREAT | OpenFlags.TRUNC
        handle = self.open(path, flags, Attributes(permissions=mode))
        try:
            outstanding: list[int] = []
            offset = 0
            while offset < len(data) or outstanding:
                while offset < len(data) and self.client.can_send:
                    outstanding.append(self.client.write(handle, offset, data[offset : offset + chunk]))
                    offset += chunk
                self._ok(outstanding.pop(0))
        finally:
            self.close_handle(handle)

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        self._ok(self.client.mkdir(path, Attributes(permissions=mode)))

    def rmdir(self, path: str) -> None:
        self._ok(self.client.rmdir(path))

    def remove(self, path: str) -> None:
        self._ok(self.client.remove(path))

    def rename(self, old_path: str, new_path: str) -> None:
        self._ok(self.client.rename(old_path, new_path))

    def read_data(self, handle: bytes, offset: int, length: int) -> bytes:
        """One READ; b"" at end of file."""
        answer = self.request(self.client.read(handle, offset, length))
        if isinstance(answer, Status) and answer.code == StatusCode.EOF:
            return b""
        if isinstance(answer, Status):
            raise SFTPStatusError(answer.code, answer.message)
        if not isinstance(answer, Data):
            raise SFTPError(f"READ answered {answer.type_name}")
        return answer.data


class SFTPPipeClient(SFTPOperations):
    """Our :class:`SFTPClient` over a child process's pipes; see the module docstring."""


    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_in_flight: int = 64,
        stderr: int | None = subprocess.DEVNULL,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.client = SFTPClient(max_in_flight=max_in_flight)
        self.process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin.fileno()
        self._stdout = self.process.stdout.fileno()
        os.set_blocking(self._stdin, False)
        os.set_blocking(self._stdout, False)
        self._selector = selectors.DefaultSelector()
        self._pending_out = bytearray()
        self._answers: dict[int, SFTPPacket] = {}
        self._finished_reads: list[ReadFinished] = []
        try:
            self.version = self._pump(lambda: self.client.version is not None)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SFTPPipeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the loop -------------------------------------------------------------------------------------
    def _pump(self, done: Callable[[], bool]) -> int | None:
        """Move bytes both ways until ``done()``; the deadline is ``timeout`` from now."""
        deadline = time.monotonic() + self.timeout
        while True:
            self._pending_out += self.client.data_to_send()
            if done() and not self._pending_out:
                return self.client.version
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectionTimeout(f"the SFTP peer did not answer within {self.timeout} s")
            self._selector.register(self._stdout, selectors.EVENT_READ)
            if self._pending_out:
                self._selector.register(self._stdin, selectors.EVENT_WRITE)
            try:
                ready = self._selector.select(remaining)
            finally:
                self._selector.unregister(self._stdout)
                if self._pending_out:
                    self._selector.unregister(self._stdin)
            for key, _ in ready:
                if key.fd == self._stdin:
                    try:
                        written = os.write(self._stdin, self._pending_out)
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        raise UnexpectedEOF("the SFTP peer closed its input") from None
                    del self._pending_out[:written]
                else:
                    try:
                        data = os.read(self._stdout, READ_SIZE)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise UnexpectedEOF("the SFTP peer closed its output")
                    self._absorb(self.client.receive_data(data))

    def send_raw(self, data: bytes) -> None:
        """Bytes straight to the peer (for experiments: an oversized length, garbage)."""
        self._pending_out += data
        self._pump(lambda: not self._pending_out)

    def wait(self) -> int:
        """Wait (at most ``timeout``) for the peer to exit; its exit status."""
        try:
            return self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            raise ConnectionTimeout(f"the SFTP peer did not exit within {self.timeout} s") from None

    def close(self) -> int | None:
        """Close the peer's input (its EOF) and wait for it to exit; kill it at the deadline."""
        self._selector.close()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            return self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


if __name__ == "__main__":  # pragma: no cover - run by sftp -D
    sys.exit(main())
