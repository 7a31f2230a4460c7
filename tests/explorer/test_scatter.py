"""The explorer's clickable SVG map, read back with an XML parser."""

import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from elc.explorer import scatter

_SVG = "{http://www.w3.org/2000/svg}"


def _svg(page: str) -> ElementTree.Element:
    return ElementTree.fromstring(re.search(r"<svg.*</svg>", page, re.S).group(0))


def _entities(page: str) -> list[ElementTree.Element]:
    return [c for c in _svg(page).iter(f"{_SVG}circle") if "data-row" in c.attrib]


def test_frame_leaves_a_margin_and_points_y_up():
    # Entities span 0..2 on both axes; with 8% margins the frame spans -0.16..2.16, drawn
    # on x pixels 14..626 and y pixels 446 (low) .. 14 (high) of a 640 x 460 frame.
    xy = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    frame = scatter.MapFrame.fit(xy, height=460)
    page = scatter.render_map("s", frame, xy, ["a", "b", "c"], ["u", "v", "v"], "kind")
    circles = _entities(page)
    assert [int(c.get("data-row")) for c in circles] == [0, 1, 2]
    centres = [(float(c.get("cx")), float(c.get("cy"))) for c in circles]
    assert centres == [(56.2, 416.2), (320.0, 43.8), (583.8, 230.0)]
    assert _svg(page).get("data-space") == "s"
    [layer] = [g for g in _svg(page).iter(f"{_SVG}g") if g.get("class") == "map-marks"]
    assert len(layer) == 0  # marks are drawn by the page's script from mark_props


def test_marks_beyond_the_frame_are_pinned_to_its_edge():
    frame = scatter.MapFrame.fit(np.array([[0.0, 0.0], [2.0, 2.0]]), height=460)
    long_label = "Toy Story (1995) -> Scream (1996) at 0.35, and then some"
    inside, beyond = scatter.mark_props(frame, [(np.array([0.0, 1.0]), "a"),
                                                (np.array([9.0, -3.0]), long_label)])
    assert inside == {"x": 56.2, "y": 230.0, "label": "a", "short": "a", "left": False,
                      "beyond": False}
    assert (beyond["x"], beyond["y"], beyond["beyond"], beyond["left"]) == (626.0, 446.0,
                                                                            True, True)
    assert beyond["label"] == long_label and len(beyond["short"]) == 40
    assert beyond["short"].endswith("…") and long_label.startswith(beyond["short"][:-1])
    assert scatter.mark_props(frame, []) == []


def test_commonest_values_take_the_palette_in_order_and_the_rest_share_grey():
    values = ["b", "a", "a", "c", "b"] + [f"rare{i:02d}" for i in range(20)]
    colours = scatter.category_colours(values)
    # a and b twice each (a first by name), then c and the rare ones once each, by name.
    assert colours["a"] == scatter.PALETTE[0] and colours["b"] == scatter.PALETTE[1]
    assert colours["c"] == scatter.PALETTE[2]
    assert colours["rare12"] == scatter.PALETTE[15]
    assert colours["rare13"] == colours["rare19"] == scatter.OTHER
    xy = np.random.default_rng(0).normal(size=(25, 2))
    page = scatter.render_map("s", scatter.MapFrame.fit(xy), xy, [str(i) for i in range(25)],
                              values, "kind")
    assert "other (7)" in page  # rare13 .. rare19


def test_labels_are_escaped_and_named_with_their_fact():
    label = 'Tom & Jerry <"The Movie"> (1992)'
    xy = np.array([[0.0, 0.0], [1.0, 1.0]])
    page = scatter.render_map("s", scatter.MapFrame.fit(xy), xy, [label, "x"],
                              ["Comedy", "Drama"], "genre")
    first = _entities(page)[0]
    assert first.get("data-label") == f"{label} (genre: Comedy)"
    assert first.find(f"{_SVG}title").text == f"{label} (genre: Comedy)"


def test_mismatched_inputs_are_refused_with_their_sizes():
    frame = scatter.MapFrame.fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"shape \(3, 2\), 2 labels and 3 values"):
        scatter.render_map("s", frame, np.zeros((3, 2)), ["a", "b"], ["u", "v", "w"], "kind")
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        scatter.MapFrame.fit(np.zeros(3))
