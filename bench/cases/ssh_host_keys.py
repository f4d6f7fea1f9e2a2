"""Lesson 13's widgets: fingerprints beside ssh-keygen, the known_hosts explorer, the "Are you sure?" buttons.

One sshd (``lesson_sshd``) serves every case, as in the notebook.  The fingerprint explorer is timed with
``ssh-keygen -lv`` already asked (what a learner clicking back and forth waits for) and with its answer
forgotten (a process per call).  The known_hosts explorer is timed on a lookup change and on an edit of
the file (a new line each call: the whole text is parsed again).  A click on the question's buttons
answers a live connection to sshd (Curve25519) waiting at the question, alternately refused and
accepted, from an empty known_hosts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.ssh_host_keys import (
    FingerprintExplorer,
    HostKeyPrompt,
    KnownHostsExplorer,
    host_keys_of,
    keygen_fingerprint,
    lesson_sshd,
)
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import known_hosts_line

_SSHD = lesson_sshd()  # started on first use, stopped at interpreter exit
_CHOICES = [(kind, hash_name) for kind in ("ed25519", "ecdsa", "rsa") for hash_name in ("SHA256", "MD5")]


def _fingerprints_cached() -> Callable[[], object]:
    explorer = FingerprintExplorer(_SSHD.get().host_keys)
    for kind, hash_name in _CHOICES:
        explorer.update(key_type=kind, hash_name=hash_name)
    choices = itertools.cycle(_CHOICES)
    return lambda: explorer.update(**dict(zip(("key_type", "hash_name"), next(choices), strict=True)))


def _fingerprints_first() -> Callable[[], object]:
    explorer = FingerprintExplorer(_SSHD.get().host_keys)
    choices = itertools.cycle(_CHOICES[1:] + _CHOICES[:1])

    def choose() -> object:
        keygen_fingerprint.cache_clear()
        key_type, hash_name = next(choices)
        return explorer.update(key_type=key_type, hash_name=hash_name)

    return choose


def _explorer() -> KnownHostsExplorer:
    sshd = _SSHD.get()
    keys = host_keys_of(sshd)
    stranger = HostKeyPair.generate("ssh-ed25519").host_key
    text = "".join(
        known_hosts_line(sshd.host, sshd.port, key, hashed=i % 2 == 1) + "\n" for i, key in enumerate(keys.values())
    )
    return KnownHostsExplorer(text, sshd.host, sshd.port, {**keys, "stranger": stranger})


def _known_hosts_lookup() -> Callable[[], object]:
    explorer = _explorer()
    port = explorer.port_box.value
    changes = itertools.cycle([{"key": "stranger"}, {"port": 22}, {"key": "ecdsa"}, {"port": port}, {"key": "rsa"}])
    return lambda: explorer.update(**next(changes))


def _known_hosts_edit() -> Callable[[], object]:
    explorer = _explorer()
    base = explorer.text_area.value
    numbers = itertools.count()
    return lambda: explorer.update(
        text=base + f"host{next(numbers)}.example {explorer.host_keys['ed25519'].openssh()}\n"
    )


def _prompt_answer() -> Callable[[], object]:
    # A learner reads the question for seconds before a click; here 41 prompts take turns, so each one's
    # next connection has reached its question (in its thread) by the time it is clicked again.  41
    # waiting connections stay under the lesson sshd's MaxStartups (50); an odd number of prompts with
    # yes and no in turn gives each prompt both answers, and two calls in a row never show the same.
    prompts = [HostKeyPrompt(_SSHD) for _ in range(41)]
    turns = itertools.cycle(range(len(prompts)))
    answers = itertools.cycle(["yes", "no"])

    def answer() -> object:
        prompt = prompts[next(turns)]
        outcome = prompt.update(answer=next(answers))
        if prompt.known_hosts:
            prompt.forget(wait=False)  # unknown again: the next click answers a question too
        return outcome

    return answer


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "fingerprint_explorer.update (ssh-keygen -lv asked before)": _fingerprints_cached,
    "fingerprint_explorer.update (ssh-keygen -lv run now)": _fingerprints_first,
    "known_hosts_explorer.update (host, port or key)": _known_hosts_lookup,
    "known_hosts_explorer.update (the file edited)": _known_hosts_edit,
    "host_key_prompt.update (yes or no: a live connection to sshd)": _prompt_answer,
}
