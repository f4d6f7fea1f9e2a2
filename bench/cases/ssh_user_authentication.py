"""Lesson 14's widgets: a key login taken apart part by part, and a live login to our server with a one-time code.

One sshd (``lesson_auth_sshd``) serves the login the view takes apart; switching parts only re-renders.  The
one-time code widget logs in to our server on loopback on every call (key, password round, code round), with
the right answers and a wrong password in turn, as a learner clicking *log in* would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.ssh_user_authentication import (
    PARTS,
    OneTimeCodeLogin,
    PublickeyLoginView,
    lesson_auth_sshd,
    lesson_otp_server,
    login_with_key,
)

_SSHD = lesson_auth_sshd()  # started on first use, stopped at interpreter exit
_OTP = lesson_otp_server()


def _login_parts() -> Callable[[], object]:
    view = PublickeyLoginView(login_with_key(_SSHD.get()))
    parts = itertools.cycle(PARTS)
    return lambda: view.update(part=next(parts))


def _otp_login() -> Callable[[], object]:
    widget = OneTimeCodeLogin(_OTP)
    passwords = itertools.cycle(["correct horse", "wrong"])
    return lambda: widget.update(key=widget.KEYS[0], password=next(passwords), code=widget.show_code())


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "publickey_login_view.update (another part of the login)": _login_parts,
    "one_time_code_login.update (a live login to our server)": _otp_login,
}
