"""wire: every encoding round-trips, every read is annotated, and bad input is only ever a DecodeError."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, EncodeError
from handshake_lib.wire import Reader, Writer

SIZES = [1, 2, 3, 4, 8]


@pytest.mark.parametrize("size", SIZES)
def test_uint_round_trip_at_the_edges(size: int) -> None:
    for value in (0, 1, (1 << (8 * size)) - 1):
        data = Writer().uint(size, value).getvalue()
        assert len(data) == size
        assert data == value.to_bytes(size, "big")
        assert Reader(data).uint(size, "v") == value


@pytest.mark.parametrize("size", SIZES)
def test_uint_that_does_not_fit_is_an_encode_error(size: int) -> None:
    with pytest.raises(EncodeError):
        Writer().uint(size, 1 << (8 * size))
    with pytest.raises(EncodeError):
        Writer().uint(size, -1)


def test_u24_is_three_bytes_big_endian() -> None:
    assert Writer().u24(0x010203).getvalue() == b"\x01\x02\x03"
    assert Reader(b"\x01\x02\x03").u24("length") == 0x010203


@pytest.mark.parametrize("length_bytes", [1, 2, 3])
def test_vector_round_trip(length_bytes: int) -> None:
    body = bytes(range(200))
    data = Writer().vector(length_bytes, body).getvalue()
    assert data[:length_bytes] == len(body).to_bytes(length_bytes, "big")
    assert Reader(data).vector(length_bytes, "v") == body


def test_vector_too_long_for_its_length_field() -> None:
    with pytest.raises(EncodeError):
        Writer().vector(1, bytes(256))


def test_truncated_vector_names_field_and_offset() -> None:
    reader = Reader(b"\xaa\x00\x05abc", base_offset=100)
    reader.u8("first")
    with pytest.raises(DecodeError) as caught:
        reader.vector(2, "cipher_suites")
    assert caught.value.field == "cipher_suites"
    assert caught.value.offset == 103  # just after the 2-byte length, where the missing bytes should be
    assert "cipher_suites" in str(caught.value)


def test_vector_length_bounds_are_enforced() -> None:
    with pytest.raises(DecodeError, match="outside 2..4"):
        Reader(b"\x00").vector(1, "v", min_length=2, max_length=4)
    with pytest.raises(DecodeError, match="outside 2..4"):
        Reader(b"\x05hello").vector(1, "v", min_length=2, max_length=4)


def test_vector_reader_rejects_leftover_bytes() -> None:
    data = b"\x00\x03\x00\x2f\xff"  # 3-byte list of 2-byte suites: one byte too many
    reader = Reader(data)
    with pytest.raises(DecodeError, match="unexpected bytes"), reader.vector_reader(2, "suites") as suites:
        suites.u16("suite")


def test_spans_describe_the_bytes_they_were_read_from() -> None:
    writer = Writer().u8(22).u16(0x0303)
    with writer.vector_writer(2) as suites:
        suites.u16(0x009C).u16(0x002F)
    data = writer.getvalue()

    reader = Reader(data, base_offset=5)
    with reader.group("record", "a test record"):
        reader.u8("type", {22: "handshake"}.__getitem__)
        reader.u16("version", lambda v: f"0x{v:04x}")
        with reader.vector_reader(2, "suites") as inner:
            while not inner.at_end:
                inner.u16("suite")

    spans = reader.spans
    assert spans[0].field == "record" and spans[0].is_group
    assert (spans[0].offset, spans[0].length) == (5, len(data))
    by_field = {s.field: s for s in spans if not s.is_group}
    assert by_field["record.type"].meaning == "handshake"
    assert by_field["record.version"].meaning == "0x0303"
    # Every leaf span covers exactly the bytes it names.
    assert all(s.length > 0 and s.offset >= 5 and s.end <= 5 + len(data) for s in spans)
    suite_spans = [s for s in spans if s.field == "record.suites.suite"]
    assert [data[s.offset - 5 : s.end - 5] for s in suite_spans] == [b"\x00\x9c", b"\x00\x2f"]
    assert all(s.depth == 2 for s in suite_spans)


def test_meaning_function_that_fails_does_not_crash_decoding() -> None:
    reader = Reader(b"\x07")
    assert reader.u8("type", {22: "handshake"}.__getitem__) == 7
    assert reader.spans[-1].meaning == "unknown (7)"


# -- SSH encodings, with the examples of RFC 4251 section 5 -----------------------------------------
RFC4251_MPINTS = [
    (0, "00000000"),
    (0x9A378F9B2E332A7, "0000000809a378f9b2e332a7"),
    (0x80, "000000020080"),
    (-0x1234, "00000002edcc"),
    (-0xDEADBEEF, "00000005ff21524111"),
]


@pytest.mark.parametrize(("value", "encoded"), RFC4251_MPINTS)
def test_mpint_matches_rfc4251_examples(value: int, encoded: str) -> None:
    assert Writer().ssh_mpint(value).getvalue().hex() == encoded
    assert Reader(bytes.fromhex(encoded)).ssh_mpint("x") == value


@pytest.mark.parametrize("encoded", ["000000020001", "00000002ff80", "0000000100"])
def test_non_minimal_mpint_is_rejected(encoded: str) -> None:
    with pytest.raises(DecodeError, match="mpint"):
        Reader(bytes.fromhex(encoded)).ssh_mpint("e")


def test_name_list_matches_rfc4251_examples() -> None:
    assert Writer().ssh_name_list([]).getvalue().hex() == "00000000"
    assert Writer().ssh_name_list(["zlib"]).getvalue().hex() == "000000047a6c6962"
    assert Writer().ssh_name_list(["zlib", "none"]).getvalue().hex() == "000000097a6c69622c6e6f6e65"
    assert Reader(bytes.fromhex("000000097a6c69622c6e6f6e65")).ssh_name_list("c") == ["zlib", "none"]


@pytest.mark.parametrize("body", [b"a,,b", b",a", b"a,", b"caf\xc3\xa9"])
def test_bad_name_lists_are_rejected(body: bytes) -> None:
    with pytest.raises(DecodeError, match="name-list"):
        Reader(Writer().ssh_string(body).getvalue()).ssh_name_list("kex_algorithms")


def test_name_list_writer_refuses_names_that_would_not_read_back() -> None:
    for bad in (["a,b"], [""], ["café"]):
        with pytest.raises(EncodeError):
            Writer().ssh_name_list(bad)


def test_boolean_any_non_zero_is_true() -> None:
    assert Reader(b"\x00").ssh_boolean("b") is False
    assert Reader(b"\x01").ssh_boolean("b") is True
    assert Reader(b"\x7f").ssh_boolean("b") is True
    assert Writer().ssh_boolean(True).getvalue() == b"\x01"


def test_ssh_string_and_text() -> None:
    data = Writer().ssh_string("SSH-2.0-Handshakes").getvalue()
    assert data[:4] == b"\x00\x00\x00\x12"
    assert Reader(data).ssh_text("banner") == "SSH-2.0-Handshakes"
    with pytest.raises(DecodeError, match="UTF-8"):
        Reader(Writer().ssh_string(b"\xff\xfe").getvalue()).ssh_text("banner")


def test_ssh_string_claiming_more_than_there_is() -> None:
    with pytest.raises(DecodeError):
        Reader(b"\xff\xff\xff\xffabc").ssh_string("payload")


# -- properties ---------------------------------------------------------------------------------------
@given(st.integers())
def test_any_mpint_round_trips(value: int) -> None:
    assert Reader(Writer().ssh_mpint(value).getvalue()).ssh_mpint("x") == value


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=","),
                        min_size=1, max_size=20), max_size=10))
def test_any_name_list_round_trips(names: list[str]) -> None:
    assert Reader(Writer().ssh_name_list(names).getvalue()).ssh_name_list("n") == names


# The plain reads a fuzz plan may apply, by number.
READS: tuple[Callable[[Reader], Any], ...] = (
    lambda reader: reader.u8("a"),
    lambda reader: reader.u16("b"),
    lambda reader: reader.u24("c"),
    lambda reader: reader.u32("d"),
    lambda reader: reader.u64("e"),
    lambda reader: reader.vector(1, "f"),
    lambda reader: reader.vector(2, "g"),
    lambda reader: reader.vector(3, "h"),
    lambda reader: reader.ssh_string("i"),
    lambda reader: reader.ssh_mpint("j"),
    lambda reader: reader.ssh_name_list("k"),
    lambda reader: reader.ssh_boolean("l"),
    lambda reader: reader.ssh_text("m"),
    lambda reader: reader.expect_end(),
)
# The nested blocks a plan may open; their exits check that a length matches its contents and restore the
# field path, which is where an IndexError or a stale path would hide.
BLOCKS: dict[str, Callable[[Reader], AbstractContextManager[Reader]]] = {
    "vector_reader(1)": lambda reader: reader.vector_reader(1, "n"),
    "vector_reader(2)": lambda reader: reader.vector_reader(2, "o"),
    "vector_reader(3)": lambda reader: reader.vector_reader(3, "p"),
    "vector_reader(1, 1..8)": lambda reader: reader.vector_reader(1, "q", min_length=1, max_length=8),
    "sub_reader(4)": lambda reader: reader.sub_reader(4, "r"),
    "group": lambda reader: reader.group("s", "a group"),
}
READ_STEPS = st.integers(min_value=0, max_value=len(READS) - 1)
# A plan is a list of steps: a read's number, or (block, plan) to run a plan inside a nested block.
PLANS = st.recursive(
    st.lists(READ_STEPS, max_size=12),
    lambda inner: st.lists(st.one_of(READ_STEPS, st.tuples(st.sampled_from(sorted(BLOCKS)), inner)), max_size=6),
    max_leaves=24,
)


def _read_everything(reader: Reader, plan: list) -> None:
    """Apply a random sequence of reads, some inside nested blocks; only DecodeError may come out."""
    for step in plan:
        if isinstance(step, int):
            READS[step](reader)
        else:
            block, inner_plan = step
            with BLOCKS[block](reader) as inner:
                _read_everything(inner, inner_plan)


def _assert_spans_inside(reader: Reader, data: bytes) -> None:
    assert all(s.offset >= 0 and s.length >= 0 and s.end <= len(data) for s in reader.spans)


@given(st.binary(max_size=64), PLANS)
def test_random_bytes_only_ever_raise_decode_error(data: bytes, plan: list) -> None:
    reader = Reader(data)
    try:
        _read_everything(reader, plan)
    except DecodeError as error:
        assert error.offset is not None and 0 <= error.offset <= len(data)
    # Whatever happened, spans never point outside the data, and every block gave its field path back.
    _assert_spans_inside(reader, data)
    with pytest.raises(DecodeError) as caught:
        reader.raw(len(data) + 1, "after")
    assert caught.value.field == "after"


# -- annotate=False: the same reads, the same errors, no spans ----------------------------------------
def _nested_structure(reader: Reader) -> tuple[int, list[int], bytes]:
    with reader.group("hello", "a structure") as hello:
        version = hello.u16("version", lambda v: f"version {v:#06x}")
        items: list[int] = []
        with hello.vector_reader(2, "items", "a list", min_length=2) as block:
            while not block.at_end:
                items.append(block.u16("item", lambda v: f"item {v}"))
        tail = hello.vector(1, "tail", "the rest")
    return version, items, tail


NESTED = bytes.fromhex("0303" "0006" "000a000b000c" "02" "abcd")


def test_a_reader_that_does_not_annotate_reads_the_same_values_and_records_nothing() -> None:
    annotated, quiet = Reader(NESTED), Reader(NESTED, annotate=False)
    assert _nested_structure(quiet) == _nested_structure(annotated) == (0x0303, [10, 11, 12], b"\xab\xcd")
    assert quiet.spans == [] and not quiet.annotating
    assert annotated.annotating and len(annotated.spans) == 9  # group, version, items group + length + 3, tail + length
    assert quiet.at_end and annotated.at_end


def test_a_reader_that_does_not_annotate_never_computes_meanings() -> None:
    def explode(value: object) -> str:
        raise AssertionError("a meaning was computed for a Reader that records no spans")

    reader = Reader(b"\x01\x00\x02\xff\xee", annotate=False)
    assert reader.u8("a", explode) == 1
    assert reader.vector(2, "b", explode) == b"\xff\xee"


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("0303" "0007" "000a000b000c"),  # the list claims more than there is
        bytes.fromhex("0303" "0000" "00"),  # an empty list below its minimum
        bytes.fromhex("0303" "0006" "000a000b000c" "05" "ab"),  # a truncated tail
    ],
)
def test_a_reader_that_does_not_annotate_raises_the_same_errors(data: bytes) -> None:
    errors = []
    for annotate in (True, False):
        with pytest.raises(DecodeError) as caught:
            _nested_structure(Reader(data, annotate=annotate))
        errors.append((str(caught.value), caught.value.field, caught.value.offset))
    assert errors[0] == errors[1]
    assert errors[0][1].startswith("hello.")  # the field path is kept without spans


@given(st.data())
def test_mutated_nested_structures_only_raise_decode_error(data) -> None:
    """Near-valid input (a real group and vector_reader structure with bytes changed, cut or added)."""
    mutated = bytearray(NESTED)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    mutated = mutated[: data.draw(st.integers(0, len(mutated)))] + data.draw(st.binary(max_size=4))
    outcomes = []
    for annotate in (True, False):
        reader = Reader(bytes(mutated), annotate=annotate)
        try:
            outcome: object = _nested_structure(reader)
        except DecodeError as error:
            assert error.field is not None and error.field.startswith("hello")
            assert error.offset is not None and 0 <= error.offset <= len(mutated)
            outcome = (str(error), error.field, error.offset)
        _assert_spans_inside(reader, bytes(mutated))
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]


def test_leftover_bytes_in_a_block_are_an_error_without_annotation_too() -> None:
    reader = Reader(b"\x00\x03\x01\x02\x03", annotate=False)
    with pytest.raises(DecodeError, match="unexpected bytes"), reader.vector_reader(2, "items") as items:
        items.u16("item")


def test_a_group_restores_the_field_path_after_an_error() -> None:
    reader = Reader(b"\x01", annotate=False)
    with pytest.raises(DecodeError), reader.group("outer"):
        reader.u16("too_long")
    with pytest.raises(DecodeError) as caught:
        reader.u16("next")
    assert caught.value.field == "next"


@given(st.binary(max_size=64), PLANS)
def test_annotating_or_not_never_changes_what_is_read(data: bytes, plan: list) -> None:
    outcomes = []
    for annotate in (True, False):
        reader = Reader(data, annotate=annotate)
        try:
            _read_everything(reader, plan)
            outcome: object = reader.position
        except DecodeError as error:
            outcome = (str(error), error.field, error.offset)
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]
