"""Protected records from a real session, kept with the keys that open them (lessons 07 and 08).

A :class:`ProtectedRecord` is one record as it crossed the wire plus what the receiver knew when it
opened it (key block, suite, direction, sequence number); :meth:`ProtectedRecord.open` hands it to
:meth:`~handshake_lib.tls.record.RecordProtection.explain`, the same opener a live connection uses, so a
lesson that shows a record's parts can never disagree with the record layer.  :func:`protected_records`
picks them out of a connection's transcript; :class:`RecordedSession` is one such session stored in
``handshake_lib/data/openssl_records.json`` (keys from OpenSSL's own key log, see
:func:`handshake_lib.peers.openssl_sessions.record_openssl_records`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .constants import ContentType, name_of
from .prf import KeyBlock, key_block
from .record import OpenedRecord, RecordProtection, receive_protected_record
from .suites import SuiteParams, parse_suite_name, suite_params

__all__ = ["CLIENT_TO_SERVER", "SERVER_TO_CLIENT", "ProtectedRecord", "RecordedSession", "protected_records"]


CLIENT_TO_SERVER = "client->server"
SERVER_TO_CLIENT = "server->client"


@dataclass(frozen=True)
class ProtectedRecord:
    """One protected record as it crossed the wire, with everything needed to open it.

    ``keys`` is the whole key block; ``direction`` picks the writer's half of it.  ``sequence_number``
    is the record's number in its direction since ChangeCipherSpec: never sent, both sides count.
    """

    label: str
    direction: str
    sequence_number: int
    record: bytes
    params: SuiteParams
    keys: KeyBlock
    encrypt_then_mac: bool

    @property
    def content_type(self) -> int:
        return self.record[0]

    @property
    def version(self) -> int:
        return int.from_bytes(self.record[1:3], "big")

    @property
    def mac_key(self) -> bytes:
        keys = self.keys
        return keys.client_write_mac_key if self.direction == CLIENT_TO_SERVER else keys.server_write_mac_key

    @property
    def construction(self) -> str:
        return self.protection().construction

    def protection(self) -> RecordProtection:
        """The record protection a receiver of this direction has, at this record's sequence number."""
        build = RecordProtection.client_write if self.direction == CLIENT_TO_SERVER else RecordProtection.server_write
        options = {"sequence_number": self.sequence_number, "encrypt_then_mac": self.encrypt_then_mac}
        return build(self.keys, self.params, **options)

    def open(self, data: bytes | None = None) -> OpenedRecord:
        """This record (or ``data``, the same record altered) as its receiver reads and opens it."""
        return receive_protected_record(self.protection(), self.record if data is None else data)


class _Entry(Protocol):
    direction: str
    record: bytes
    encrypted: bool
    messages: list[Any]
    content_type_name: str


def protected_records(
    name: str, transcript: Iterable[_Entry], params: SuiteParams, keys: KeyBlock, encrypt_then_mac: bool
) -> list[ProtectedRecord]:
    """The protected records of a transcript (``TranscriptEntry`` objects), numbered per direction."""
    numbers = {CLIENT_TO_SERVER: 0, SERVER_TO_CLIENT: 0}
    records = []
    for entry in transcript:
        if not entry.encrypted:
            continue
        sequence_number = numbers[entry.direction]
        numbers[entry.direction] += 1
        what = ", ".join(type(m).__name__ for m in entry.messages) or entry.content_type_name
        label = f"{name}: {entry.direction} {what} (seq {sequence_number})"
        records.append(
            ProtectedRecord(label, entry.direction, sequence_number, entry.record, params, keys, encrypt_then_mac)
        )
    return records


@dataclass(frozen=True)
class RecordedSession:
    """Records OpenSSL sent in a real session, and the master secret from OpenSSL's key log.

    Stored in ``handshake_lib/data/openssl_records.json`` (see :func:`handshake_lib.data.load_recordings`).
    """

    name: str
    suite_name: str
    encrypt_then_mac: bool
    master_secret: bytes
    client_random: bytes
    server_random: bytes
    server_records: tuple[bytes, ...]  # OpenSSL's protected records in order: Finished (seq 0), the page (seq 1)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RecordedSession:
        return cls(
            item["name"],
            item["suite_name"],
            bool(item["encrypt_then_mac"]),
            bytes.fromhex(item["master_secret"]),
            bytes.fromhex(item["client_random"]),
            bytes.fromhex(item["server_random"]),
            tuple(bytes.fromhex(record) for record in item["server_records"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suite_name": self.suite_name,
            "encrypt_then_mac": self.encrypt_then_mac,
            "master_secret": self.master_secret.hex(),
            "client_random": self.client_random.hex(),
            "server_random": self.server_random.hex(),
            "server_records": [record.hex() for record in self.server_records],
        }

    @property
    def params(self) -> SuiteParams:
        return suite_params(parse_suite_name(self.suite_name))

    @property
    def keys(self) -> KeyBlock:
        return key_block(self.master_secret, self.server_random, self.client_random, self.params)

    def protected_records(self) -> list[ProtectedRecord]:
        what = {ContentType.handshake: "Finished", ContentType.application_data: "page"}
        params, keys = self.params, self.keys
        return [
            ProtectedRecord(
                f"recorded {self.name}: OpenSSL's {what.get(record[0], name_of(ContentType, record[0]))} (seq {seq})",
                SERVER_TO_CLIENT,
                seq,
                record,
                params,
                keys,
                self.encrypt_then_mac,
            )
            for seq, record in enumerate(self.server_records)
        ]
