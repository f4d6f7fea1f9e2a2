"""Exit statuses and the one exception commands raise to fail with a one-line explanation."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the peer, the network or a file said no
EXIT_USAGE = 2  # the command line was wrong (argparse uses 2 as well)


class CommandError(Exception):
    """A failure the command can explain in one line; ``run`` prints it and exits with ``exit_status``."""

    def __init__(self, message: str, exit_status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_status = exit_status
