"""The three TLS 1.2 record layouts side by side: what is encrypted and what the MAC or tag covers.

A fixed picture (not drawn from a record): MAC-then-encrypt (RFC 5246), encrypt-then-MAC (RFC 7366)
and AES-GCM (RFC 5288), each as a row of boxes, hatched where the bytes are encrypted.  Each box
carries a ``gid`` ``"part:<row>:<name>"`` for tests.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .figures import axes_for

__all__ = ["record_layout_picture"]

# (title, parts); each part: (name, width, colour, encrypted)
# fmt: off
_LAYOUTS: tuple[tuple[str, tuple[tuple[str, float, str, bool], ...]], ...] = (
    ("MAC-then-encrypt (RFC 5246)", (("hdr", 5, "#bbbbbb", False), ("IV", 16, "#9ecae1", False),
     ("plaintext", 30, "#a1d99b", True), ("MAC", 20, "#fdae6b", True), ("padding", 9, "#dadaeb", True))),
    ("encrypt-then-MAC (RFC 7366)", (("hdr", 5, "#bbbbbb", False), ("IV", 16, "#9ecae1", False),
     ("plaintext", 30, "#a1d99b", True), ("padding", 9, "#dadaeb", True), ("MAC", 20, "#fdae6b", False))),
    ("AES-GCM (RFC 5288)", (("hdr", 5, "#bbbbbb", False), ("nonce", 8, "#9ecae1", False),
     ("plaintext", 30, "#a1d99b", True), ("tag", 16, "#fdae6b", False))),
)
# fmt: on


def record_layout_picture(ax: Any = None) -> Figure:
    """The three record layouts side by side: what is encrypted (hatched) and what the MAC or tag covers."""
    figure, ax = axes_for(ax, (8.0, 4.0))
    for row, (title, parts) in enumerate(_LAYOUTS):
        y, x = -row * 1.2, 0.0
        ax.text(0, y + 0.62, title, fontsize=9.5, fontweight="bold", va="bottom")
        for name, width, colour, encrypted in parts:
            hatch = "///" if encrypted else None
            box = Rectangle((x, y), width, 0.55, facecolor=colour, edgecolor="black", linewidth=0.8, hatch=hatch)
            box.set_gid(f"part:{row}:{name}")
            ax.add_patch(box)
            ax.text(x + width / 2, y + 0.27, name, ha="center", va="center", fontsize=8)
            x += width
    ax.text(
        0,
        -3.3,
        "hatched = encrypted.  hdr = type, version, length (5 bytes, in the clear).\n"
        "MAC-then-encrypt: MAC over the plaintext, then encrypt plaintext + MAC + padding.\n"
        "Encrypt-then-MAC: encrypt plaintext + padding, then MAC over IV + ciphertext.\n"
        "GCM: one tag over nonce, ciphertext and seq/type/version/length.\n"
        "Every MAC and tag also covers the sequence number, which is never sent.",
        fontsize=7.5,
        va="top",
    )
    ax.set_xlim(-1, 82)
    ax.set_ylim(-5.3, 1.0)
    ax.set_axis_off()
    return figure
