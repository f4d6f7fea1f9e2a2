"""The TLS 1.2 / 1.3 version matrix (``scripts/tls_version_matrix.py``, ``docs/tls_version_matrix.md``).

The whole matrix is 20 connections (about a second), so every cell runs here against real OpenSSL
(``openssl s_server`` and ``s_client``, started once for the module), not only the covering subset
(``--subset``: every way a pair can end, 1.3; 1.2 with the downgrade sentinel and without; refused for the
version on either side; refused for the sentinel by OpenSSL's own check).  Each cell must match what
``expected()`` derives from RFC 8446 (version and sentinel), and its row must equal the committed
document's, so a change in what a pair settles on cannot leave the document stale.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT, require


def _load_matrix():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("tls_version_matrix", ROOT / "scripts" / "tls_version_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tls_version_matrix"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


matrix = _load_matrix()
CELLS = matrix.full_matrix()
SUBSET = matrix.covering_subset()
DOCUMENT = (ROOT / "docs" / "tls_version_matrix.md").read_text()


@pytest.fixture(scope="module")
def peers():  # noqa: ANN201 - matrix.Peers
    require("openssl", "openssl s_server and s_client are the peers")
    with matrix.Peers() as running:
        yield running


def _row(outcome) -> tuple[str, tuple[str, ...]]:  # noqa: ANN001
    text = matrix.markdown([outcome])
    ((key, columns),) = matrix.rows(text).items()
    return key, columns


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c.side}-{c.ours}-{c.openssl}")
def test_version_cell_against_openssl_and_the_committed_row(peers, cell) -> None:  # noqa: ANN001
    outcome = peers.run(cell)
    assert outcome.ok, f"{outcome.settled}: {outcome.problem} ({outcome.evidence})"
    key, columns = _row(outcome)
    assert matrix.rows(DOCUMENT)[key] == columns  # regenerate: python scripts/tls_version_matrix.py


def test_the_subset_covers_every_ending_and_the_document_has_every_cell() -> None:
    full = matrix.full_matrix()
    assert set(SUBSET) <= set(full)
    endings = {(matrix.expected(c)[0], matrix.expected(c)[1], c.side) for c in SUBSET}
    assert {("1.3", False), ("1.2", True), ("1.2", False), ("refused", False), ("refused", True)} <= {
        (version, sentinel) for version, sentinel, _ in endings
    }
    assert {side for *_, side in endings} == {"client", "server"}
    documented = matrix.rows(DOCUMENT)
    labels = {"client": matrix.OUR_CLIENTS, "server": matrix.OUR_SERVERS}
    assert sorted(documented) == sorted((c.side, labels[c.side][c.ours], matrix.OPENSSL_FLAGS[c.openssl]) for c in full)
    assert f"**{len(full)} of {len(full)} cells as expected**" in DOCUMENT
    # every documented row agrees with RFC 8446 as expected() reads it: no cell was committed while failing
    assert not [row for row in documented.values() if "**expected" in row[0]]


def test_the_sentinel_rows_say_what_each_side_saw() -> None:
    """OpenSSL sets the sentinel only when it could have spoken 1.3; a capped s_server -tls1_2 does not; our
    1.3-capable server sets it on 1.2; s_client refuses it from a 1.2-only server of ours, and our auto client
    refuses OpenSSL's when a relay strips supported_versions from its hello."""
    documented = matrix.rows(DOCUMENT)
    assert documented[("client", "1.2-only", "both (no flag)")][:2] == (
        "TLS 1.2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "DOWNGRD\\x01",
    )  # fmt: skip
    assert documented[("client", "auto (1.3 and 1.2)", "-tls1_2")][1] == "no"
    assert documented[("server", '("1.3", "1.2")', "-tls1_2")][1] == "DOWNGRD\\x01"
    refused = documented[("server", "1.2-only TLSServer(downgrade_sentinel=True)", "both (no flag)")]
    assert refused[:2] == ("refused: their alert illegal_parameter", "DOWNGRD\\x01")
    assert "inappropriate fallback" in refused[2]
    attacked = documented[("client", "auto (1.3 and 1.2)", "both, our hello's supported_versions stripped on the way")]
    assert attacked[:2] == ("refused: our alert illegal_parameter (IllegalParameter)", "DOWNGRD\\x01")
    assert 's_server: "sslv3 alert illegal parameter"' in attacked[2]
