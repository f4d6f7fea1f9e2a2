"""Where a learner's code runs when it is graded: a bubblewrap sandbox with limits, killed as a whole.

Theory of operation
-------------------
Grading runs code nobody has reviewed on the instructor's machine, so it runs it the way Flatpak runs
an application: under `bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's
``bubblewrap``), a small, well-kept tool that builds the sandbox from Linux namespaces and needs no
daemon and no Docker.  Inside it the learner's code

* sees the whole file system **read-only** (it needs Python, the venv and the library), except its own
  empty folder, a private ``/tmp``, and nothing at all of the masters (``solutions/``, which hold the
  answers) or of the class's submissions folder (both covered by an empty tmpfs);
* has **no network but its own loopback** (a fresh network namespace: a live handshake to a server it
  starts itself still works, nothing on the host or beyond is reachable);
* has **none of the grader's environment variables** (a clean environment with PATH, HOME, LANG and
  the library's path);
* lives in its own **PID namespace**, so when the grader kills the sandbox every process in it dies,
  even one started in a session of its own (``--die-with-parent`` also ties it to the grader);
* has **CPU, memory, file-size, open-file and process limits** (:class:`SandboxLimits`): rlimits the
  worker sets on itself before it runs any learner code (they are inherited and cannot be raised again),
  and, where the grader can create one, a ``pids`` cgroup, because the kernel does not apply the
  process rlimit to root.

:func:`sandbox_problem` says why the sandbox cannot run on this machine (no ``bwrap``, user namespaces
disabled...); grading then refuses unless the instructor asks for ``--no-sandbox``, which keeps the
limits, the clean environment and the process-tree kill but none of the isolation.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["SandboxLimits", "sandbox_problem", "SandboxedProcess"]

# What a sandboxed run may use.  A lesson exercise needs a fraction of each: the worker imports the
# library and runs a few functions (about 60 MB, well under a second of CPU).
DEFAULT_CPU_SECONDS = 60
DEFAULT_MEMORY_BYTES = 2 * 1024**3  # address space per process; Python with OpenSSL maps far more than it touches
DEFAULT_MAX_PROCESSES = 64
DEFAULT_MAX_FILE_BYTES = 64 * 1024**2
DEFAULT_MAX_OPEN_FILES = 256

_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))  # cgroup v1's pids hierarchy, then v2
_counter = itertools.count()


@dataclass(frozen=True)
class SandboxLimits:
    """Per-submission limits, applied to every process the learner's code starts."""

    cpu_seconds: int = DEFAULT_CPU_SECONDS
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    max_processes: int = DEFAULT_MAX_PROCESSES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_open_files: int = DEFAULT_MAX_OPEN_FILES

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _bwrap() -> str | None:
    return shutil.which("bwrap")


_TMP = Path("/tmp")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _needed_under_tmp() -> list[Path]:
    """What the worker must see that lives under /tmp (a checkout or a venv there): bound back, read-only."""
    needed = {_REPO_ROOT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve()}
    return sorted(path for path in needed if path.is_relative_to(_TMP))


def _isolation_arguments(workdir: Path, hidden: Sequence[Path]) -> list[str]:
    arguments = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",  # a private /tmp: no other submission's folder, no grader's file
    ]
    visible_tmp = _needed_under_tmp()
    for path in visible_tmp:
        arguments += ["--ro-bind", str(path), str(path)]
    arguments += ["--bind", str(workdir), str(workdir)]
    for path in (Path(hidden_path).resolve() for hidden_path in hidden):
        gone = path.is_relative_to(_TMP) and not any(path.is_relative_to(shown) for shown in visible_tmp)
        if path.is_dir() and not gone and not workdir.is_relative_to(path):
            arguments += ["--tmpfs", str(path)]  # an empty folder where the masters or the submissions were
    arguments += [
        "--chdir", str(workdir),
        "--unshare-all",  # user (when possible), ipc, pid, net (loopback only), uts, cgroup
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    return arguments


@functools.cache
def sandbox_problem() -> str | None:
    """Why the sandbox cannot run on this machine, or None when it can (checked once, by trying it)."""
    bwrap = _bwrap()
    if bwrap is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt install bubblewrap)"
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        run = subprocess.run(
            [bwrap, *_isolation_arguments(probe, ()), "--", sys.executable, "-c", "pass"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not start: {error}"
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot build a sandbox here ({last}); are unprivileged user namespaces disabled?"
    return None


def _make_pids_cgroup(limit: int) -> Path | None:
    """A fresh cgroup with ``pids.max = limit``, or None where this process may not make one."""
    for root in _CGROUP_ROOTS:
        if not (root / "cgroup.procs").exists():
            continue
        path = root / f"handshakes-grade-{os.getpid()}-{next(_counter)}"
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            (path / "pids.max").write_text(str(limit))
            return path
        except OSError:
            path.rmdir()
    return None


class SandboxedProcess:
    """One sandboxed command: started with :meth:`start`, always ended by :meth:`stop` (a context manager).

    ``sandboxed=False`` runs the same command without bubblewrap (``--no-sandbox``): same clean
    environment, limits and process-group kill, no isolation.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        limits: SandboxLimits = SandboxLimits(),
        hidden: Sequence[Path] = (),
        sandboxed: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.limits = limits
        self.hidden = [Path(path) for path in hidden]
        self.sandboxed = sandboxed
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.cgroup: Path | None = None

    def environment(self) -> dict[str, str]:
        # The grader's own variables (tokens, the instructor's paths) never reach learner code.
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "TMPDIR": "/tmp" if self.sandboxed else str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(_REPO_ROOT),  # this library, even from a checkout
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
        }
        env.update(self.extra_env)
        return env

    def command(self, argv: Sequence[str]) -> list[str]:
        if not self.sandboxed:
            return list(argv)
        bwrap = _bwrap()
        if bwrap is None:
            raise RuntimeError("bubblewrap is not installed")
        setenv = [item for key, value in self.environment().items() for item in ("--setenv", key, value)]
        return [bwrap, *_isolation_arguments(self.workdir, self.hidden), *setenv, "--", *argv]

    def start(self, argv: Sequence[str], *, pass_fds: Sequence[int] = (), output: Path | None = None) -> None:
        command = self.command(argv)
        self.cgroup = _make_pids_cgroup(self.limits.max_processes)
        if self.cgroup is not None:
            # Join the cgroup before exec, so that nothing the sandbox starts can be outside it.
            command = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.cgroup), *command]
        with open(output or os.devnull, "wb") as sink:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                pass_fds=tuple(pass_fds),
                start_new_session=True,  # one process group to kill (without bubblewrap, the whole tree)
            )

    def stop(self) -> int | None:
        """Kill everything the command started; return its exit status (None if it never started)."""
        process = self.process
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # bwrap's PID namespace takes every process in it along
        status = process.wait()
        if self.cgroup is not None:
            self._empty_cgroup(self.cgroup)
            self.cgroup = None
        return status

    @staticmethod
    def _empty_cgroup(cgroup: Path) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                pids = [int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            cgroup.rmdir()

    def __enter__(self) -> SandboxedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
