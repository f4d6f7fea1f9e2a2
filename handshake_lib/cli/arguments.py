"""Argument types shared by every command: each refuses a bad value with one line, before anything runs.

argparse calls a type with the text of the argument; a type returns the value or raises
``argparse.ArgumentTypeError``, which argparse prints as ``handshakes ...: error: argument --x: <why>``
and exit status 2.  Checking here, at start-up, matters most for what would otherwise fail late:
a key log in a missing folder made ``tls serve`` start and then fail every handshake with
internal_error, and a timeout of ``inf`` reached the socket layer as an OverflowError.

The limits (also in docs/limits.md, "Command line and widgets"):

* :func:`seconds`: a finite number of seconds, more than 0 and at most :data:`MAX_SECONDS` (one hour);
* :func:`port`: a whole number from 0 to 65535;
* :func:`input_file` / :func:`pem_file`: an existing, readable file (not a folder); a regular PEM file
  also holds a ``-----BEGIN`` line in its first MiB (a pipe is left to the command, which reads it once);
* :func:`append_file`: a file that can be opened for appending (its folder exists), created empty and
  readable by its owner only if missing (a key log holds secrets);
* :func:`output_folder`: a non-empty path that is not an existing file;
* :func:`certificate_name`: a DNS name or IP address by :mod:`handshake_lib.hostnames`;
* :func:`host`: an address to bind, an IP address or a DNS name (whether it is loopback is the
  command's question, since ``--public`` changes the answer).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
from pathlib import Path

from ..hostnames import check_certificate_name, check_dns_name

__all__ = [
    "MAX_SECONDS",
    "append_file",
    "certificate_name",
    "host",
    "input_file",
    "output_folder",
    "pem_file",
    "port",
    "seconds",
]

MAX_SECONDS = 3600.0  # an hour: longer than any exchange the course runs, far below what time_t can hold
MAX_PORT = 65535
PEM_MARKER = b"-----BEGIN "


def _strerror(error: OSError) -> str:
    return error.strerror or str(error)


def seconds(text: str) -> float:
    """A timeout: a finite number of seconds, more than 0 and at most :data:`MAX_SECONDS`."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # nan fails every comparison, so this one test refuses it along with inf, 0, negatives and words.
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected seconds, more than 0 and at most {MAX_SECONDS:g}, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port: a whole number from 0 (let the kernel choose) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to {MAX_PORT}, not {text!r}")
    return value


def _nonempty(text: str) -> Path:
    if not text:
        # Path("") is ".", the current folder: never what an empty argument meant.
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return Path(text)


def input_file(text: str) -> Path:
    """An existing file we can read (not a folder)."""
    path = _nonempty(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file")
    try:
        # O_NONBLOCK: a FIFO with no writer yet must not hold the command before it has even started.
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{text} does not exist") from None
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {_strerror(error)}") from None
    return path


def pem_file(text: str) -> Path:
    """An existing, readable PEM file: it holds at least one ``-----BEGIN ...-----`` line."""
    path = input_file(text)
    if not path.is_file():
        return path  # a pipe (bash's <(...)) is read once, by the command: its loader says what is wrong
    try:
        with path.open("rb") as file:
            # PEM files are small; a megabyte is plenty to find the first marker without reading a disk image.
            head = file.read(1 << 20)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {_strerror(error)}") from None
    if PEM_MARKER not in head:
        raise argparse.ArgumentTypeError(f"{text} is not a PEM file (no '-----BEGIN' line)")
    return path


def append_file(text: str) -> Path:
    """A file to append to (a key log): its folder exists and it opens for appending; created empty if missing."""
    path = _nonempty(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file to append to")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} {what}")
    try:
        # Created as the run would create it, but readable by its owner only: a key log holds secrets.
        # O_NONBLOCK: a FIFO with no reader is refused at once (ENXIO) instead of waiting for one.
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600))
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot append to {text}: {_strerror(error)}") from None
    return path


def output_folder(text: str) -> Path:
    """A folder to write into (created later if missing): not empty, not an existing file."""
    path = _nonempty(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; expected a folder")
    return path  # what else can go wrong (a file higher up, no permission) is mkdir's to say, in one line


def certificate_name(text: str) -> str:
    """A DNS name (a leftmost ``*`` allowed) or an IP address, for a certificate's subjectAltName."""
    try:
        return check_certificate_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def host(text: str) -> str:
    """An IP address or a DNS name (``localhost``): a server to bind, a name a certificate must carry."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return check_dns_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
