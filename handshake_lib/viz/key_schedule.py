"""The TLS 1.3 key schedule (RFC 8446 section 7.1) as a picture, drawn from one connection's steps.

Theory of operation
-------------------
:class:`~handshake_lib.tls.key_schedule13.KeySchedule13` keeps every value it made as a
``ScheduleStep`` (name, operation, inputs, value).  :func:`draw_key_schedule` lays the steps out as the
RFC draws them: the three extracted secrets (early, handshake, master) down the middle, each joined to the
next by a "derived" secret; what goes *in* on the left (the PSK or zeros, the (EC)DHE shared secret, zeros
again); what comes *out* on the right (traffic secrets, exporter and resumption secrets), each arrow labelled
with the Derive-Secret label and the transcript it hashes.  Every box shows the first bytes of the live
value.  A step the picture has no place for is listed under it, so nothing a schedule computed goes missing.

Boxes carry a ``gid`` (``"step:<name>"``) for tests; ``selected`` draws one box highlighted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figures import axes_for

__all__ = ["KEY_SCHEDULE_LAYOUT", "draw_key_schedule"]

# name -> (x, y, how it is made: the Derive-Secret label and transcript, or the Extract's inputs)
KEY_SCHEDULE_LAYOUT: dict[str, tuple[float, float, str]] = {
    "early_secret": (0.0, 0.0, "HKDF-Extract(salt 0, PSK or 0)"),
    "binder_key": (1.2, 0.0, '"res binder", H("")'),
    "client_early_traffic_secret": (1.2, 0.85, '"c e traffic", H(ClientHello)'),
    "early_exporter_master_secret": (1.2, 1.7, '"e exp master", H(ClientHello)'),
    "derived_for_handshake": (0.0, 1.7, 'Derive-Secret(., "derived", H(""))'),
    "handshake_secret": (0.0, 3.1, "HKDF-Extract(salt derived, (EC)DHE)"),
    "client_handshake_traffic_secret": (1.2, 3.1, '"c hs traffic", H(ClientHello..ServerHello)'),
    "server_handshake_traffic_secret": (1.2, 3.95, '"s hs traffic", H(ClientHello..ServerHello)'),
    "derived_for_master": (0.0, 4.8, 'Derive-Secret(., "derived", H(""))'),
    "master_secret": (0.0, 6.2, "HKDF-Extract(salt derived, 0)"),
    "client_application_traffic_secret_0": (1.2, 6.2, '"c ap traffic", H(ClientHello..server Finished)'),
    "server_application_traffic_secret_0": (1.2, 7.05, '"s ap traffic", H(ClientHello..server Finished)'),
    "exporter_master_secret": (1.2, 7.9, '"exp master", H(ClientHello..server Finished)'),
    "resumption_master_secret": (1.2, 8.75, '"res master", H(ClientHello..client Finished)'),
}
_INPUTS = {"early_secret": "PSK\n(or zeros)", "handshake_secret": "(EC)DHE\nshared secret", "master_secret": "zeros"}
_SPINE = ("early_secret", "derived_for_handshake", "handshake_secret", "derived_for_master", "master_secret")
_PARENT = {
    "binder_key": "early_secret",
    "client_early_traffic_secret": "early_secret",
    "early_exporter_master_secret": "early_secret",
    "client_handshake_traffic_secret": "handshake_secret",
    "server_handshake_traffic_secret": "handshake_secret",
    "client_application_traffic_secret_0": "master_secret",
    "server_application_traffic_secret_0": "master_secret",
    "exporter_master_secret": "master_secret",
    "resumption_master_secret": "master_secret",
}
_BOX = {"boxstyle": "round,pad=0.3", "linewidth": 1.0}


def draw_key_schedule(
    steps: Sequence[Any], *, title: str = "", selected: str | None = None, ax: Axes | None = None
) -> Figure:
    """Draw ``steps`` (``ScheduleStep`` or anything with ``name`` and ``value``) and return the figure."""
    latest = {step.name: step for step in steps}  # a name computed twice shows its last value, as value() does
    unplaced = [name for name in latest if name not in KEY_SCHEDULE_LAYOUT]
    bottom = 9.4 + 0.35 * len(unplaced)
    figure, ax = axes_for(ax, (9.0, 0.75 * bottom + 0.6))
    ax.set_xlim(-1.0, 1.95)
    ax.set_ylim(bottom, -0.6)
    ax.axis("off")
    ax.set_title(title)

    def box(name: str) -> None:
        x, y, how = KEY_SCHEDULE_LAYOUT[name]
        value = latest[name].value
        colour = "#ffe08a" if name == selected else ("#dbe9f6" if name in _SPINE else "#e6f4e6")
        text = f"{name}\n{how}\n{value[:8].hex()}...  ({len(value)} B)"
        ax.text(x, y, text, ha="center", va="center", fontsize=7, family="monospace", gid=f"step:{name}",
                bbox={**_BOX, "facecolor": colour, "edgecolor": "#d62728" if name == selected else "0.4"})  # fmt: skip

    line = {"color": "0.35", "linewidth": 1.0}
    previous: str | None = None
    for name in _SPINE:
        if name not in latest:
            continue
        x, y, _ = KEY_SCHEDULE_LAYOUT[name]
        box(name)
        if name in _INPUTS:
            ax.text(-0.85, y, _INPUTS[name], ha="center", va="center", fontsize=7.5, style="italic")
            ax.annotate("", xy=(-0.5, y), xytext=(-0.7, y), arrowprops={"arrowstyle": "->", **line})
        if previous is not None:
            py = KEY_SCHEDULE_LAYOUT[previous][1]
            ax.annotate("", xy=(x, y - 0.36), xytext=(x, py + 0.36), arrowprops={"arrowstyle": "->", **line})
        previous = name
    for name in latest:
        if name in _SPINE or name not in KEY_SCHEDULE_LAYOUT:
            continue
        box(name)
        parent = _PARENT[name]
        if parent in latest:  # an elbow: out of the parent's right side, down a bus, into the child's left side
            x, y, _ = KEY_SCHEDULE_LAYOUT[name]
            py = KEY_SCHEDULE_LAYOUT[parent][1]
            ax.plot([0.5, 0.56, 0.56], [py, py, y], **line)
            ax.annotate("", xy=(0.62, y), xytext=(0.56, y), arrowprops={"arrowstyle": "->", **line})
    for number, name in enumerate(unplaced):
        value = latest[name].value
        ax.text(-0.95, 9.3 + 0.35 * number, f"also: {name} = {value[:8].hex()}...", fontsize=7, family="monospace",
                gid=f"step:{name}")  # fmt: skip
    return figure
