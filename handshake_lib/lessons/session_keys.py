"""The pictures and widgets of lesson 06: from the pre-master secret to the session keys.

Theory of operation
-------------------
Lesson 06 turns the pre-master secret into keys with the PRF.  The computing is the library's and is
tested there: :func:`~handshake_lib.tls.prf.p_hash_steps` unrolls P_hash,
:func:`~handshake_lib.tls.suites.key_block_layout` says where each key sits in the key block,
:func:`~handshake_lib.tls.key_schedule.derive_keys` makes the master secret and the key block from a
recorded handshake with OpenSSL (:func:`~handshake_lib.tls.key_schedule.recorded_handshake`, shipped
in ``handshake_lib/data/rsa_key_schedules.json``) and says whether OpenSSL's key log agrees.  This
module only lays it out:

* :func:`p_hash_picture` draws the A(i) chain of P_hash for a given output length;
* :func:`key_block_layout_html` draws the six parts of the key block, with their values if given;
* :class:`KeyScheduleExplorer` lets the learner choose a suite and the master secret mode and shows
  the derivation, the key block and OpenSSL's verdict, recomputed in microseconds.

The widget exposes its callback as a plain method (``update``), which refuses a suite its menu does not
offer (ValueError, before anything changes); its benchmarks are in ``bench/cases/session_keys.py``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..tls.key_schedule import DerivedKeys, derive_keys, recorded_handshake
from ..tls.prf import hmac_digest
from ..tls.suites import RSA_SUITE_NAMES, SuiteParams, key_block_layout
from ..viz.figures import axes_for
from ..viz.widget import ControlledWidget, check_control

__all__ = ["KeyScheduleExplorer", "key_block_layout_html", "key_schedule_explorer", "p_hash_picture"]


def p_hash_picture(length: int = 100, hash_name: str = "sha256", *, ax: Any = None) -> Figure:
    """The A(i) chain of P_hash drawn for ``length`` output bytes: which HMAC feeds which, and the cut."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    size = len(hmac_digest(hash_name, b"", b""))
    rounds = max(1, -(-length // size))
    step = 2.4  # horizontal distance between rounds
    figure, axes = axes_for(ax, (1.7 * rounds + 2.0, 3.6))
    axes.set_xlim(-0.1, step * rounds + 1.4)
    axes.set_ylim(-0.3, 3.4)
    axes.set_axis_off()
    hmac_colour, value_colour, out_colour, cut_colour = "#d9e7f7", "#f4f4f4", "#dff2df", "#f7e3c9"

    def box(x: float, y: float, text: str, colour: str, width: float, height: float = 0.44) -> None:
        axes.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.03", fc=colour, ec="#555"
            )
        )
        axes.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="#444", lw=1))

    box(0.6, 2.9, "A(0) = seed", value_colour, 1.0)
    for i in range(1, rounds + 1):
        x = 0.6 + step * i
        chain_x = x - step / 2
        box(chain_x, 2.9, "HMAC", hmac_colour, 0.6)
        arrow((x - step + 0.55, 2.9), (chain_x - 0.35, 2.9))
        box(x, 2.9, f"A({i})", value_colour, 0.6)
        arrow((chain_x + 0.35, 2.9), (x - 0.35, 2.9))
        box(x, 1.75, f"HMAC(secret,\nA({i}) + seed)", hmac_colour, 1.5, 0.6)
        arrow((x, 2.66), (x, 2.07))
        used = min(size, length - (i - 1) * size)
        label = f"block {i}\n{used} of {size} bytes" if used < size else f"block {i}\n{size} bytes"
        box(x, 0.65, label, out_colour if used == size else cut_colour, 1.5, 0.6)
        arrow((x, 1.43), (x, 0.97))
    axes.text(
        0.1,
        -0.15,
        f"P_{hash_name.upper()}(secret, seed) = block 1 + block 2 + ... cut to {length} bytes"
        f"  (every HMAC is keyed with the secret)",
        fontsize=8,
        ha="left",
    )
    axes.set_title(
        f"P_{hash_name.upper()}: A(i) = HMAC(secret, A(i-1)); block i = HMAC(secret, A(i) + seed)", fontsize=10
    )
    return figure


# One colour per part of the key block, in RFC 5246 section 6.3 order (the names are key_block_layout's).
_PART_COLOURS = {
    "client_write_MAC_key": "#f6c6c6",
    "server_write_MAC_key": "#f6dcc6",
    "client_write_key": "#c6daf6",
    "server_write_key": "#c6f0f6",
    "client_write_IV": "#d8f6c6",
    "server_write_IV": "#eef6c6",
}


def key_block_layout_html(params: SuiteParams, block: bytes | None = None) -> str:
    """A bar (one box per byte range, width by length) and a table of the parts, with values if given."""
    cells, rows = [], []
    for name, offset, length in key_block_layout(params):
        if length == 0:
            rows.append(f"<tr><td>{name}</td><td>-</td><td>0</td><td><i>{_empty_reason(name, params)}</i></td></tr>")
            continue
        cells.append(
            f"<div title='{name}: bytes {offset}..{offset + length - 1}' style='flex:{length};background:"
            f"{_PART_COLOURS[name]};border:1px solid #777;padding:2px;overflow:hidden;white-space:nowrap;"
            f"font-size:11px;color:#000'>{name} ({length})</div>"
        )
        value = f"<code>{block[offset : offset + length].hex()}</code>" if block is not None else ""
        rows.append(f"<tr><td>{name}</td><td>{offset}</td><td>{length}</td><td>{value}</td></tr>")
    bar = f"<div style='display:flex;width:100%;max-width:60em'>{''.join(cells)}</div>"
    table = (
        "<table style='color:inherit'><tr><th>part</th><th>offset</th><th>bytes</th><th>value</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return f"<div><b>{params.name}: key block of {params.key_block_length} bytes</b>{bar}{table}</div>"


def _empty_reason(name: str, params: SuiteParams) -> str:
    if "MAC" in name and params.is_aead:
        return "none: GCM's authentication tag replaces the MAC"
    return "none"


class KeyScheduleExplorer(ControlledWidget, widgets.VBox):
    """Choose a suite and the master secret mode; see the derivation, the key block and OpenSSL's verdict."""

    def __init__(self, *, cipher: str = "AES128-GCM-SHA256", extended_master_secret: bool = True) -> None:
        # The controls start at rest; the settings go through update(), which checks them first.
        self.suite_menu = widgets.Dropdown(options=list(RSA_SUITE_NAMES), value=RSA_SUITE_NAMES[0], description="suite")
        self.ems_box = widgets.Checkbox(value=True, description="extended master secret (RFC 7627)")
        self.derivation = widgets.HTML()
        self.layout_html = widgets.HTML()
        self.summary_text = ""
        self.derived: DerivedKeys | None = None
        super().__init__([widgets.HBox([self.suite_menu, self.ems_box]), self.derivation, self.layout_html])
        self.watch(self.suite_menu, self.ems_box)
        self.update(cipher=cipher, extended_master_secret=extended_master_secret)

    def update(self, *, cipher: str | None = None, extended_master_secret: bool | None = None) -> DerivedKeys:
        """Set the suite and/or EMS, recompute from the recording, redraw; the widget callback.

        A suite the menu does not offer raises ValueError, an EMS that is not True or False TypeError,
        before anything changes.
        """
        cipher = check_control("cipher", cipher, self.suite_menu)
        extended_master_secret = check_control("extended_master_secret", extended_master_secret, self.ems_box)
        with self.holding():
            if cipher is not None:
                self.suite_menu.value = cipher
            if extended_master_secret is not None:
                self.ems_box.value = extended_master_secret
        recording = recorded_handshake(self.suite_menu.value, self.ems_box.value)
        derived = derive_keys(recording)
        self.derived = derived
        params = recording.params
        hash_name = params.prf_hash.upper()
        if recording.extended_master_secret:
            how = (
                f'master_secret = PRF_{hash_name}(pre_master_secret, "extended master secret", session_hash)\n'
                f"session_hash  = {hash_name}(ClientHello .. ClientKeyExchange) = {recording.session_hash.hex()}"
            )
        else:
            how = f'master_secret = PRF_{hash_name}(pre_master_secret, "master secret", client_random + server_random)'
        verdict = "the same" if derived.matches_openssl else "DIFFERENT"
        lines = [
            f"recorded live handshake with OpenSSL, {params.name}",
            f"pre_master_secret = {recording.pre_master_secret.hex()}",
            f"client_random     = {recording.client_random.hex()}",
            f"server_random     = {recording.server_random.hex()}",
            how,
            f"our master secret      {derived.master_secret.hex()}",
            f"OpenSSL's key log line {recording.openssl_master_secret.hex()}  -> {verdict}",
            f'key_block = PRF_{hash_name}(master_secret, "key expansion", server_random + client_random), '
            f"{params.key_block_length} bytes",
        ]
        self.summary_text = "\n".join(lines)
        self.derivation.value = f"<pre style='color:inherit'>{html.escape(self.summary_text)}</pre>"
        self.layout_html.value = key_block_layout_html(params, derived.key_block)
        return derived


def key_schedule_explorer(**settings: Any) -> KeyScheduleExplorer:
    """The lesson's key schedule widget (``cipher``, ``extended_master_secret``)."""
    return KeyScheduleExplorer(**settings)
