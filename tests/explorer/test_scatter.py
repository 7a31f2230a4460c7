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


def test_points_fill_the_frame_with_y_pointing_up():
    # Frame 640 x 460 inside a 14 pixel margin: x spans 14..626, y spans 446 (low) .. 14.
    xy = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    page = scatter.render_map("s", xy, ["a", "b", "c"], ["u", "v", "v"], "kind", height=460)
    circles = _entities(page)
    assert [int(c.get("data-row")) for c in circles] == [0, 1, 2]
    centres = [(float(c.get("cx")), float(c.get("cy"))) for c in circles]
    assert centres == [(14.0, 446.0), (320.0, 14.0), (626.0, 230.0)]
    assert _svg(page).get("data-space") == "s"


def test_marks_are_drawn_on_top_and_widen_the_frame():
    xy = np.array([[0.0, 0.0], [1.0, 1.0]])
    page = scatter.render_map("s", xy, ["a", "b"], ["u", "u"], "kind",
                              marks=[(np.array([3.0, 1.0]), "a -> b at 3")], height=460)
    # The mark at x = 3 is now the right edge, so b (x = 1) moves to a third of the way.
    assert float(_entities(page)[1].get("cx")) == pytest.approx(14 + 612 / 3, abs=0.1)
    [mark] = [g for g in _svg(page).iter(f"{_SVG}g") if g.get("class") == "map-mark"]
    assert mark.get("data-label") == "a -> b at 3"
    assert float(mark.find(f"{_SVG}circle").get("cx")) == 626.0
    assert "data-row" not in mark.find(f"{_SVG}circle").attrib  # a mark is not clickable


def test_commonest_values_take_the_palette_in_order_and_the_rest_share_grey():
    values = ["b", "a", "a", "c", "b"] + [f"rare{i:02d}" for i in range(20)]
    colours = scatter.category_colours(values)
    # a and b twice each (a first by name), then c and the rare ones once each, by name.
    assert colours["a"] == scatter.PALETTE[0] and colours["b"] == scatter.PALETTE[1]
    assert colours["c"] == scatter.PALETTE[2]
    assert colours["rare12"] == scatter.PALETTE[15]
    assert colours["rare13"] == colours["rare19"] == scatter.OTHER
    page = scatter.render_map("s", np.random.default_rng(0).normal(size=(25, 2)),
                              [str(i) for i in range(25)], values, "kind")
    assert "other (7)" in page  # rare13 .. rare19


def test_labels_are_escaped_and_named_with_their_fact():
    label = 'Tom & Jerry <"The Movie"> (1992)'
    page = scatter.render_map("s", np.array([[0.0, 0.0], [1.0, 1.0]]), [label, "x"],
                              ["Comedy", "Drama"], "genre")
    first = _entities(page)[0]
    assert first.get("data-label") == f"{label} (genre: Comedy)"
    assert first.find(f"{_SVG}title").text == f"{label} (genre: Comedy)"


def test_mismatched_inputs_are_refused_with_their_sizes():
    with pytest.raises(ValueError, match=r"shape \(3, 2\), 2 labels and 3 values"):
        scatter.render_map("s", np.zeros((3, 2)), ["a", "b"], ["u", "v", "w"], "kind")
