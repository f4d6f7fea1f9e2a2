"""``handshakes cert check``: every course variant, written to files as an instructor would hand them out,
gets the verdict and the failing check its scenario expects, in text and in JSON; bad input gets its
exit status (1: not valid, 2: the command line, 3: our bug) and one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handshake_lib.__main__ import main
from handshake_lib.pki.variants import VARIANTS, Scenario, build_all


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Scenario, dict[str, Path], dict]]:
    """Every variant written to its own folder: (scenario, its files, its manifest)."""
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for scenario in build_all():
        paths = scenario.write(root / scenario.name)
        out[scenario.name] = (scenario, paths, json.loads(paths["manifest"].read_text()))
    return out


def check_args(paths: dict[str, Path], manifest: dict, *extra: str) -> list[str]:
    args = ["cert", "check", str(paths["leaf"]), "--cafile", str(paths["roots"]), "--at", manifest["at"],
            "--purpose", manifest["purpose"], "--max-depth", str(manifest["max_intermediates"])]
    if paths["chain"].read_bytes():
        args += ["--chain", str(paths["chain"])]
    if manifest.get("host"):
        args += ["--host", manifest["host"]]
    if "crls" in paths:
        args += ["--crl", str(paths["crls"])]
    if "ocsp" in paths:
        args += ["--ocsp", str(paths["ocsp"])]
    return [*args, *extra]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_gets_its_expected_verdict(written, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, paths, manifest = written[name]
    expected = manifest["expected"]
    status = main(check_args(paths, manifest))
    text = capsys.readouterr().out
    assert status == (0 if expected["valid"] else 1), text
    assert text.rstrip().endswith("verdict: valid" if expected["valid"] else "verdict: not valid"), text
    if not expected["valid"]:
        failing = [line.split()[0] for line in text.splitlines() if len(line.split()) > 1 and line.split()[1] == "fail"]
        assert expected["first_failure"] in failing, text
    # The same report as JSON: the same verdict and the same failing checks.
    assert main(check_args(paths, manifest, "--json")) == status
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == ("valid" if expected["valid"] else "not valid")
    if not expected["valid"]:
        assert expected["first_failure"] in [c["check"] for c in report["checks"] if c["status"] == "fail"]


def test_max_depth_counts_intermediates(written, capsys: pytest.CaptureFixture[str]) -> None:
    _, paths, manifest = written["valid-ecdsa"]
    args = [a for a in check_args(paths, manifest) if a != str(manifest["max_intermediates"])]
    args[args.index("--max-depth") + 1 : args.index("--max-depth") + 1] = ["0"]
    assert main(args) == 1
    assert "path                 fail" in capsys.readouterr().out


def test_a_certificate_that_does_not_parse_is_not_valid_in_one_line(
    written, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, paths, manifest = written["valid-ecdsa"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    args = check_args(paths, manifest)
    args[2] = str(garbage)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert out.startswith("verdict: invalid (") and len(out.strip().splitlines()) == 1, out
    assert main([*args, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "invalid"
    huge = tmp_path / "huge.pem"
    huge.write_bytes(b"x" * (2 << 20))
    args[2] = str(huge)
    assert main(args) == 1 and "larger than" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change",
    [("--at", "yesterday"), ("--at", "2026-13-01T00:00:00Z"), ("--max-depth", "-1"), ("--max-depth", "65"),
     ("--host", "a..b"), ("--purpose", "email")],
    ids=lambda change: f"{change[0]}={change[1]}",
)
def test_a_bad_argument_is_a_usage_error(written, change, capsys: pytest.CaptureFixture[str]) -> None:
    _, paths, manifest = written["valid-ecdsa"]
    args = check_args(paths, manifest)
    option, value = change
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"argument {option}" in err


def test_no_cafile_is_a_usage_error(written, capsys: pytest.CaptureFixture[str]) -> None:
    _, paths, _ = written["valid-ecdsa"]
    assert main(["cert", "check", str(paths["leaf"])]) == 2
    assert "--cafile" in capsys.readouterr().err


def test_an_internal_error_exits_3_in_one_line(written, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    import handshake_lib.cli.cert as cert

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(cert, "validate", broken)
    _, paths, manifest = written["valid-ecdsa"]
    assert main(check_args(paths, manifest)) == 3
    err = capsys.readouterr().err
    assert err.strip() == "handshakes: error: internal error: RuntimeError: a bug of ours"
