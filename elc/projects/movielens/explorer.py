"""The explorer's view of a MovieLens run: both movie spaces and the user space, the run's
tasks, and a concept direction (CAV) per genre in user space."""

from __future__ import annotations

from typing import Callable

import numpy as np

from elc.explorer.catalog import Catalog, Space, Task
from elc.projects.movielens.eval_data import USER_BEHAVIOURAL, MOVIE_SEMANTIC, EvalData, genre_cav
from elc.projects.movielens.prepare import movie_spaces
from elc.projects.movielens.tasks import TASKS, liked_genres, task_data


def _task(name: str) -> Task:
    task = TASKS[name]
    return Task(name, task.kind, lambda space: task.prompts({task.kind: space})[0])


def movielens_catalog(config, progress: Callable[[str], None]) -> Catalog:
    """The spaces, tasks and genre CAVs of the MovieLens run ``config`` describes, read
    from its prepared data (``prepare.out_dir``)."""
    prepare = config.prepare
    progress(f"reading MovieLens ({prepare.source}) and the tables in {prepare.out_dir}")
    data = EvalData.load(prepare)
    ml, split, tables = data.ml, data.split, data.tables
    held_out = {"movie": {str(m) for m in split.eval_movies},
                "user": {str(u) for u in split.eval_users}}
    spaces = {}
    semantic = tables[MOVIE_SEMANTIC]
    for name in movie_spaces(prepare):
        table = tables[name]
        movies = [ml.movies[int(i)] for i in table.ids]
        spaces[name] = Space(
            name, "movie", list(table.ids), [m.full_title for m in movies],
            np.asarray(table.vectors, np.float32),
            {"genre": [m.genres[0] if m.genres else "none" for m in movies],
             "decade": [f"{m.year // 10 * 10}s" if m.year else "unknown" for m in movies],
             "split": ["held out" if i in held_out["movie"] else "train" for i in table.ids]},
            # Semantic consistency as the evaluation scores it: against the movie's MiniLM
            # vector of "Title (year). Genres: ...".
            np.stack([semantic.lookup(i) for i in table.ids]).astype(np.float32))
    users = tables[USER_BEHAVIOURAL]
    user_data = task_data(ml, split, "eval")
    genres = {m: movie.genres for m, movie in ml.movies.by_id.items()}

    def user_label(user_id: str) -> str:
        user = ml.users.by_id.get(int(user_id))
        return (f"user {user_id}" if user is None else
                f"user {user_id} ({user.gender}, {user.age}, {user.occupation})")

    spaces[USER_BEHAVIOURAL] = Space(
        USER_BEHAVIOURAL, "user", list(users.ids), [user_label(u) for u in users.ids],
        np.asarray(users.vectors, np.float32),
        # The genre the user's profile names first (liked_genres, as user_profile says it).
        {"liked genre": [(liked_genres(user_data, int(u)) or ["none"])[0] for u in users.ids],
         "split": ["held out" if u in held_out["user"] else "train" for u in users.ids]})
    progress("fitting a concept direction (CAV) per genre in user space")
    directions = {}
    for genre in sorted({g for movie_genres in genres.values() for g in movie_genres}):
        try:
            directions[genre] = genre_cav(ml, split, users, genre)[0]
        except ValueError as error:  # e.g. a genre no training user prefers
            progress(f"no direction for {genre}: {error}")
    tasks = {name: _task(name) for name in prepare.tasks if TASKS[name].kind in ("movie", "user")}
    return Catalog("movielens", spaces, tasks, {USER_BEHAVIOURAL: directions})
