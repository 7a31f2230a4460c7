"""The explorer's 2-D maps, against hand-computed projections."""

import numpy as np
import pytest

from elc.explorer.projection import PlaneProjection


def test_projects_on_the_two_directions_of_largest_spread():
    # Spread 3 along x, 1 along y, none along z, centred on (1, 1, 1): the top principal
    # directions are x then y, so a point maps to its centred (x, y).
    points = np.array([[-2.0, 1, 1], [4, 1, 1], [1, 0, 1], [1, 2, 1]])
    projection = PlaneProjection.fit(points)
    np.testing.assert_allclose(projection(points), [[-3, 0], [3, 0], [0, -1], [0, 1]],
                               atol=1e-12)
    np.testing.assert_allclose(projection(np.array([1.0, 1, 7])), [0, 0], atol=1e-12)


def test_the_map_keeps_its_orientation_when_the_data_is_mirrored():
    # Each axis is signed so that its largest loading is positive: mirrored or reordered
    # data (whose SVD may return either sign) gives the axes x and y themselves.
    points = np.array([[3.0, 0], [-3, 0], [0, 1], [0, -1]])
    for data in (points, -points, points[::-1]):
        np.testing.assert_allclose(PlaneProjection.fit(data).axes, np.eye(2), atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 4), (5, 1), (4,)])
def test_too_few_points_or_dimensions_are_an_error_naming_the_shape(shape):
    with pytest.raises(ValueError, match=rf"got shape \({shape[0]},"):
        PlaneProjection.fit(np.zeros(shape))
