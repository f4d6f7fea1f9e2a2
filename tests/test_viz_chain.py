"""The chain picture (viz/chain.py) drawn from our validator's report on the course's variants: one box
per certificate of the path (and a "?" when no trust anchor was reached), each coloured by the checks
that concern it, the failing reasons beside their box, and nothing overlapping on the rendered figure."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from handshake_lib.pki.report import Status, ValidationReport  # noqa: E402
from handshake_lib.pki.validate import validate  # noqa: E402
from handshake_lib.pki.variants import KeyRing, Scenario, build_variant  # noqa: E402
from handshake_lib.viz.chain import STATUS_COLOURS, chain_boxes, draw_chain  # noqa: E402
from handshake_lib.viz.figures import figure_png  # noqa: E402
from tests.pki_cases import AT, Keys, cert, corpus  # noqa: E402

KEYS = KeyRing()
# The boxes' colours, leaf first (P pass, F fail), and "?" for the dashed box of a path that reached no anchor.
COLOURS = {
    "valid-ecdsa": "PPP",
    "valid-no-intermediate": "PP",
    "expired": "FPP",
    "expired-intermediate": "PFP",
    "wrong-host": "FPP",
    "wildcard-nested": "FPP",
    "client-wrong-eku": "FPP",
    "missing-intermediate": "F?",
    "self-signed-leaf": "F?",
    "untrusted-root": "PF?",
    "cross-signed-cycle": "PPF?",
    "too-long-chain": "PPPPPPPPF?",
    "revoked-intermediate-crl": "PFP",
    "path-length-exceeded": "PPFP",
    "ca-without-keycertsign": "PFP",
    "valid-long-chain": "PPPPPPPPPP",
}
FACE = {letter: to_rgba(STATUS_COLOURS[status][0]) for letter, status in (("P", Status.PASS), ("F", Status.FAIL))}


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {name: build_variant(name, keys=KEYS) for name in COLOURS}


@pytest.fixture(scope="module")
def reports(scenarios: dict[str, Scenario]) -> dict[str, ValidationReport]:
    return {name: scenario.validate() for name, scenario in scenarios.items()}


def by_gid(figure: Figure) -> dict[str, object]:
    ax = figure.axes[0]
    return {artist.get_gid(): artist for artist in [*ax.patches, *ax.texts] if artist.get_gid()}


def squeezed(text: str) -> str:
    return "".join(text.split())


def assert_nothing_overlaps(figure: Figure) -> None:
    """Measured on the rendered figure: no text on another text or on a box it is not inside, and
    everything within the figure."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    inside = Bbox.from_extents(0, 0, figure.bbox.width, figure.bbox.height)
    boxes = {p.get_gid(): p.get_window_extent(renderer) for p in ax.patches
             if p.get_gid().startswith(("certificate:", "anchor:"))}
    arrows = [p.get_window_extent(renderer) for p in ax.patches if p.get_gid().startswith("signed-by:")]
    texts = {t.get_gid(): t.get_window_extent(renderer) for t in ax.texts if t.get_text()}
    assert len(texts) == len(ax.texts)  # every text has its own gid
    for extent in [*boxes.values(), *arrows, *texts.values()]:
        assert inside.x0 <= extent.x0 and extent.x1 <= inside.x1 and inside.y0 <= extent.y0 and extent.y1 <= inside.y1
    gids = list(texts)
    for number, gid in enumerate(gids):
        for other in gids[number + 1 :]:
            assert not texts[gid].overlaps(texts[other]), (gid, other)
        own = gid.split(":", 1)[1] if gid.startswith(("name:", "role:")) else None
        for box_gid, box in boxes.items():
            if own is not None and box_gid in (f"certificate:{own}", f"anchor:{own}"):
                # a name or role line sits inside its own box, with room to spare
                assert box.x0 < texts[gid].x0 and texts[gid].x1 < box.x1, gid
                assert box.y0 < texts[gid].y0 and texts[gid].y1 < box.y1, gid
            else:
                assert not texts[gid].overlaps(box), (gid, box_gid)
        if not gid.startswith("signed-by-label:"):
            assert not any(texts[gid].overlaps(arrow) for arrow in arrows), gid


@pytest.mark.parametrize("name", list(COLOURS))
def test_one_box_per_certificate_coloured_by_its_checks(name: str, reports: dict[str, ValidationReport]) -> None:
    report = reports[name]
    figure = draw_chain(report)
    artists = by_gid(figure)
    code = COLOURS[name]
    certificates = code.rstrip("?")
    assert len(certificates) == len(report.path)
    boxes = sorted(g for g in artists if g.startswith("certificate:"))
    assert boxes == sorted(f"certificate:{i}" for i in range(len(report.path)))
    for index, letter in enumerate(certificates):
        assert artists[f"certificate:{index}"].get_facecolor() == FACE[letter], (name, index)
    # The leaf is at the bottom, its issuer above it, and one "signed by" arrow between each pair.
    heights = [artists[f"certificate:{i}"].get_y() for i in range(len(report.path))]
    assert heights == sorted(heights)
    missing = artists.get("anchor:missing")
    assert (missing is not None) == code.endswith("?")
    if missing is not None:
        assert missing.get_facecolor() == to_rgba(STATUS_COLOURS[Status.NOT_CHECKED][0])
        assert missing.get_linestyle() == "--" and missing.get_y() > heights[-1]
    arrows = [g for g in artists if g.startswith("signed-by:")]
    assert len(arrows) == len(code) - 1
    # Each failing reason is written beside the box of the certificate it names, whole.
    for failure in report.failures:
        index = report.path_names.index(failure.certificate)
        assert squeezed(failure.reason) in squeezed(artists[f"reason:{index}"].get_text()), failure
    assert not [g for g in artists if g.startswith("reason:")] or not report.valid
    assert artists["verdict"].get_text().startswith(f"verdict: {report.verdict}")
    caption = artists["caption"].get_text()
    assert (report.host or "-") in caption and f"{report.at:%Y-%m-%d %H:%M:%S}" in caption
    assert_nothing_overlaps(figure)


def test_a_long_chain_stays_within_the_figure_and_grows_it(reports: dict[str, ValidationReport]) -> None:
    short, long = draw_chain(reports["valid-ecdsa"]), draw_chain(reports["valid-long-chain"])
    assert len(reports["valid-long-chain"].path) == 10
    assert long.get_size_inches()[1] > 2.5 * short.get_size_inches()[1]
    assert long.get_size_inches()[0] == short.get_size_inches()[0]
    assert_nothing_overlaps(long)
    assert figure_png(long).startswith(b"\x89PNG")


def test_checks_concerning_no_certificate_leave_its_box_grey(reports: dict[str, ValidationReport]) -> None:
    from dataclasses import replace

    report = reports["valid-ecdsa"]
    unchecked = replace(report, checks=tuple(replace(c, status=Status.NOT_CHECKED) for c in report.checks))
    assert [box.status for box in chain_boxes(unchecked)] == [Status.NOT_CHECKED] * 3
    artists = by_gid(draw_chain(unchecked))
    assert artists["certificate:1"].get_facecolor() == to_rgba(STATUS_COLOURS[Status.NOT_CHECKED][0])
    assert "not checked" in artists["role:1"].get_text()


def test_the_boxes_say_which_checks_concern_them(reports: dict[str, ValidationReport]) -> None:
    leaf, issuing, root = chain_boxes(reports["expired-intermediate"])
    assert (leaf.role, issuing.role, root.role) == ("leaf", "intermediate", "trust anchor")
    assert [c.check.value for c in issuing.failures] == ["validity"]
    assert "signature" in {c.check.value for c in leaf.checks}  # 'leaf' is signed by 'Issuing CA'
    artists = by_gid(draw_chain(reports["expired-intermediate"]))
    assert artists["role:1"].get_text() == "intermediate \u00b7 fails validity"


# -- long names, one certificate, several attempts -------------------------------------------------------------
PKI = Keys()
CASES = corpus(PKI)


def test_long_names_are_cut_and_long_reasons_wrapped_inside_the_figure() -> None:
    case = CASES["valid_server_ecdsa"]
    long_name = "a-very-long-label-that-goes-on-and-on-and-on.example.com"  # 56 characters, 40 fit a box
    leaf = cert(long_name, PKI.ec[2], case.pool[0], PKI.ec[1], sans=[long_name])
    report = validate(leaf, intermediates=case.pool, trust_anchors=case.anchors, at=AT,
                      host="another-rather-long-host-name-that-does-not-match-anything." * 2 + "example.org")
    assert report.result("host_name").status is Status.FAIL
    figure = draw_chain(report)
    artists = by_gid(figure)
    assert artists["name:0"].get_text().endswith("\u2026") and len(artists["name:0"].get_text()) <= 40
    reason = artists["reason:0"].get_text()
    assert 2 <= len(reason.splitlines()) <= 4 and reason.startswith("host_name: ")
    assert_nothing_overlaps(figure)


def test_a_leaf_that_is_itself_a_trust_anchor_is_one_box() -> None:
    root = CASES["valid_server_ecdsa"].anchors[0]
    report = validate(root, trust_anchors=[root], at=AT)
    figure = draw_chain(report)
    artists = by_gid(figure)
    assert [g for g in artists if g.startswith(("certificate:", "anchor:", "signed-by:"))] == ["certificate:0"]
    assert artists["role:0"].get_text().startswith("leaf and trust anchor")
    assert_nothing_overlaps(figure)


def test_several_path_building_attempts_are_listed_under_the_chain() -> None:
    case = CASES["valid_server_ecdsa"]
    root, real = case.anchors[0], case.pool[0]
    # Same name and key as the real intermediate, signed by a key that is not the root's: tried first, refused.
    forged = [cert("Test Intermediate CA", PKI.ec[1], root, PKI.ec[0], ca=True, sign_with=PKI.ec[7]) for _ in range(3)]
    report = validate(case.leaf, intermediates=[*forged, real], trust_anchors=[root], at=AT, host=case.host)
    assert report.valid and len(report.attempts) == 4
    figure = draw_chain(report)
    artists = by_gid(figure)
    lines = artists["attempts"].get_text().splitlines()
    assert lines[0] == "path building tried 4 paths (leaf first):"
    assert lines[1].startswith("1. www.example.com <- Test Intermediate CA <- Test Root CA: reaches a trust anchor")
    assert lines[4].endswith(": valid")
    assert artists["attempts"].get_position()[1] < artists["certificate:0"].get_y()  # under the leaf
    assert_nothing_overlaps(figure)
    # A single attempt is not listed.
    assert "attempts" not in by_gid(draw_chain(validate(case.leaf, intermediates=[real], trust_anchors=[root],
                                                       at=AT, host=case.host)))


def test_redrawing_into_the_same_axes_resizes_the_figure(reports: dict[str, ValidationReport]) -> None:
    figure = draw_chain(reports["valid-long-chain"])
    again = draw_chain(reports["missing-intermediate"], ax=figure.axes[0])
    assert again is figure and len(figure.axes) == 1
    assert sorted(g for g in by_gid(figure) if g.startswith(("certificate:", "anchor:"))) == [
        "anchor:missing", "certificate:0"]
    assert figure.get_size_inches()[1] < 3
    assert_nothing_overlaps(figure)


def test_a_failure_that_names_no_certificate_of_the_path_goes_under_the_caption(
    reports: dict[str, ValidationReport],
) -> None:
    from dataclasses import replace

    from handshake_lib.viz.figures import figure_svg

    report = reports["expired"]
    whole = replace(report, checks=tuple(replace(c, certificate=None) if c.status is Status.FAIL else c
                                         for c in report.checks))
    figure = draw_chain(whole)
    artists = by_gid(figure)
    assert artists["notes"].get_text().startswith("validity (whole path): 'www.shop.example' expired on")
    assert artists["certificate:0"].get_facecolor() == FACE["P"]  # no box is blamed for it
    assert not [g for g in artists if g.startswith("reason:")]
    assert_nothing_overlaps(figure)
    assert b"validity (whole path)" in figure_svg(figure)  # text kept as text for the widgets' SVG
