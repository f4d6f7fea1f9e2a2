"""The one channel between the grader and a sandboxed learner: framed messages, one side never trusted.

Messages are tuples, pickled, each sent as a 4-byte length and the pickle.  The two directions are not
alike:

* grader -> sandbox: plain pickle.  The sandbox may unpickle whatever the grader sends (library
  objects, a TCP segment from a capture...).  A callable that cannot travel by reference (a test's own
  closure or lambda, ``calls.append``) travels as a *callback*: the learner's code calls a stand-in,
  the call comes back over this channel and runs in the grader, so its side effects happen where the
  test can see them.
* sandbox -> grader: pickle read by :class:`RestrictedUnpickler`, which builds plain data only: None,
  bools, numbers, str, bytes, containers, ``...``, the library's enums and dataclasses and IP addresses,
  and calls nothing that could allocate without bound.  A function named in a value (a default argument
  such as ``os.urandom``) travels as a :class:`FunctionReference`, resolved only for a short list.  Anything
  else (an object of a class the learner wrote, say one whose ``__eq__`` always says yes) is refused and
  arrives as an :class:`Unrepresentable` placeholder that compares equal to nothing.  Frames are capped
  (:data:`MAX_FRAME_BYTES`), and every read has a deadline.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import ipaddress
import pickle
import reprlib
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_FRAME_BYTES",
    "ChannelClosed",
    "ChannelTimeout",
    "Unrepresentable",
    "FunctionReference",
    "SAFE_FUNCTIONS",
    "RestrictedUnpickler",
    "restricted_loads",
    "dumps_checked",
    "Channel",
    "load_public_key",
    "load_private_key",
    "load_certificate",
]

MAX_FRAME_BYTES = 16 * 1024 * 1024  # the largest message either side accepts: a bound on the grader's memory
_HEADER = struct.Struct(">I")


class ChannelClosed(EOFError):
    """The other side went away (the sandbox ended: a crash, ``os._exit``, a limit it hit)."""


class ChannelTimeout(TimeoutError):
    """Nothing arrived before the deadline (the learner's code is still running, or hung)."""


@dataclass(frozen=True)
class Unrepresentable:
    """What the grader receives instead of a value it does not accept from learner code."""

    type_name: str
    text: str  # a short repr, for the message the learner reads

    def __eq__(self, other: object) -> bool:  # never equal to an expected value, not even another placeholder
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<a {self.type_name} the grader cannot accept: {self.text}>"


# The only builtins a data pickle names (``...`` is builtins.Ellipsis; complex, range and slice are rebuilt by
# calling them).  bytes, str, lists, dicts, sets and the rest have opcodes of their own and need no name;
# allowing them by name would let a crafted pickle call ``bytes(10**12)``.
_SAFE_BUILTINS = frozenset({"Ellipsis", "NotImplemented", "complex", "range", "slice"})
# Library packages whose dataclasses and enums may arrive: data, not machinery that opens files or sockets.
_UNSAFE_LIBRARY_PACKAGES = ("grading", "net", "peers", "cli", "lessons", "viz", "pki")
# Functions a learner's signature may name as a default (random_bytes=os.urandom), resolved by the grader
# from a FunctionReference, never by unpickling (which would let a crafted pickle call them).
SAFE_FUNCTIONS = {("posix", "urandom"), ("os", "urandom"), ("secrets", "token_bytes")}


@dataclass(frozen=True)
class FunctionReference:
    """A module-level function named in learner code's values (a default argument), by module and name."""

    module: str
    name: str

    def resolve(self) -> Any:
        """The function itself when it is one the grader accepts, else this reference."""
        if (self.module, self.name) in SAFE_FUNCTIONS:
            return getattr(importlib.import_module(self.module), self.name)
        return self


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only (see the module docstring); anything else is an UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        if module == "ipaddress" and name in ("IPv4Address", "IPv6Address"):
            return getattr(ipaddress, name)
        if module == __name__ and name in ("Unrepresentable", "FunctionReference"):
            return globals()[name]
        parts = module.split(".")
        if parts[0] == "handshake_lib" and len(parts) > 1 and parts[1] not in _UNSAFE_LIBRARY_PACKAGES:
            found: Any = importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part, None)
            if isinstance(found, type) and not issubclass(found, BaseException) and (
                issubclass(found, enum.Enum) or dataclasses.is_dataclass(found)
            ):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not accepted from learner code")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("references are not accepted from learner code")


def restricted_loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data)).load()


def dumps_checked(value: Any) -> bytes:
    """Pickle ``value`` so that the grader's :class:`RestrictedUnpickler` accepts it (used in the sandbox).

    What it would refuse is replaced by an :class:`Unrepresentable` that says what it was.
    """
    try:
        data = pickle.dumps(value, protocol=5)
        restricted_loads(data)
        return data
    except Exception:  # noqa: BLE001 - any failure to pickle or to pass the check means the same thing
        try:
            text = reprlib.repr(value)
        except Exception:  # noqa: BLE001 - a learner's __repr__ may raise too
            text = "?"
        return pickle.dumps(Unrepresentable(type(value).__qualname__, text), protocol=5)


# Keys and certificates go to the sandbox as DER (cryptography's objects do not pickle); these load them
# there.  Module-level functions of ours, so that pickle names them by reference.
def load_public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    return load_der_public_key(der)


def load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, None)


def load_certificate(der: bytes) -> Any:
    from cryptography.x509 import load_der_x509_certificate

    return load_der_x509_certificate(der)


class Channel:
    """Framed messages over a connected stream socket; ``send`` a pickle, ``receive`` with a deadline."""

    def __init__(self, sock: socket.socket, *, trusting: bool) -> None:
        self.sock = sock
        self.trusting = trusting  # True in the sandbox (reads the grader), False in the grader (reads learner code)

    def send_bytes(self, payload: bytes) -> None:
        if len(payload) > MAX_FRAME_BYTES:
            payload = pickle.dumps(("error", f"a message of {len(payload)} bytes is over the limit"), protocol=5)
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)

    def _read_exactly(self, count: int, deadline: float | None) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                    raise ChannelTimeout("no answer before the deadline")
            chunk = self.sock.recv(min(count - len(chunks), 1 << 20))
            if not chunk:
                raise ChannelClosed("the other side closed the channel")
            chunks += chunk
        return bytes(chunks)

    def receive_bytes(self, deadline: float | None = None) -> bytes:
        (length,) = _HEADER.unpack(self._read_exactly(_HEADER.size, deadline))
        if length > MAX_FRAME_BYTES:
            raise ChannelClosed(f"a message of {length} bytes is over the limit")
        return self._read_exactly(length, deadline)

    def receive(self, deadline: float | None = None, *, load: Any = None) -> Any:
        payload = self.receive_bytes(deadline)
        if load is not None:
            return load(payload)
        return pickle.loads(payload) if self.trusting else restricted_loads(payload)
