"""Questions about points of the MovieLens spaces, as ``launch.sample`` asks them: a movie's
or a user's own vector, a point between two movies, a user moved along the concept
direction (CAV) of liking a genre. Each is a labelled generation request.

Errors are ``QuestionError``s that name the kind of question (``movie``, ``interpolate``,
``user``, ``cav``), so that a launcher can point at the flag that asked it.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from elc.data.vector_table import VectorTable
from elc.evaluation import concepts
from elc.generation.answering import Request
from elc.projects.movielens.dataset import load_movielens
from elc.projects.movielens.eval_data import USER_BEHAVIOURAL, genre_cav
from elc.projects.movielens.prepare import held_out_entities, movie_spaces
from elc.projects.movielens.tasks import TASKS


class QuestionError(ValueError):
    """A question that cannot be asked; ``kind`` says which kind of question it was."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass(frozen=True)
class Questions:
    """What to ask: movie ids, (movie a, movie b, weight) interpolations, user ids and
    (user, genre, amount) shifts along a genre's CAV, with the tasks whose first phrasing
    asks about a movie and about a user."""

    movies: Sequence[str] = ()
    interpolations: Sequence[tuple[str, str, float]] = ()
    users: Sequence[str] = ()
    cavs: Sequence[tuple[str, str, float]] = ()
    movie_task: str = "movie_summary"
    user_task: str = "user_profile"


def _prompt(task: str, role: str, space: str) -> str:
    if task not in TASKS or TASKS[task].kind != role:
        known = sorted(name for name, t in TASKS.items() if t.kind == role)
        raise QuestionError(f"{role}_task", f"{task!r} is not a {role} task; expected one of "
                            f"{known}")
    return TASKS[task].prompts({role: space})[0]


def _vector(kind: str, table: VectorTable, entity_id: str):
    try:
        return table.lookup(entity_id)
    except ValueError as error:
        raise QuestionError(kind, str(error)) from None


def requests(questions: Questions, prepare, tables: dict[str, VectorTable]
             ) -> list[tuple[str, Request]]:
    """(label, request) for every question, in the order movies, interpolations, users,
    CAV shifts. ``prepare`` is the config's prepare section (movie spaces, of which movies
    are asked about the first; data source; held-out split); ``tables`` maps space names
    to their tables."""
    movie_space = movie_spaces(prepare)[0]
    for space in (movie_space, USER_BEHAVIOURAL):
        if tables.get(space) is None:
            raise QuestionError("config", f"the config's data.spaces has no table for {space!r}")
    movies, users = tables[movie_space], tables[USER_BEHAVIOURAL]
    movie_prompt = _prompt(questions.movie_task, "movie", movie_space)
    user_prompt = _prompt(questions.user_task, "user", USER_BEHAVIOURAL)
    out = []
    for movie in questions.movies:
        _vector("movie", movies, movie)  # an unknown id fails here, before any model runs
        out.append((f"movie {movie}", Request(movie_prompt, {movie_space: movie})))
    for a, b, weight in questions.interpolations:
        point = concepts.interpolate(_vector("interpolate", movies, a)[None],
                                     _vector("interpolate", movies, b)[None], [weight])[0, 0]
        out.append((f"movies {a} -> {b} at {weight:g}",
                    Request(movie_prompt, {movie_space: point.tolist()})))
    for user in questions.users:
        _vector("user", users, user)
        out.append((f"user {user}", Request(user_prompt, {USER_BEHAVIOURAL: user})))
    if questions.cavs:
        ml = load_movielens(prepare.source, prepare.path)
        split = held_out_entities(ml, prepare)
        for user, genre, amount in questions.cavs:
            try:
                direction, _ = genre_cav(ml, split, users, genre)
            except ValueError as error:
                raise QuestionError("cav", f"{user},{genre},{amount:g}: {error}") from None
            moved = concepts.shift(_vector("cav", users, user)[None], direction, [amount])[0, 0]
            out.append((f"user {user} + {amount:g} x {genre}",
                        Request(user_prompt, {USER_BEHAVIOURAL: moved.tolist()})))
    return out
