"""The pictures and widgets of lesson 05: the pre-master secret, its padding, and Bleichenbacher's countermeasure.

Theory of operation
-------------------
Lesson 05 follows the 48 bytes of the pre-master secret: made by our client
(:func:`~handshake_lib.tls.rsa_kx.make_pre_master_secret`), encrypted with RSAES-PKCS1-v1_5, carried in
ClientKeyExchange, recovered by the server.  Everything that computes lives in the library and is
tested there; this module only lays it out:

* :func:`padding_view` shows the PKCS#1 v1.5 block inside a ciphertext, as the library's teaching view
  reads it (:func:`~handshake_lib.tls.rsa_kx.padded_block`, :func:`~handshake_lib.tls.rsa_kx.read_padded_block`:
  textbook RSA with a key the lesson made itself, to *look at* the padding, never a way to decrypt);
* :func:`client_key_exchange_view` shows the handshake message carrying a ciphertext, annotated by the
  library's decoder;
* :class:`CountermeasureDemo` flips bits of one ciphertext byte, shows what the padding check would
  have said, and runs a complete handshake in memory between the library's own client and server
  (:func:`~handshake_lib.tls.pair.handshake_in_memory`): the server says nothing about the padding and
  the connection fails later, at the client's Finished, with ``bad_record_mac``.

The live runs against OpenSSL are in :mod:`handshake_lib.peers.openssl_runs`.  The widget exposes its
callback as a plain method (``update``), which refuses a value its controls could not hold (ValueError
or TypeError, before anything changes); its benchmarks are in ``bench/cases/premaster.py``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..tls import rsa_kx
from ..tls.messages import ClientKeyExchange, decode_handshake
from ..tls.pair import InMemoryHandshake, PairKeys, handshake_in_memory
from ..viz.hexview import HexView
from ..viz.widget import ControlledWidget, check_control

__all__ = ["CountermeasureDemo", "client_key_exchange_view", "countermeasure_demo", "padding_view"]


def padding_view(block: bytes, title: str = "") -> HexView:
    """A hex view of an encoded PKCS#1 v1.5 block, each part named, with the padding check's verdict."""
    check = rsa_kx.read_padded_block(block)
    verdict = "valid padding" if check.valid else f"invalid padding: {check.problem}"
    return HexView(block, check.spans, title=title or f"the block inside the ciphertext ({verdict})")


def client_key_exchange_view(encrypted_pre_master_secret: bytes) -> HexView:
    """The ClientKeyExchange handshake message carrying this ciphertext, annotated by the library's decoder."""
    raw = ClientKeyExchange(encrypted_pre_master_secret).to_bytes()
    _, spans = decode_handshake(raw)
    return HexView(raw, spans, title=f"ClientKeyExchange ({len(raw)} bytes)")


class CountermeasureDemo(ControlledWidget, widgets.VBox):
    """Bleichenbacher's countermeasure: tamper one ciphertext byte and watch the server; see :meth:`update`."""

    def __init__(self, *, byte_index: int = 40, mask: int = 0x01, keys: PairKeys | None = None) -> None:
        self.demo_keys = keys or PairKeys.fresh()
        # Replaced by every update with the ciphertext the client really sent; its size fixes the slider.
        self.ciphertext = bytes(self.demo_keys.private_key.key_size // 8)
        size = len(self.ciphertext)
        self.byte_slider = widgets.IntSlider(value=0, min=0, max=size - 1, description="byte", continuous_update=False)
        self.mask_box = widgets.BoundedIntText(value=0, min=0, max=255, description="XOR mask")
        self.verdict = widgets.HTML()
        self.block_box = widgets.VBox()
        self.steps = widgets.HTML()
        self.summary_text = ""
        self.check: rsa_kx.PaddingCheck | None = None
        self.result: InMemoryHandshake | None = None
        super().__init__([widgets.HBox([self.byte_slider, self.mask_box]), self.verdict, self.block_box, self.steps])
        self.watch(self.byte_slider, self.mask_box)
        self.update(byte_index=byte_index, mask=mask)  # checked there, as any later change

    def update(self, *, byte_index: int | None = None, mask: int | None = None) -> InMemoryHandshake:
        """Set the byte and/or mask, tamper, re-run the handshake in memory and redraw; the widget callback.

        A byte the ciphertext does not have, a mask that is not one byte (0..255), or what is not a
        whole number raises ValueError or TypeError before anything changes.
        """
        byte_index = check_control("byte_index", byte_index, self.byte_slider)
        mask = check_control("mask", mask, self.mask_box)
        with self.holding():
            if byte_index is not None:
                self.byte_slider.value = byte_index
            if mask is not None:
                self.mask_box.value = mask
        index, xor = self.byte_slider.value, self.mask_box.value
        sent: list[bytes] = []

        def tampering(pre_master: bytes, public_key: Any) -> bytes:
            sent.append(rsa_kx.tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), index, xor))
            return sent[-1]

        # A fresh handshake each time: the client's pre-master secret and its ciphertext are new, only the
        # tampering (which byte, which bits) is the learner's choice.
        self.result = handshake_in_memory(self.demo_keys, encrypt_pre_master_secret=tampering)
        self.ciphertext = sent[-1]
        self.check = rsa_kx.read_padded_block(rsa_kx.padded_block(self.ciphertext, self.demo_keys.private_key))
        same = self.result.server_pre_master_secret == self.result.client_pre_master_secret
        what = "untouched ciphertext" if xor == 0 else f"byte {index} XOR 0x{xor:02x}"
        lines = [
            f"sent: {what}",
            f"padding check (hidden inside the server): {'valid' if self.check.valid else self.check.problem}",
            f"client's pre-master secret: {self.result.client_pre_master_secret[:8].hex()}...",
            f"server's pre-master secret: {self.result.server_pre_master_secret[:8].hex()}... "
            + ("= the client's" if same else "!= the client's (the random R the server made before decrypting)"),
            "server's answer to ClientKeyExchange: nothing (it waits for ChangeCipherSpec and Finished, as always)",
            "handshake: " + ("completed" if self.result.completed else "failed at the client's Finished"),
        ]
        alert = self.result.server_alert
        if alert is not None:
            lines.append(f"alert the server sends: {alert.name} ({int(alert)})")
        self.summary_text = "\n".join(lines)
        self.verdict.value = f"<pre style='color:inherit'>{html.escape(self.summary_text)}</pre>"
        self.block_box.children = [padding_view(self.check.block)]
        self.steps.value = (
            "<b>records, as the server saw them</b><pre style='color:inherit'>"
            + html.escape("\n".join(self.result.steps()))
            + "</pre>"
        )
        return self.result


def countermeasure_demo(**settings: Any) -> CountermeasureDemo:
    """The lesson's tampering widget (``byte_index``, ``mask``)."""
    return CountermeasureDemo(**settings)
