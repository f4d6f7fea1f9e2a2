"""The pictures and widgets of lesson 12: SSH's version exchange, KEXINIT negotiation, key exchange and keys.

Theory of operation
-------------------
Everything shown is computed by :mod:`handshake_lib.ssh` or comes from a live session with OpenSSH's
``sshd`` (:mod:`handshake_lib.peers.ssh_runs`); this module only lays it out:

* :func:`banner_views`: both identification lines as sent, annotated by the version decoder's spans;
* :class:`NegotiationLab`: two KEXINITs side by side (by default the ones our client and sshd sent), each
  category's winner highlighted and explained (``ssh.negotiation.explain_negotiation``), and
  ``negotiate``'s verdict or failure; the learner reorders or removes names on either side;
* :func:`curve25519_steps`: curve25519-sha256 with the course's demo keys, through ``ssh.kex``;
* :func:`exchange_hash_view`: H's input in the hex view, one span per field;
* :class:`KeyDerivationExplorer`: keys A..F (``ssh.kdf``) for a chosen cipher and MAC, with the blocks;
* :func:`session_sequence`, :func:`state_table_picture`: a live session as a ladder diagram, and the
  client's state table (``ssh.states.diagram_rows``) with the session's path;
* :func:`key_share_table_html`: the post-quantum hybrids' key shares beside Curve25519's.

Widget callbacks are plain methods (``update``) that check their arguments first
(:func:`~handshake_lib.viz.widget.check_control`); the benchmarks are in ``bench/cases/ssh_key_exchange.py``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..errors import NoCommonAlgorithm
from ..ssh.connection import TranscriptEntry
from ..ssh.constants import CIPHERS, COMPRESSION, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS
from ..ssh.exchange_hash import ExchangeHash
from ..ssh.kdf import LETTERS, DerivedKeys, derivation_blocks, derive_all
from ..ssh.kex import kex_method
from ..ssh.messages import KexInit
from ..ssh.negotiation import Choice, build_kexinit, explain_negotiation, negotiate
from ..ssh.protection import CIPHERS as CIPHER_SPECS
from ..ssh.protection import MACS as MAC_SPECS
from ..ssh.states import INITIAL_STATE, diagram_rows, replay
from ..viz.hexview import HexView
from ..viz.sequence import Arrow, draw_sequence
from ..viz.statediagram import draw_state_diagram
from ..viz.widget import ControlledWidget, check_control
from ..wire import Span

__all__ = [
    "DEMO_CLIENT_PRIVATE",
    "DEMO_SERVER_PRIVATE",
    "DEMO_SHARED_SECRET",
    "Curve25519Steps",
    "KeyDerivationExplorer",
    "NegotiationLab",
    "NegotiationView",
    "banner_views",
    "curve25519_steps",
    "exchange_hash_view",
    "key_derivation_explorer",
    "key_share_table_html",
    "negotiation_lab",
    "session_sequence",
    "state_table_picture",
]

# DESIGN section 6: the course's demo keys, the same in the TLS and SSH lessons.  Published, so they
# protect nothing: for replays only, never for a live connection.
DEMO_CLIENT_PRIVATE = bytes(range(0x20, 0x40))
DEMO_SERVER_PRIVATE = bytes(range(0x90, 0xB0))
DEMO_SHARED_SECRET = bytes.fromhex("df4a291baa1eb7cfa6934b29b474baad2697e29f1f920dcc77c8a0a088447624")


# -- the banners ------------------------------------------------------------------------------------------
def banner_views(transcript: Sequence[TranscriptEntry]) -> widgets.VBox:
    """Both identification lines of a session, as sent (CR LF included), annotated field by field."""
    views = []
    for entry in transcript:
        if entry.name != "identification":
            continue
        line = entry.message
        base = min((span.offset for span in line.spans), default=0)  # type: ignore[union-attr]
        spans = [Span(s.offset - base, s.length, s.field, s.meaning, s.depth, s.is_group) for s in line.spans]  # type: ignore[union-attr]
        spans.append(Span(len(entry.wire) - 2, 2, "identification.end", "CR LF: ends the line (not part of V_C/V_S)"))
        who = "client (ours)" if entry.direction == "client->server" else "server (OpenSSH)"
        views.append(HexView(entry.wire, spans, title=f"{entry.direction}: the {who}'s identification line"))
    return widgets.VBox(views)


# -- two KEXINITs -----------------------------------------------------------------------------------------
# (argument suffix, KexInit attribute, label); the cipher and MAC lists are the same in both directions here.
_LISTS: tuple[tuple[str, str, str], ...] = (
    ("kex", "kex_algorithms", "key exchange"),
    ("host_key", "server_host_key_algorithms", "host key"),
    ("ciphers", "encryption_client_to_server", "ciphers"),
    ("macs", "mac_client_to_server", "MACs"),
)


@dataclass
class NegotiationView:
    """What the lab shows: each category's choice, and negotiate()'s verdict."""

    choices: list[Choice]
    verdict: str
    failed: bool
    text: str


def _names_allowed(*kexinits: KexInit) -> list[str]:
    known = [*KEX_ALGORITHMS, *HOST_KEY_ALGORITHMS, *CIPHERS, *MACS]
    for kexinit in kexinits:
        for _, attribute, _ in _LISTS:
            known.extend(getattr(kexinit, attribute))
    return list(dict.fromkeys(name for name in known))


class NegotiationLab(ControlledWidget, widgets.VBox):
    """Two KEXINITs side by side: reorder or remove names on either side and see what is chosen, or why not."""

    def __init__(self, client: KexInit | None = None, server: KexInit | None = None) -> None:
        self.client_kexinit = client or build_kexinit("client", random=bytes)
        self.server_kexinit = server or build_kexinit("server", random=bytes)
        allowed = _names_allowed(self.client_kexinit, self.server_kexinit)
        self.boxes: dict[str, widgets.TagsInput] = {}
        rows = []
        for suffix, attribute, label in _LISTS:
            for side, kexinit in (("client", self.client_kexinit), ("server", self.server_kexinit)):
                box = widgets.TagsInput(value=list(getattr(kexinit, attribute)), allowed_tags=allowed)
                self.boxes[f"{side}_{suffix}"] = box
            rows.append(
                widgets.HBox(
                    [
                        widgets.HTML(f"<b>{label}</b>", layout=widgets.Layout(width="8em")),
                        widgets.VBox([widgets.HTML("client"), self.boxes[f"client_{suffix}"]]),
                        widgets.VBox([widgets.HTML("server"), self.boxes[f"server_{suffix}"]]),
                    ]
                )
            )
        self.table = widgets.HTML()
        self.verdict = widgets.HTML()
        self.view: NegotiationView | None = None
        super().__init__([*rows, self.table, self.verdict])
        self.watch(*self.boxes.values())
        self.update()

    def update(self, **lists: Sequence[str] | None) -> NegotiationView:
        """Set any of ``client_kex``, ``server_kex``, ``client_host_key``, ... ``server_macs`` and recompute.

        A list holding a name the boxes do not offer, a str where a list is due, or an unknown argument
        raises ValueError or TypeError before anything changes.
        """
        unknown = sorted(set(lists) - set(self.boxes))
        if unknown:
            raise TypeError(f"update() takes {', '.join(self.boxes)}; not {', '.join(unknown)}")
        checked = {name: check_control(name, value, self.boxes[name]) for name, value in lists.items()}
        with self.holding():
            for name, value in checked.items():
                if value is not None:
                    self.boxes[name].value = list(value)
        client, server = self._kexinit("client"), self._kexinit("server")
        choices = explain_negotiation(client, server)
        try:
            verdict, failed = negotiate(client, server).describe(), False
        except NoCommonAlgorithm as error:
            verdict, failed = f"the key exchange fails: {error}", True
        text = "\n".join(
            f"{c.category}: {c.winner or ('implicit' if c.implicit else 'NONE')} ({c.reason})" for c in choices
        )
        self.view = NegotiationView(choices, verdict, failed, text + "\n" + verdict)
        self.table.value = _choices_html(choices)
        colour = "#b00020" if failed else "#1b5e20"
        self.verdict.value = f"<pre style='color:{colour};white-space:pre-wrap'>{html.escape(verdict)}</pre>"
        return self.view

    def _kexinit(self, side: str) -> KexInit:
        base = self.client_kexinit if side == "client" else self.server_kexinit
        values = {suffix: tuple(self.boxes[f"{side}_{suffix}"].value) for suffix, _, _ in _LISTS}
        return KexInit(
            base.cookie, values["kex"], values["host_key"], values["ciphers"], values["ciphers"],
            values["macs"], values["macs"], base.compression_client_to_server or COMPRESSION,
            base.compression_server_to_client or COMPRESSION,
        )  # fmt: skip


def _marked(names: Sequence[str], winner: str | None) -> str:
    cells = []
    for name in names:
        style = "background:#c8f7c5;color:#000;font-weight:bold" if name == winner else ""
        cells.append(f"<span style='{style}'>{html.escape(name)}</span>")
    return ", ".join(cells) or "<i>(empty)</i>"


def _choices_html(choices: Sequence[Choice]) -> str:
    rows = []
    for choice in choices:
        if choice.failed:
            outcome = "<b style='color:#b00020'>no match</b>"
        elif choice.implicit:
            outcome = "<i>implicit (AEAD)</i>"
        else:
            outcome = f"<b>{html.escape(choice.winner or '')}</b>"
        rows.append(
            f"<tr title='{html.escape(choice.reason, quote=True)}'><td>{html.escape(choice.category)}</td>"
            f"<td>{_marked(choice.client, choice.winner)}</td><td>{_marked(choice.server, choice.winner)}</td>"
            f"<td>{outcome}</td></tr>"
        )
    return (
        "<table style='color:inherit;font-size:12px'><tr><th>category</th><th>client's KEXINIT</th>"
        "<th>server's KEXINIT</th><th>chosen</th></tr>" + "".join(rows) + "</table>"
    )


def negotiation_lab(client: KexInit | None = None, server: KexInit | None = None) -> NegotiationLab:
    """Lesson 12's negotiation widget, from two KEXINITs (the library's own offers by default)."""
    return NegotiationLab(client, server)


# -- Curve25519 with the demo keys ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve25519Steps:
    client_public: bytes  # Q_C
    server_public: bytes  # Q_S
    client_secret: bytes  # X25519(client private, Q_S)
    server_secret: bytes  # X25519(server private, Q_C)
    encoded_k: bytes  # K as an mpint, as it goes into H and the key derivation

    @property
    def agree(self) -> bool:
        return self.client_secret == self.server_secret

    def lines(self) -> list[str]:
        return [
            f"client private key   {DEMO_CLIENT_PRIVATE.hex()}  (the demo key: bytes 0x20..0x3f)",
            f"Q_C = X25519(private, 9)  {self.client_public.hex()}   -> sent in KEX_ECDH_INIT",
            f"server private key   {DEMO_SERVER_PRIVATE.hex()}  (bytes 0x90..0xaf)",
            f"Q_S = X25519(private, 9)  {self.server_public.hex()}   -> sent in KEX_ECDH_REPLY",
            f"client: X25519(client private, Q_S) = {self.client_secret.hex()}",
            f"server: X25519(server private, Q_C) = {self.server_secret.hex()}",
            f"the same on both sides: {self.agree};  "
            f"the course's published value: {self.client_secret == DEMO_SHARED_SECRET}",
            f"K as an mpint (RFC 8731: the 32 bytes read as a big-endian number): {self.encoded_k.hex()}",
            f"  length {int.from_bytes(self.encoded_k[:4], 'big')}: "
            + (
                "a 00 byte was added, the first byte has its top bit set" if len(self.encoded_k) == 37 else "no 00 byte"
            ),
        ]


def curve25519_steps() -> Curve25519Steps:
    """curve25519-sha256 between the demo keys, both halves run by :mod:`handshake_lib.ssh.kex`."""
    method = kex_method("curve25519-sha256")
    share = method.client_start(lambda n: DEMO_CLIENT_PRIVATE[:n])
    server_public, server_k = method.server_reply(share.public, lambda n: DEMO_SERVER_PRIVATE[:n])
    client_k = share.finish(server_public)
    return Curve25519Steps(share.public, server_public, client_k.raw, server_k.raw, client_k.encoded)


# -- the exchange hash ------------------------------------------------------------------------------------------
def exchange_hash_view(exchange_hash: ExchangeHash) -> HexView:
    """Everything that went into H, one span per field, and H itself in the title."""
    inputs = " || ".join(item.name for item in exchange_hash.fields)
    title = f"H = {exchange_hash.hash.upper()}({inputs}) = {exchange_hash.digest.hex()}"
    return HexView(exchange_hash.data, exchange_hash.spans(), title=title, bytes_per_row=32)


# -- keys A..F ------------------------------------------------------------------------------------------------------
_CIPHER_CHOICES = [name for name in CIPHERS if name in CIPHER_SPECS]
_MAC_CHOICES = [name for name in MACS if name in MAC_SPECS]


class KeyDerivationExplorer(ControlledWidget, widgets.VBox):
    """Keys A..F from one key exchange's K, H and session id, for the cipher and MAC chosen."""

    def __init__(
        self, hash_name: str, encoded_k: bytes, exchange_hash: bytes, session_id: bytes,
        *, cipher: str = "aes256-ctr", mac: str = "hmac-sha2-512-etm@openssh.com",
    ) -> None:  # fmt: skip
        self.hash_name, self.encoded_k, self.digest, self.session_id = hash_name, encoded_k, exchange_hash, session_id
        self.cipher_menu = widgets.Dropdown(options=_CIPHER_CHOICES, value=_CIPHER_CHOICES[0], description="cipher")
        self.mac_menu = widgets.Dropdown(options=_MAC_CHOICES, value=_MAC_CHOICES[0], description="MAC")
        self.output = widgets.HTML()
        self.derived: DerivedKeys | None = None
        super().__init__([widgets.HBox([self.cipher_menu, self.mac_menu]), self.output])
        self.watch(self.cipher_menu, self.mac_menu)
        self.update(cipher=cipher, mac=mac)

    def lengths(self) -> dict[str, int]:
        spec = CIPHER_SPECS[self.cipher_menu.value]
        mac = 0 if spec.is_aead else MAC_SPECS[self.mac_menu.value].key_length
        return {
            "A": spec.iv_length,
            "B": spec.iv_length,
            "C": spec.key_length,
            "D": spec.key_length,
            "E": mac,
            "F": mac,
        }

    def update(self, *, cipher: str | None = None, mac: str | None = None) -> DerivedKeys:
        """Choose the cipher and/or MAC, derive A..F again and redraw (the widget callback)."""
        cipher = check_control("cipher", cipher, self.cipher_menu)
        mac = check_control("mac", mac, self.mac_menu)
        with self.holding():
            if cipher is not None:
                self.cipher_menu.value = cipher
            if mac is not None:
                self.mac_menu.value = mac
        lengths = self.lengths()
        keys = derive_all(self.hash_name, self.encoded_k, self.digest, self.session_id, lengths)
        self.derived = keys
        values = keys.by_letter()
        rows = []
        for letter, meaning in LETTERS.items():
            length = lengths[letter]
            if length == 0:
                why = "the AEAD cipher's tag needs no MAC key" if letter in "EF" else "not used"
                rows.append(f"<tr><td>{letter}</td><td>{meaning}</td><td>0</td><td>-</td><td><i>{why}</i></td></tr>")
                continue
            blocks = derivation_blocks(self.hash_name, self.encoded_k, self.digest, self.session_id, letter, length)
            how = (
                f"K1 = {self.hash_name.upper()}(K || H || '{letter}' || session_id)"
                if len(blocks) == 1
                else (
                    f"K1 .. K{len(blocks)}: Kn = {self.hash_name.upper()}(K || H || K1 .. Kn-1), "
                    f"{len(blocks) * len(blocks[0])} bytes cut to {length}"
                )
            )
            rows.append(
                f"<tr><td>{letter}</td><td>{meaning}</td><td>{length}</td><td>{html.escape(how)}</td>"
                f"<td><code>{values[letter].hex()}</code></td></tr>"
            )
        self.output.value = (
            "<table style='color:inherit;font-size:12px'><tr><th>key</th><th>what</th><th>bytes</th>"
            "<th>blocks</th><th>value</th></tr>" + "".join(rows) + "</table>"
        )
        return keys


def key_derivation_explorer(
    hash_name: str, encoded_k: bytes, exchange_hash: bytes, session_id: bytes, **settings: Any
) -> KeyDerivationExplorer:
    """Lesson 12's keys A..F widget (``cipher``, ``mac``)."""
    return KeyDerivationExplorer(hash_name, encoded_k, exchange_hash, session_id, **settings)


# -- a live session, drawn ---------------------------------------------------------------------------------------
def _label(entry: TranscriptEntry) -> str:
    name = entry.name.removeprefix("SSH_MSG_")
    if entry.name == "identification":
        name = bytes(entry.message.line).decode("ascii", "replace").split(" ")[0]  # type: ignore[union-attr]
    encrypted = entry.packet is not None and entry.packet.protection != "none"
    return ("{" + name + "}" if encrypted else name) + f" ({len(entry.wire)} B)"


def session_arrows(transcript: Sequence[TranscriptEntry], timings: Sequence[tuple[float, str, int]]) -> list[Arrow]:
    """One arrow per flight (packets read in one recv, or sent at once), timed by our client's clock."""
    stamp = {index: moment for moment, _, index in timings}
    flights: list[tuple[str, float, list[int]]] = []
    for index in sorted(range(len(transcript)), key=lambda i: (stamp.get(i, 0.0), i)):
        entry, moment = transcript[index], stamp.get(index, 0.0)
        if flights and flights[-1][0] == entry.direction and flights[-1][1] == moment:
            flights[-1][2].append(index)
        else:
            flights.append((entry.direction, moment, [index]))
    # Our flight and the server's answer: the round trip split at its middle; other flights: the median half.
    halves = {
        n: (b[1] - a[1]) / 2
        for n, (a, b) in enumerate(zip(flights, flights[1:], strict=False))
        if a[0] == "client->server" and b[0] == "server->client" and b[1] > a[1]
    }
    typical = sorted(halves.values())[len(halves) // 2] if halves else 1e-4
    arrows = []
    for n, (direction, moment, indices) in enumerate(flights):
        label = ", ".join(_label(transcript[i]) for i in indices)
        if direction == "client->server":
            arrows.append(Arrow("client", "server", label, moment, moment + halves.get(n, typical)))
        else:
            arrows.append(Arrow("server", "client", label, max(moment - halves.get(n - 1, typical), 0.0), moment))
    return arrows


def session_sequence(result: Any, *, ax: Any = None) -> Figure:
    """A :class:`~handshake_lib.net.ssh.ProbeResult` as a ladder diagram: our client and OpenSSH's sshd."""
    arrows = session_arrows(result.transcript, result.timings)
    negotiated = result.key_exchange.negotiated
    peer = result.server_identification.split()[0].removeprefix("SSH-2.0-")
    title = f"our client and {peer}: {negotiated.kex}, {negotiated.cipher_client_to_server}"
    return draw_sequence(arrows, actors=("client", "server"), title=title, ax=ax, compress_idle=False)


def state_table_picture(transcript: Sequence[TranscriptEntry] | None = None, *, ax: Any = None) -> Figure:
    """The client's transport table (``ssh.states``), drawn; the path a live session took highlighted."""
    rows = diagram_rows("client")
    path: list[str] = [INITIAL_STATE["transport"].value]
    if transcript is not None:
        events = []
        for entry in transcript:
            what: int | str = "identification" if entry.name == "identification" else entry.message.message_number  # type: ignore[union-attr]
            events.append(("sent" if entry.direction == "client->server" else "received", what))
        for transport, _ in replay("client", events):
            if path[-1] != transport.value:
                path.append(transport.value)
    return draw_state_diagram(rows, highlight=path, ax=ax)


# -- the hybrids ---------------------------------------------------------------------------------------------------
def key_share_table_html(rows: Sequence[Any]) -> str:
    """:func:`~handshake_lib.peers.ssh_runs.key_share_sizes`'s rows as a table."""
    body = "".join(
        f"<tr><td>{html.escape(r.method)}</td><td>{html.escape(r.peer)}</td><td>{r.client_share}</td>"
        f"<td>{r.server_share}</td><td>{r.init_packet}</td><td>{r.reply_packet}</td>"
        f"<td>{html.escape(r.k_text)}</td></tr>"
        for r in rows
    )
    return (
        "<table style='color:inherit'><tr><th>method</th><th>peer</th><th>Q_C bytes</th><th>Q_S bytes</th>"
        "<th>KEX_ECDH_INIT on the wire</th><th>KEX_ECDH_REPLY on the wire</th><th>K</th></tr>" + body + "</table>"
    )
