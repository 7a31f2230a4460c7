"""Interpolation answers scored by the facts they state: toward movie b or movie a."""

import numpy as np
import pytest
from helpers import needs_recbole

from elc.projects.movielens.eval_score import InterpolationAnswers, facts_toward_b

pytestmark = needs_recbole


@pytest.mark.slow
def test_answers_move_from_a_to_b_by_their_genres_and_decade(prepared_eval_data):
    _, data = prepared_eval_data
    # ML-100k: movie 1 is Toy Story (1995; Animation, Children's, Comedy), movie 172 The
    # Empire Strikes Back (1980; Action, Adventure, Drama, Romance, Sci-Fi, War).
    texts = ["Some Film (1995): Animation and Comedy.",   # F1 with a 2*2/5, decade a's
             "Some Film (1980): Action and War.",         # F1 with b 2*2/8, decade b's
             "Some Film: a film."]                         # states nothing
    found = InterpolationAnswers("full", "movie_summary", [0.0, 0.5, 1.0], [("1", "172")],
                                 np.zeros((3, 1, 2)), texts)
    np.testing.assert_allclose(facts_toward_b(found, data)[:, 0], [-0.8 - 1, 0.5 + 1, 0.0])
