"""ELM training tasks on MovieLens: a registry of prompt phrasings and target builders.

A :class:`Task` asks about one entity (a movie, a user), a pair of movies, or a
(user, movie) pair. Its phrasings name the entities by role, ``<movie>``, ``<user>``,
``<movie:a>``/``<movie:b>``; :func:`build_examples` rewrites each role to the configured
embedding space (``<movie_behavioural>``, ``<movie_behavioural:a>``) and fills the slots with
the entity ids as strings. Targets are computed from the ratings, movies and users only.

Held-out entities. :func:`split_entities` holds out whole movies and whole users. Train
targets are computed from the ratings between train users and train movies only, and name
no eval movie (neighbour and recommendation lists drop them), so nothing about an eval
entity reaches training. Eval targets use every rating: they state the true facts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping

import numpy as np

from elc.data.examples import Example
from elc.projects.movielens.dataset import MovieLens

MOVIE_SPACES = ("movie_behavioural", "movie_semantic")
USER_SPACES = ("user_behavioural",)
# The entity roles each kind of task fills; a role is also the key of build_examples' spaces.
KIND_ROLES = {"movie": ("movie",), "pair": ("movie", "movie"), "user": ("user",),
              "user_movie": ("user", "movie")}
PARTS = ("train", "eval")
# ML-100k stores ages in years; groups as in ML-1m's buckets (whose codes fall in the same
# groups, except that its 50-55 code counts as 45-54).
_AGE_GROUPS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"),
               (math.inf, "55 and over"))
_GENDER_GROUPS = {"M": "men", "F": "women"}
# Public, like POPULARITY: the evaluation parses the phrases the targets are written with.
GENDER_PERSON = {"M": "man", "F": "woman"}
# (minimum share of rated movies with fewer ratings, phrase): a percentile, so the phrase
# means the same on ML-100k and on ml-25m.
POPULARITY = ((0.9, "very popular"), (0.6, "popular"), (0.3, "moderately popular"),
              (0.0, "rarely rated"))
# Ratings >= LIKED_RATING are liked, <= _DISLIKED disliked. Public: the genre CAVs'
# labels count likes with the same threshold.
LIKED_RATING, _DISLIKED = 4.0, 2.0
_LIST_LENGTH = 3  # titles, genres and occupations listed in a target
_ROLE = re.compile(r"<(movie|user)(:[ab])?>")


@dataclasses.dataclass
class TaskData:
    """What target builders read: the dataset and the ratings one part may use.

    Attributes:
      ml: the dataset (movie and user tables).
      movie_ratings: movie id -> {user id: rating}, over the ratings of the part.
      user_ratings: user id -> {movie id: rating}, over the same ratings.
      genre_share: genre -> share of those ratings whose movie has the genre.
      popularity: movie id -> share of rated movies with fewer ratings (0 = least rated).
      neighbours: movie id -> behavioural neighbours, best first; None if not given.
      user_recommendations: user id -> recommended movies, best first; None if not given.
      nameable_movies: movies a target may name (train: train movies only).
    """

    ml: MovieLens
    movie_ratings: dict[int, dict[int, float]]
    user_ratings: dict[int, dict[int, float]]
    genre_share: dict[str, float]
    popularity: dict[int, float]
    neighbours: Mapping[int, list[int]] | None
    user_recommendations: Mapping[int, list[int]] | None
    nameable_movies: Collection[int]


# A target builder gets the entity ids in role order and returns the target, or None when
# the data says nothing about these entities (no ratings, no year, no neighbours given).
TargetBuilder = Callable[[TaskData, tuple[int, ...]], str | None]


@dataclasses.dataclass(frozen=True)
class Task:
    """A task: which entities it asks about, how it may ask, and how its answer is built.

    Attributes:
      name: registry key.
      kind: ``"movie"``, ``"user"``, ``"pair"`` (two movies) or ``"user_movie"``.
      spaces: the embedding spaces its slots may use.
      phrasings: prompts naming each role of ``KIND_ROLES[kind]`` once, as ``<movie>``,
        ``<user>`` or, for pairs, ``<movie:a>`` and ``<movie:b>``.
      target: builds the target from the data.
    """

    name: str
    kind: str
    spaces: tuple[str, ...]
    phrasings: tuple[str, ...]
    target: TargetBuilder

    def check_spaces(self, spaces: Mapping[str, str]) -> None:
        """Raises ValueError unless ``spaces`` gives each role a space this task can use."""
        for role in KIND_ROLES[self.kind]:
            if role not in spaces:
                raise ValueError(f"task {self.name!r} needs a {role} space but spaces has none "
                                 f"(keys {sorted(spaces)}); it can use {list(self.spaces)}")
            if spaces[role] not in self.spaces:
                raise ValueError(f"task {self.name!r} cannot use space {spaces[role]!r} for "
                                 f"its {role}; it can use {list(self.spaces)}")

    def prompts(self, spaces: Mapping[str, str]) -> list[str]:
        """The phrasings with roles written as spaces: ``<movie:a>`` ->
        ``<movie_behavioural:a>``."""
        self.check_spaces(spaces)
        return [_ROLE.sub(lambda m: f"<{spaces[m.group(1)]}{m.group(2) or ''}>", phrasing)
                for phrasing in self.phrasings]

    def slot_keys(self, spaces: Mapping[str, str]) -> list[str]:
        """The slot keys of an example, in role order (the order of the entity ids)."""
        self.check_spaces(spaces)
        if self.kind == "pair":
            return [f"{spaces['movie']}:a", f"{spaces['movie']}:b"]
        return [spaces[role] for role in KIND_ROLES[self.kind]]


TASKS: dict[str, Task] = {}


def register(name: str, kind: str, phrasings: tuple[str, ...]
             ) -> Callable[[TargetBuilder], TargetBuilder]:
    """Decorator adding a task to :data:`TASKS` whose target builder is the decorated
    function; movie and pair tasks can use :data:`MOVIE_SPACES`, user tasks
    :data:`USER_SPACES`, user_movie tasks both."""
    if kind not in KIND_ROLES:
        raise ValueError(f"task {name!r}: kind {kind!r} is not one of {list(KIND_ROLES)}")
    if name in TASKS:
        raise ValueError(f"task {name!r} is already registered")
    spaces = {"movie": MOVIE_SPACES, "pair": MOVIE_SPACES, "user": USER_SPACES,
              "user_movie": USER_SPACES + MOVIE_SPACES}[kind]

    def add(builder: TargetBuilder) -> TargetBuilder:
        TASKS[name] = Task(name, kind, spaces, phrasings, builder)
        return builder

    return add


# ---------------------------------------------------------------- phrases


def _join(items: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _percent(count: int, total: int) -> int:
    # Half up, so 12.5% reads 13% (round() would give the even 12).
    return int(100 * count / total + 0.5)


def _number(rating: float) -> str:
    return f"{rating:g}"  # 5.0 -> "5", ml-20m's half stars 4.5 -> "4.5"


def _title(data: TaskData, movie_id: int) -> str:
    return data.ml.movies[movie_id].full_title


def _genres(data: TaskData, movie_id: int) -> list[str]:
    # ML-100k flags two movies with genre "unknown": that is no genre, not a fact.
    return [g for g in data.ml.movies[movie_id].genres if g != "unknown"]


def _age_group(age: int) -> str:
    return next(label for limit, label in _AGE_GROUPS if age < limit)


def _mean(ratings: dict[int, float]) -> float:
    return sum(ratings.values()) / len(ratings)


def _ranked_shares(counts: Counter, total: int, limit: int) -> list[str]:
    """The ``limit`` largest counts as ``"label (35%)"``, ties by label."""
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [f"{label} ({_percent(count, total)}%)" for label, count in top]


def _audience(data: TaskData, movie_id: int) -> tuple[int, Counter, Counter, Counter] | None:
    """(number of raters with demographics, age groups, gender groups, occupations)."""
    users = data.ml.users
    raters = [users[u] for u in data.movie_ratings.get(movie_id, {}) if u in users]
    if not raters:
        return None
    return (len(raters), Counter(_age_group(u.age) for u in raters),
            Counter(_GENDER_GROUPS.get(u.gender, u.gender) for u in raters),
            Counter(u.occupation for u in raters))


def _reception(data: TaskData, movie_id: int) -> str | None:
    ratings = data.movie_ratings.get(movie_id)
    if not ratings:
        return None
    phrase = next(p for share, p in POPULARITY if data.popularity[movie_id] >= share)
    count = f"{len(ratings)} rating" + ("s" if len(ratings) > 1 else "")
    return f"{phrase.capitalize()}: {count}, averaging {_mean(ratings):.1f} out of 5."


def _listed_movies(data: TaskData, movie_ids: list[int], exclude: int | None = None) -> str | None:
    names = [_title(data, m) for m in movie_ids
             if m != exclude and m in data.nameable_movies and m in data.ml.movies]
    return _join(names[:_LIST_LENGTH]) if names else None


def liked_genres(data: TaskData, user: int) -> list[str]:
    """The genres ``user_profile`` says ``user`` likes: those standing out among the
    movies the user rated >= LIKED_RATING in the part, the most frequent first; [] without likes."""
    liked = sorted(m for m, r in data.user_ratings.get(user, {}).items() if r >= LIKED_RATING)
    return _standout_genres(data, liked) if liked else []


def _standout_genres(data: TaskData, movie_ids: list[int]) -> list[str]:
    """Genres over-represented among ``movie_ids`` (share above their share of all ratings),
    the most frequent first, so one liked Film-Noir among fifty likes does not lead."""
    counts = Counter(g for m in movie_ids for g in _genres(data, m))
    lift = {g: c / len(movie_ids) / data.genre_share[g] for g, c in counts.items()}
    over = sorted((g for g in counts if lift[g] > 1), key=lambda g: (-counts[g], -lift[g], g))
    return over[:_LIST_LENGTH]


# ---------------------------------------------------------------- movie tasks


@register("movie_identity", "movie", (
    "What movie is <movie>?",
    "Name the movie <movie> and its release year.",
    "<movie> is the embedding of which film?",
))
def movie_identity(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """Title and year: ``"Toy Story (1995)"``."""
    return _title(data, ids[0])


@register("movie_genres", "movie", (
    "What are the genres of <movie>?",
    "List the genres of the movie <movie>.",
    "Which genres does <movie> belong to?",
))
def movie_genres(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """``"Animation, Children's and Comedy"``; skipped for a movie without genres."""
    genres = _genres(data, ids[0])
    return _join(genres) if genres else None


@register("movie_era", "movie", (
    "In which decade was <movie> released?",
    "What era is the movie <movie> from?",
    "When did <movie> come out? Answer with the decade.",
))
def movie_era(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """The release decade, ``"the 1990s"``; skipped without a year."""
    year = data.ml.movies[ids[0]].year
    return None if year is None else f"the {year // 10 * 10}s"


@register("movie_audience", "movie", (
    "Who watches <movie>?",
    "Describe the audience that rates the movie <movie>.",
    "What kind of viewers rate <movie>?",
))
def movie_audience(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """Age groups, gender and top occupations of its raters, in whole percent."""
    audience = _audience(data, ids[0])
    if audience is None:
        return None
    total, ages, genders, occupations = audience
    return (f"Rated by {total} users. Ages: {_join(_ranked_shares(ages, total, _LIST_LENGTH))}."
            f" Gender: {_join(_ranked_shares(genders, total, len(genders)))}."
            f" Top occupations: {_join(_ranked_shares(occupations, total, _LIST_LENGTH))}.")


@register("movie_reception", "movie", (
    "How was <movie> received?",
    "How popular is the movie <movie>, and how well rated?",
    "Describe the reception of <movie>.",
))
def movie_reception(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """``"Very popular: 452 ratings, averaging 3.9 out of 5."``; skipped if unrated."""
    return _reception(data, ids[0])


@register("movie_similar", "movie", (
    "Name movies similar to <movie>.",
    "Which films are watched by the same people as <movie>?",
    "If you liked <movie>, what else would you watch?",
))
def movie_similar(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """The top 3 nameable behavioural neighbours; skipped without ``neighbours``."""
    if data.neighbours is None or ids[0] not in data.neighbours:
        return None
    return _listed_movies(data, list(data.neighbours[ids[0]]), exclude=ids[0])


@register("movie_summary", "movie", (
    "Describe <movie> in one paragraph.",
    "Summarize the movie <movie>.",
    "Tell me about <movie>.",
))
def movie_summary(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """Identity, genres, the largest audience groups and reception in one paragraph."""
    movie_id = ids[0]
    genres = _genres(data, movie_id)
    parts = [f"{_title(data, movie_id)}" + (f": {_join(genres)}." if genres else ".")]
    audience = _audience(data, movie_id)
    if audience is not None:
        total, ages, genders, occupations = audience
        parts.append(f"Largest audience groups among its {total} raters: age"
                     f" {_ranked_shares(ages, total, 1)[0]},"
                     f" {_ranked_shares(genders, total, 1)[0]}, occupation"
                     f" {_ranked_shares(occupations, total, 1)[0]}.")
    reception = _reception(data, movie_id)
    if reception is not None:
        parts.append(reception)
    return " ".join(parts)


@register("movie_compare", "pair", (
    "Compare <movie:a> with <movie:b>.",
    "How do the movies <movie:a> and <movie:b> differ?",
    "<movie:a> versus <movie:b>: genres, popularity and ratings?",
))
def movie_compare(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """Shared and own genres, then which is more rated and which better rated (to the
    printed decimal, so a tie reads as one); skipped unless both movies are rated."""
    a, b = ids
    ratings_a, ratings_b = data.movie_ratings.get(a), data.movie_ratings.get(b)
    if not ratings_a or not ratings_b:
        return None
    title_a, title_b = _title(data, a), _title(data, b)
    genres_a, genres_b = _genres(data, a), _genres(data, b)
    shared = [g for g in genres_a if g in genres_b]
    only_a = [g for g in genres_a if g not in genres_b]
    only_b = [g for g in genres_b if g not in genres_a]
    parts = [f"Both are {_join(shared)}." if shared else "They share no genre."]
    parts += [f"Only {title} is {_join(own)}." for title, own in
              ((title_a, only_a), (title_b, only_b)) if own]
    count_a, count_b = len(ratings_a), len(ratings_b)
    if count_a == count_b:
        parts.append(f"Both have {count_a} ratings.")
    else:
        more = title_a if count_a > count_b else title_b
        parts.append(f"{more} is more popular ({max(count_a, count_b)} vs "
                     f"{min(count_a, count_b)} ratings).")
    mean_a, mean_b = f"{_mean(ratings_a):.1f}", f"{_mean(ratings_b):.1f}"
    if mean_a == mean_b:
        parts.append(f"Both average {mean_a} out of 5.")
    else:
        better, high, low = ((title_a, mean_a, mean_b) if float(mean_a) > float(mean_b)
                             else (title_b, mean_b, mean_a))
        parts.append(f"{better} is better rated ({high} vs {low}).")
    return " ".join(parts)


# ---------------------------------------------------------------- user tasks


@register("user_profile", "user", (
    "Describe the movie taste of <user>.",
    "What does the viewer <user> like and dislike?",
    "Summarize the preferences of <user>.",
))
def user_profile(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """Liked and disliked genres, favourite titles and rating habits; skipped if the user
    rated nothing in the part."""
    ratings = data.user_ratings.get(ids[0])
    if not ratings:
        return None
    liked = sorted(m for m, r in ratings.items() if r >= LIKED_RATING)
    disliked = sorted(m for m, r in ratings.items() if r <= _DISLIKED)
    parts = []
    likes = liked_genres(data, ids[0])
    # A genre both over-represented among likes and dislikes reads as a contradiction;
    # it stays a like.
    dislikes = [g for g in (_standout_genres(data, disliked) if disliked else [])
                if g not in likes]
    for verb, genres in (("Likes", likes), ("Dislikes", dislikes)):
        if genres:
            parts.append(f"{verb} {_join(genres)}.")
    # Among equal ratings the better-known movies make more telling favourites.
    favourites = sorted(liked, key=lambda m: (-ratings[m], -len(data.movie_ratings[m]), m))
    named = _listed_movies(data, favourites)
    if named:
        parts.append(f"Favourites: {named}.")
    count = f"{len(ratings)} movie" + ("s" if len(ratings) > 1 else "")
    parts.append(f"Rated {count}, {_mean(ratings):.1f} out of 5 on average.")
    return " ".join(parts)


@register("user_demographics", "user", (
    "Who is <user>?",
    "Describe the age, gender and occupation of <user>.",
    "What do we know about the viewer <user>?",
))
def user_demographics(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """``"A 24-year-old man; occupation: technician."``; skipped for users without
    demographics. ML-1m ages are its bucket codes, written as they are."""
    if ids[0] not in data.ml.users:
        return None
    user = data.ml.users[ids[0]]
    person = GENDER_PERSON.get(user.gender, f"person of gender {user.gender}")
    return f"A {user.age}-year-old {person}; occupation: {user.occupation}."


@register("user_recommendations", "user", (
    "Recommend movies to <user>.",
    "What should the viewer <user> watch next?",
    "Which films would <user> enjoy?",
))
def user_recommendations(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """The top 3 nameable recommendations; skipped without ``user_recommendations``."""
    if data.user_recommendations is None or ids[0] not in data.user_recommendations:
        return None
    return _listed_movies(data, list(data.user_recommendations[ids[0]]))


@register("user_enjoys_movie", "user_movie", (
    "Would <user> enjoy <movie>?",
    "Does the viewer <user> like the movie <movie>?",
    "Will <movie> please <user>?",
))
def user_enjoys_movie(data: TaskData, ids: tuple[int, ...]) -> str | None:
    """``"Yes: they rated it 5 out of 5."`` (>= 4) or ``"No: ..."`` (<= 2); a 3 is
    neither, so skipped."""
    rating = data.user_ratings.get(ids[0], {}).get(ids[1])
    if rating is None or _DISLIKED < rating < LIKED_RATING:
        return None
    answer = "Yes" if rating >= LIKED_RATING else "No"
    return f"{answer}: they rated it {_number(rating)} out of 5."


# ---------------------------------------------------------------- splits


@dataclasses.dataclass(frozen=True)
class EntitySplit:
    """Disjoint train/eval sets of movie ids and of user ids."""

    train_movies: frozenset[int]
    eval_movies: frozenset[int]
    train_users: frozenset[int]
    eval_users: frozenset[int]


def _all_users(ml: MovieLens) -> list[int]:
    # ml-20m and later have no user table; their users are the raters.
    return sorted(ml.users.by_id) or sorted(set(ml.ratings.user_ids.tolist()))


def _hold_out(ids: list[int], fraction: float, rng: np.random.Generator, what: str
              ) -> tuple[frozenset[int], frozenset[int]]:
    if not 0 < fraction < 1:
        raise ValueError(f"{what}_fraction must be in (0, 1), got {fraction}")
    if len(ids) < 2:
        raise ValueError(f"cannot hold out {what}s: the dataset has {len(ids)} {what}(s), "
                         "expected at least 2")
    count = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    held = frozenset(int(i) for i in rng.choice(ids, size=count, replace=False))
    return frozenset(ids) - held, held


def split_entities(ml: MovieLens, movie_fraction: float = 0.1, user_fraction: float = 0.1,
                   seed: int = 0) -> EntitySplit:
    """Holds out whole movies and whole users, deterministically given ``seed``.

    At least ``fraction`` of each (rounded up, at least one) goes to eval, and at least one
    stays in train.
    """
    rng = np.random.default_rng(seed)
    train_movies, eval_movies = _hold_out(sorted(ml.movies.by_id), movie_fraction, rng, "movie")
    train_users, eval_users = _hold_out(_all_users(ml), user_fraction, rng, "user")
    return EntitySplit(train_movies, eval_movies, train_users, eval_users)


# ---------------------------------------------------------------- examples


def task_data(ml: MovieLens, split: EntitySplit, part: str,
              neighbours: Mapping[int, list[int]] | None = None,
              user_recommendations: Mapping[int, list[int]] | None = None) -> TaskData:
    """The data the targets of ``part`` are built from: for ``"train"`` the ratings between
    train users and train movies, naming train movies only; for ``"eval"`` everything."""
    users, items, values = (a.tolist() for a in (ml.ratings.user_ids, ml.ratings.item_ids,
                                                 ml.ratings.ratings))
    keep = [True] * len(users)
    if part == "train":
        keep = [u in split.train_users and i in split.train_movies for u, i in zip(users, items)]
    movie_ratings: dict[int, dict[int, float]] = {}
    user_ratings: dict[int, dict[int, float]] = {}
    genre_counts: Counter = Counter()
    for user, item, value, kept in zip(users, items, values, keep):
        if kept:
            movie_ratings.setdefault(item, {})[user] = value
            user_ratings.setdefault(user, {})[item] = value
    total = sum(len(r) for r in movie_ratings.values())
    for item, ratings in movie_ratings.items():
        for genre in ml.movies[item].genres:
            genre_counts[genre] += len(ratings)
    counts = np.array(sorted(len(r) for r in movie_ratings.values()))
    popularity = {item: float(np.searchsorted(counts, len(r))) / len(counts)
                  for item, r in movie_ratings.items()}
    nameable = split.train_movies if part == "train" else ml.movies.by_id
    return TaskData(ml, movie_ratings, user_ratings,
                    {g: c / total for g, c in genre_counts.items()}, popularity, neighbours,
                    user_recommendations, nameable)


def _entity_tuples(task: Task, data: TaskData, movies: list[int], users: list[int],
                   count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``count`` entity tuples per entity of the part (fewer where fewer exist)."""
    if task.kind == "movie":
        return [(m,) for m in movies for _ in range(count)]
    if task.kind == "user":
        return [(u,) for u in users for _ in range(count)]
    if task.kind == "pair":
        tuples = []
        for index, movie in enumerate(movies):
            others = movies[:index] + movies[index + 1:]
            picks = rng.choice(len(others), size=min(count, len(others)), replace=False)
            tuples += [(movie, others[p]) for p in picks]
        return tuples
    # user_movie: only ratings that say yes or no.
    in_part = set(movies)
    tuples = []
    for user in users:
        rated = data.user_ratings.get(user, {})
        candidates = sorted(m for m, r in rated.items()
                            if m in in_part and (r >= LIKED_RATING or r <= _DISLIKED))
        picks = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
        tuples += [(user, candidates[p]) for p in sorted(picks)]
    return tuples


def build_examples(ml: MovieLens, *, tasks: list[str], spaces: Mapping[str, str],
                   split: EntitySplit, part: str, seed: int,
                   neighbours: Mapping[int, list[int]] | None = None,
                   user_recommendations: Mapping[int, list[int]] | None = None,
                   examples_per_entity: int = 1,
                   weights: Mapping[str, float] | None = None) -> list[Example]:
    """Examples of ``tasks`` for the movies and users of one part of ``split``.

    Args:
      ml: the dataset.
      tasks: names in :data:`TASKS`.
      spaces: role -> embedding space, e.g. ``{"movie": "movie_behavioural",
        "user": "user_behavioural"}``; every task must be able to use its roles' spaces.
      split: the held-out entities.
      part: ``"train"`` or ``"eval"``; slots only hold entities of this part.
      seed: seeds phrasings, pairs and subsampling; equal seeds give equal examples.
      neighbours: movie -> behavioural neighbours for ``movie_similar`` (skipped if None).
      user_recommendations: user -> movies for ``user_recommendations`` (skipped if None).
      examples_per_entity: examples per movie/user; pair and user_movie tasks draw this many
        distinct partners.
      weights: task -> fraction of its examples kept, in [0, 1] (absent: 1, all).

    Returns:
      Examples grouped by task in ``tasks`` order. Entities the data says nothing about
      for a task (no ratings, no year, no neighbours) give no example for it.
    """
    unknown = [name for name in tasks if name not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known tasks: {sorted(TASKS)}")
    if part not in PARTS:
        raise ValueError(f"part {part!r} is not one of {PARTS}")
    if examples_per_entity < 1:
        raise ValueError(f"examples_per_entity must be >= 1, got {examples_per_entity}")
    weights = dict(weights or {})
    bad = {name: w for name, w in weights.items() if name not in tasks or not 0 <= w <= 1}
    if bad:
        raise ValueError(f"weights {bad} must be fractions in [0, 1] of tasks in {tasks}")
    for name in tasks:
        TASKS[name].check_spaces(spaces)
    movie_ids = split.train_movies if part == "train" else split.eval_movies
    user_ids = split.train_users if part == "train" else split.eval_users
    movies = sorted(m for m in movie_ids if m in ml.movies)
    users = sorted(user_ids)
    if not movies or not users:
        raise ValueError(f"the {part} part of the split is empty: {len(movies)} known movies, "
                         f"{len(users)} users; expected at least one of each")
    data = task_data(ml, split, part, neighbours, user_recommendations)

    examples = []
    for name in tasks:
        task = TASKS[name]
        # One stream per task name, so adding a task leaves the others' examples unchanged.
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        prompts, keys = task.prompts(spaces), task.slot_keys(spaces)
        built = []
        for ids in _entity_tuples(task, data, movies, users, examples_per_entity, rng):
            prompt = prompts[rng.integers(len(prompts))]
            target = task.target(data, ids)
            if target is not None:
                built.append(Example(prompt, target, dict(zip(keys, map(str, ids))), task=name))
        weight = weights.get(name, 1.0)
        if weight < 1:
            kept = rng.choice(len(built), size=round(weight * len(built)), replace=False)
            built = [built[i] for i in sorted(kept)]
        examples += built
    return examples
