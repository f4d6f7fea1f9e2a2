"""Sessions for real: exec, stderr, exit status, two channels, -L, SFTP and rekeying, against peers nobody here wrote.

The cells come from ``scripts/ssh_session_matrix.py`` (peer x direction x auth method x feature); this
module runs its covering subset: every feature once for each peer and direction, exec under every auth
method.  Each cell makes one real connection and checks it against what the peer itself recorded:

* our client -> sshd (AllowTcpForwarding yes, Subsystem sftp-server): exec with stdout, stderr apart and
  exit status 3; two channels open at once; ``-L`` to a loopback HTTP server (sshd logs the
  direct-tcpip, the HTTP server the GET); SFTP list/read/write in sftp-server; 5 MiB written and read
  back with ``rekey_after_bytes=1 MiB`` (sshd logs each KEXINIT it received; the data comes back intact);
* our client -> asyncssh's and paramiko's servers: exec under publickey, password and two-round
  keyboard-interactive, two channels, ``-L``, and SFTP (asyncssh's own SFTP server);
* OpenSSH ``ssh`` -> our server: exec by key, by password and by keyboard-interactive (SSH_ASKPASS with
  SSH_ASKPASS_REQUIRE=force), ``-N -L`` with ExitOnForwardFailure carrying an HTTP request, a second factor
  (``required=``: ssh logs the partial success), ``sftp -b`` (mkdir, put, ls, get);
* asyncssh's and paramiko's clients -> our server: exec under each method, SFTP;
* verdicts: the same wrong key refused by sshd and by our server ("Permission denied (publickey)." both
  times) and a missing command exiting 127 with "command not found" from sshd's shell and from ours.

Every server starts once for the module (``Peers``).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT, require, require_module

pytestmark = pytest.mark.peer


def _load_matrix():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("ssh_session_matrix", ROOT / "scripts" / "ssh_session_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


matrix = _load_matrix()
CELLS = matrix.covering_subset()


@pytest.fixture(scope="module")
def peers():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    require("sftp", "OpenSSH's sftp client (Debian package openssh-client)")
    require_module("asyncssh")
    require_module("paramiko")
    with matrix.Peers() as running:
        yield running


def test_the_subset_covers_every_feature_and_every_auth_method_of_the_full_matrix():
    full = matrix.full_matrix()
    assert len(full) == len(set(full)) and set(CELLS) < set(full)
    for attribute in ("feature", "auth"):
        want = {(c.peer, c.direction, getattr(c, attribute)) for c in full}
        assert {(c.peer, c.direction, getattr(c, attribute)) for c in CELLS} == want
    # what the brief names is there: both directions for each peer, the verdicts, the rekeying transfer
    assert {(c.peer, c.direction) for c in CELLS} == {(p, d) for p in matrix.PEER_LABELS for d in matrix.DIRECTIONS}
    assert {c.feature for c in CELLS if c.peer == "openssh"} == set(matrix.FEATURES)


@pytest.mark.parametrize("cell", CELLS, ids=[str(cell) for cell in CELLS])
def test_session_interop(peers, cell):
    outcome = peers.run(cell)
    assert outcome.ok, outcome.evidence
    assert not outcome.evidence.startswith("FAILED")


def test_a_cell_that_fails_is_reported_not_raised(peers):
    """The harness can fail: a cell against a server that is not there is a FAILED row, with its reason."""
    cell = matrix.Cell("openssh", "client", "publickey", "exec")
    port = peers.sshd.port
    try:
        peers.sshd.port = 1  # nothing listens on port 1
        outcome = peers.run(cell)
    finally:
        peers.sshd.port = port
    assert not outcome.ok and outcome.evidence.startswith("FAILED: ConnectionLost")


def test_a_reply_after_the_close_is_ignored_as_openssh_does_but_data_is_not():
    """paramiko's server answers ``exec`` after its handler returns; a thread that ran the command at once
    may have closed the channel first (seen in the two-channel cell).  OpenSSH logs "unknown" and goes on."""
    from handshake_lib.errors import ChannelError
    from handshake_lib.ssh import channel_messages as cm
    from handshake_lib.ssh.channels import ConnectionProtocol, LateReplyIgnored

    client = ConnectionProtocol("client")
    assert client.receive(cm.ChannelSuccess(3)) == [LateReplyIgnored(3, "SSH_MSG_CHANNEL_SUCCESS")]
    assert client.receive(cm.ChannelFailure(3)) == [LateReplyIgnored(3, "SSH_MSG_CHANNEL_FAILURE")]
    with pytest.raises(ChannelError, match="not open"):
        client.receive(cm.ChannelData(3, b"late"))


def test_the_committed_document_has_every_cell_of_the_full_matrix_and_each_passed():
    """docs/ssh_session_matrix.md is the script's output: a new cell without its row fails here."""
    text = (ROOT / "docs" / "ssh_session_matrix.md").read_text()
    labels = {label: key for key, label in matrix.PEER_LABELS.items()}
    directions = {label: key for key, label in matrix.DIRECTION_LABELS.items()}
    features = {label: key for key, label in matrix.FEATURES.items()}
    rows = []
    for line in text.splitlines()[2:]:
        if line.startswith("| ") and not line.startswith("| peer ") and not line.startswith("|---"):
            peer, direction, auth, feature, evidence = (cell.strip() for cell in line.strip("|").split(" | ", 4))
            rows.append((matrix.Cell(labels[peer], directions[direction], auth, features[feature]), evidence))
    assert [cell for cell, _ in rows] == matrix.full_matrix()
    assert not [cell for cell, evidence in rows if evidence.startswith("FAILED")]
    assert f"**{len(rows)} of {len(rows)} cells passed**" in text
