"""MovieLens ratings, movies and users as plain numpy/stdlib tables.

Three sources give the same tables (``load_movielens``):

* ``"recbole"`` (offline default): the ML-100k atomic files shipped in the ``recbole``
  wheel (``recbole/dataset_example/ml-100k/ml-100k.{inter,item,user}``). recbole is only
  located on disk, never imported: it is installed with ``--no-deps``, without torch.
* ``"grouplens"``: a directory as unpacked from files.grouplens.org, in ml-100k format
  (``u.data``, ``u.item``, ``u.user``), ml-1m/ml-10m format (``ratings.dat``,
  ``movies.dat``, optional ``users.dat``; ``::`` separated) or ml-20m/25m/32m/latest format
  (``ratings.csv``, ``movies.csv``; no users; ``genome-scores.csv`` + ``genome-tags.csv``
  read into ``tag_genome`` when both exist). The format is detected from the files present.
* ``"tfds"``: the ``movielens/<variant>-ratings`` and ``-movies`` TFDS datasets, which must
  already be prepared in the given data dir (nothing is downloaded).

Bad-input policy. Whole-dataset problems raise: a missing required file is a
``FileNotFoundError``; an unreadable header (a typed or CSV header lacking a needed
column) is a ``ValueError`` naming the file, line, header and the expected columns.
Row-level problems are counted in ``MovieLens.report``, logged once per category and
file with an absl warning quoting the first offending line, and skipped:

* ``malformed_rating`` / ``malformed_movie`` / ``malformed_user``: wrong field count or a
  non-numeric id, rating, timestamp or age.
* ``out_of_scale_rating``: a rating outside the dataset's scale (``WHOLE_STARS``, 1 to 5,
  for ML-100k and ML-1m; ``HALF_STARS``, 0.5 to 5, for the later datasets); ALS fed such a
  value (a typo like 40, or 1e12) is skewed or overflows.
* ``unknown_user`` / ``unknown_item``: a rating whose user (when the dataset has users)
  or movie is not in the user/movie table. Checked after the scale, in that order; a row
  is counted once.
* ``duplicate_rating``: a repeated (user, item) pair; the latest timestamp is kept (on a
  tie, the later line).
* ``no_genres``: a movie with no genre (empty, ``(no genres listed)`` or all ML-100k
  genre flags 0). The movie is kept with ``genres=()``; only counted.

Years come from the title, ``"Toy Story (1995)"`` -> ``("Toy Story", 1995)`` (the last
parenthesised year, so ``"Title (a.k.a. X) (1995)"`` keeps its a.k.a. part), falling back
to ML-100k's release date; recbole's file has a ``release_year`` column instead. A movie
without a readable year gets ``year=None``.
"""

from __future__ import annotations

import array
import csv
import dataclasses
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np
from absl import logging

from elc.text_files import open_text

SOURCES = ("recbole", "grouplens", "tfds")
REPORT_KEYS = ("malformed_rating", "malformed_movie", "malformed_user", "out_of_scale_rating",
               "unknown_user", "unknown_item", "duplicate_rating", "no_genres")
# (lowest, highest) rating of each dataset: ML-100k and ML-1m rate in whole stars, ML-10m
# and the later ones in half stars (their READMEs).
WHOLE_STARS, HALF_STARS = (1.0, 5.0), (0.5, 5.0)

# The 19 genre flags of ML-100k's u.item, in column order (as in its u.genre file).
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                 "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                 "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
# ML-1m's users.dat stores occupations as codes; names from the ML-1m README.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
_NO_GENRES = "(no genres listed)"
# A trailing "(1995)" or a series' "(1994-1998)" / "(2007-)", then optional spaces.
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
_INT64_LIMIT = 2**63


@dataclasses.dataclass
class Ratings:
    """One rating per row, in file order after skipping bad rows and duplicates."""

    user_ids: np.ndarray  # int64[N]
    item_ids: np.ndarray  # int64[N]
    ratings: np.ndarray  # float32[N]
    timestamps: np.ndarray  # int64[N], seconds since the epoch

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclasses.dataclass(frozen=True)
class Movie:
    """A movie: title without the year, release year (None if unknown) and genres."""

    title: str
    year: int | None
    genres: tuple[str, ...]

    @property
    def full_title(self) -> str:
        """``"Toy Story (1995)"``, or the bare title when the year is unknown."""
        return self.title if self.year is None else f"{self.title} ({self.year})"


_Entity = TypeVar("_Entity")


@dataclasses.dataclass
class _ById(Generic[_Entity]):
    """Entities by integer id, with len, [] and ``in``."""

    by_id: dict[int, _Entity]

    def __len__(self) -> int:
        return len(self.by_id)

    def __getitem__(self, entity_id: int) -> _Entity:
        return self.by_id[entity_id]

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self.by_id


class Movies(_ById[Movie]):
    """Movies by item id."""


@dataclasses.dataclass(frozen=True)
class User:
    """A user's demographics. ML-1m ages are its bucket codes (1, 18, 25, 35, 45, 50, 56)."""

    age: int
    gender: str
    occupation: str


class Users(_ById[User]):
    """Users by user id; empty for datasets without user files (ml-20m and later)."""


@dataclasses.dataclass
class TagGenome:
    """Tag relevance per movie: ``relevance[i, j]`` of ``tags[j]`` for ``item_ids[i]``.

    Cells absent from genome-scores.csv are NaN.
    """

    item_ids: np.ndarray  # int64[M], ascending
    tags: tuple[str, ...]  # T names, ordered by tag id
    relevance: np.ndarray  # float32[M, T]


@dataclasses.dataclass
class MovieLens:
    """A loaded MovieLens dataset, with the counts of skipped rows in ``report``."""

    ratings: Ratings
    movies: Movies
    users: Users
    source: str
    report: dict[str, int]
    tag_genome: TagGenome | None = None

    def summary(self) -> str:
        """One line: table sizes, then every report count."""
        counts = ", ".join(f"{key} {value}" for key, value in self.report.items())
        return (f"MovieLens from {self.source}: {len(self.users)} users, {len(self.movies)} "
                f"movies, {len(self.ratings)} ratings; skipped/flagged: {counts}")


def load_movielens(source: str = "recbole", path: str = "") -> MovieLens:
    """Loads MovieLens from ``source`` (see the module docstring for the sources).

    Args:
      source: ``"recbole"``, ``"grouplens"`` or ``"tfds"``.
      path: ignored for recbole; the unpacked GroupLens directory; the TFDS data dir
        (empty: TFDS's default), where ``movielens/100k-*`` must already be prepared.

    Returns:
      The tables and the report of skipped rows.

    Raises:
      ValueError: unknown source, or a file whose header lacks a needed column.
      FileNotFoundError: recbole not installed, or required files/datasets missing.
    """
    if source == "recbole":
        return load_recbole()
    if source == "grouplens":
        return load_grouplens(path)
    if source == "tfds":
        return load_tfds(path)
    raise ValueError(f"load_movielens: source {source!r} is not one of {SOURCES}")


# ---------------------------------------------------------------- shared helpers


class _Reporter:
    """Counts skipped rows per category and warns once per category and file."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(REPORT_KEYS, 0)
        self._first: dict[tuple[str, str], str] = {}

    def skip(self, key: str, file: str, line: int, detail: str) -> None:
        self.counts[key] += 1
        self._first.setdefault((key, file), f"line {line}: {detail}")

    def warn(self) -> None:
        for (key, file), first in self._first.items():
            logging.warning("MovieLens %s: %s; first at %s", file, key, first)


def _require(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MovieLens: required file {path} is missing")
    return path


def _delimited(path: str, sep: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) of the non-blank lines of a file split on ``sep``."""
    with open_text(path, encoding, newline="") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if line:
                yield number, line.split(sep)


def _columns(path: str, header: list[str], needed: tuple[str, ...],
             strip_types: bool = False) -> dict[str, int]:
    """Column index of each needed name in a header row; raises if one is missing."""
    # recbole headers are "name:type"; only the name identifies the column.
    names = [h.split(":", 1)[0].strip() if strip_types else h.strip() for h in header]
    missing = [n for n in needed if n not in names]
    if missing:
        raise ValueError(f"MovieLens: {path} line 1: header {header} lacks columns {missing}; "
                         f"expected columns {list(needed)}")
    return {n: names.index(n) for n in needed}


def _timestamp(text: str) -> int:
    # recbole types timestamps as float; the values are whole seconds.
    try:
        return int(text)
    except ValueError:
        return int(float(text))


def split_title_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; no trailing year -> year None."""
    match = _TITLE_YEAR.match(title)
    if match is None:
        return title.strip(), None
    return match.group(1), int(match.group(2))


def _parse_year(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _movie(reporter: _Reporter, path: str, line: int, title: str, year: int | None,
           genres: tuple[str, ...]) -> Movie:
    if not genres:
        reporter.skip("no_genres", path, line, f"movie {title!r} has no genres")
    return Movie(title, year, genres)


@dataclasses.dataclass
class _RawRatings:
    """Parsed rating rows of one file (or TFDS dataset), before joins and de-duplication."""

    file: str
    user_ids: np.ndarray  # int64
    item_ids: np.ndarray  # int64
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64
    lines: np.ndarray  # int64, 1-based line (TFDS: 0-based record index) of each row


def _finish(raw: _RawRatings, movies: dict[int, Movie], users: dict[int, User],
            check_users: bool, reporter: _Reporter, source: str, scale: tuple[float, float],
            tag_genome: TagGenome | None = None) -> MovieLens:
    """Drops ratings outside ``scale`` (lowest, highest), unjoinable and duplicate ratings
    and builds the MovieLens object."""
    low, high = scale
    in_scale = (raw.ratings >= low) & (raw.ratings <= high)
    for index in np.flatnonzero(~in_scale):
        reporter.skip("out_of_scale_rating", raw.file, raw.lines[index],
                      f"rating {raw.ratings[index]:g} is outside the scale {low:g} to {high:g}")
    known_user = np.isin(raw.user_ids, np.fromiter(users, np.int64, len(users)))
    if not check_users:
        known_user[:] = True
    known_user &= in_scale  # a row out of scale is counted as that alone
    known_item = np.isin(raw.item_ids, np.fromiter(movies, np.int64, len(movies)))
    for index in np.flatnonzero(in_scale & ~known_user):
        reporter.skip("unknown_user", raw.file, raw.lines[index],
                      f"user {raw.user_ids[index]} is not in the user table")
    for index in np.flatnonzero(known_user & ~known_item):
        reporter.skip("unknown_item", raw.file, raw.lines[index],
                      f"item {raw.item_ids[index]} is not in the movie table")
    joined = np.flatnonzero(known_user & known_item)
    user_ids, item_ids = raw.user_ids[joined], raw.item_ids[joined]
    timestamps = raw.timestamps[joined]
    # Stable sort by (user, item, timestamp): the last row of each pair is the latest
    # rating, and the later line on a timestamp tie.
    order = np.lexsort((timestamps, item_ids, user_ids))
    pair_user, pair_item = user_ids[order], item_ids[order]
    is_last = np.ones(len(order), bool)
    is_last[:-1] = (pair_user[:-1] != pair_user[1:]) | (pair_item[:-1] != pair_item[1:])
    for index in order[~is_last]:
        reporter.skip("duplicate_rating", raw.file, raw.lines[joined[index]],
                      f"(user {user_ids[index]}, item {item_ids[index]}) rated again later")
    keep = joined[np.sort(order[is_last])]
    reporter.warn()
    ratings = Ratings(raw.user_ids[keep], raw.item_ids[keep], raw.ratings[keep],
                      raw.timestamps[keep])
    return MovieLens(ratings=ratings, movies=Movies(movies), users=Users(users), source=source,
                     report=reporter.counts, tag_genome=tag_genome)


def _rating_rows(lines: Iterable[tuple[int, list[str]]], path: str, columns: tuple[int, ...],
                 width: int, reporter: _Reporter) -> _RawRatings:
    """Parses rating lines whose user, item, rating, timestamp sit at ``columns``."""
    # Typed arrays rather than lists of tuples: ml-25m has 25M rows.
    users, items, times, numbers = (array.array("q") for _ in range(4))
    values = array.array("d")
    user_col, item_col, rating_col, time_col = columns
    for line, fields in lines:
        try:
            if len(fields) != width:
                raise ValueError(f"{len(fields)} fields, expected {width}")
            user, item = int(fields[user_col]), int(fields[item_col])
            rating, timestamp = float(fields[rating_col]), _timestamp(fields[time_col])
            if not np.isfinite(rating):
                raise ValueError(f"rating {fields[rating_col]!r} is not finite")
            if max(abs(user), abs(item), abs(timestamp)) >= _INT64_LIMIT:
                raise ValueError("id or timestamp does not fit in int64")
        except (ValueError, OverflowError) as error:
            reporter.skip("malformed_rating", path, line, f"{fields}: {error}")
            continue
        users.append(user)
        items.append(item)
        values.append(rating)
        times.append(timestamp)
        numbers.append(line)
    return _RawRatings(path, np.array(users, np.int64), np.array(items, np.int64),
                       np.array(values, np.float32), np.array(times, np.int64),
                       np.array(numbers, np.int64))


_Lines = Iterator[tuple[int, list[str]]]


def _header_and_rows(path: str, sep: str, encoding: str,
                     reader: Callable[[str], _Lines] | None = None) -> tuple[list[str], _Lines]:
    """The header fields and an iterator over the remaining (line number, fields)."""
    lines = reader(path) if reader else _delimited(path, sep, encoding)
    first = next(lines, None)
    if first is None:
        raise ValueError(f"MovieLens: {path} line 1: empty file, expected a header row")
    return first[1], lines


# ---------------------------------------------------------------- recbole


def recbole_ml100k_dir() -> str:
    """The directory of the ML-100k atomic files in the installed recbole wheel.

    Raises:
      FileNotFoundError: recbole is not installed or lacks the example files.
    """
    # find_spec locates the package without importing it (its torch dependency is absent).
    spec = importlib.util.find_spec("recbole")
    for root in (spec.submodule_search_locations or []) if spec else []:
        directory = os.path.join(root, "dataset_example", "ml-100k")
        if os.path.isfile(os.path.join(directory, "ml-100k.inter")):
            return directory
    raise FileNotFoundError("MovieLens: recbole/dataset_example/ml-100k/ml-100k.inter not found; "
                            "install it with `pip install --no-deps recbole==1.2.1`")


def load_recbole(directory: str = "") -> MovieLens:
    """Loads ML-100k from recbole atomic files (default: the installed recbole wheel's)."""
    directory = directory or recbole_ml100k_dir()
    reporter = _Reporter()
    inter, item, user = (_require(directory, f"ml-100k.{ext}") for ext in ("inter", "item", "user"))

    header, lines = _header_and_rows(user, "\t", "utf-8")
    col = _columns(user, header, ("user_id", "age", "gender", "occupation"), strip_types=True)
    users = {}
    for line, fields in lines:
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, expected {len(header)}")
            users[int(fields[col["user_id"]])] = User(
                int(fields[col["age"]]), fields[col["gender"]], fields[col["occupation"]])
        except ValueError as error:
            reporter.skip("malformed_user", user, line, f"{fields}: {error}")

    header, lines = _header_and_rows(item, "\t", "utf-8")
    col = _columns(item, header, ("item_id", "movie_title", "release_year", "class"),
                   strip_types=True)
    movies = {}
    for line, fields in lines:
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, expected {len(header)}")
            movies[int(fields[col["item_id"]])] = _movie(
                reporter, item, line, fields[col["movie_title"]],
                _parse_year(fields[col["release_year"]]), tuple(fields[col["class"]].split()))
        except ValueError as error:
            reporter.skip("malformed_movie", item, line, f"{fields}: {error}")

    header, lines = _header_and_rows(inter, "\t", "utf-8")
    col = _columns(inter, header, ("user_id", "item_id", "rating", "timestamp"),
                   strip_types=True)
    raw = _rating_rows(lines, inter, (col["user_id"], col["item_id"], col["rating"],
                                      col["timestamp"]), len(header), reporter)
    return _finish(raw, movies, users, True, reporter, "recbole", WHOLE_STARS)


# ---------------------------------------------------------------- GroupLens


def load_grouplens(directory: str) -> MovieLens:
    """Loads an unpacked GroupLens MovieLens directory, detecting its format.

    Raises:
      FileNotFoundError: the directory holds none of u.data, ratings.dat, ratings.csv, or
        lacks a file its format requires.
    """
    if os.path.isfile(os.path.join(directory, "u.data")):
        return _load_100k(directory)
    if os.path.isfile(os.path.join(directory, "ratings.dat")):
        return _load_dat(directory)
    if os.path.isfile(os.path.join(directory, "ratings.csv")):
        return _load_csv(directory)
    raise FileNotFoundError(f"MovieLens: {directory!r} holds none of u.data (ml-100k), "
                            "ratings.dat (ml-1m/10m) or ratings.csv (ml-20m and later)")


def _load_100k(directory: str) -> MovieLens:
    reporter = _Reporter()
    data, item, user = (_require(directory, name) for name in ("u.data", "u.item", "u.user"))
    users = {}
    for line, fields in _delimited(user, "|", "latin-1"):
        try:
            if len(fields) != 5:
                raise ValueError(f"{len(fields)} fields, expected 5 (id|age|gender|occupation|zip)")
            users[int(fields[0])] = User(int(fields[1]), fields[2], fields[3])
        except ValueError as error:
            reporter.skip("malformed_user", user, line, f"{fields}: {error}")
    movies = {}
    width = 5 + len(ML100K_GENRES)
    for line, fields in _delimited(item, "|", "latin-1"):
        try:
            if len(fields) != width:
                raise ValueError(f"{len(fields)} fields, expected {width}")
            flags = fields[5:]
            if any(flag not in ("0", "1") for flag in flags):
                raise ValueError(f"genre flags {flags} are not all 0/1")
            title, year = split_title_year(fields[1])
            if year is None:  # release date is "01-Jan-1995"
                year = _parse_year(fields[2][-4:])
            genres = tuple(g for g, flag in zip(ML100K_GENRES, flags) if flag == "1")
            movies[int(fields[0])] = _movie(reporter, item, line, title, year, genres)
        except ValueError as error:
            reporter.skip("malformed_movie", item, line, f"{fields}: {error}")
    raw = _rating_rows(_delimited(data, "\t", "latin-1"), data, (0, 1, 2, 3), 4, reporter)
    return _finish(raw, movies, users, True, reporter, "grouplens:ml-100k", WHOLE_STARS)


def _load_dat(directory: str) -> MovieLens:
    reporter = _Reporter()
    ratings, movie_file = _require(directory, "ratings.dat"), _require(directory, "movies.dat")
    user_file = os.path.join(directory, "users.dat")  # ml-10m has none
    users = {}
    if os.path.isfile(user_file):
        for line, fields in _delimited(user_file, "::", "latin-1"):
            try:
                if len(fields) != 5:
                    raise ValueError(f"{len(fields)} fields, expected 5 "
                                     "(UserID::Gender::Age::Occupation::Zip-code)")
                code = int(fields[3])
                if not 0 <= code < len(ML1M_OCCUPATIONS):
                    raise ValueError(f"occupation code {code} not in [0, {len(ML1M_OCCUPATIONS)})")
                users[int(fields[0])] = User(int(fields[2]), fields[1], ML1M_OCCUPATIONS[code])
            except ValueError as error:
                reporter.skip("malformed_user", user_file, line, f"{fields}: {error}")
    movies = {}
    for line, fields in _delimited(movie_file, "::", "latin-1"):
        try:
            if len(fields) != 3:
                raise ValueError(f"{len(fields)} fields, expected 3 (MovieID::Title::Genres)")
            movies[int(fields[0])] = _movie(reporter, movie_file, line,
                                            *split_title_year(fields[1]), _genres(fields[2]))
        except ValueError as error:
            reporter.skip("malformed_movie", movie_file, line, f"{fields}: {error}")
    raw = _rating_rows(_delimited(ratings, "::", "latin-1"), ratings, (0, 1, 2, 3), 4, reporter)
    # ML-1m has users.dat and whole stars; ML-10m neither.
    return _finish(raw, movies, users, bool(users), reporter, "grouplens:ml-1m",
                   WHOLE_STARS if os.path.isfile(user_file) else HALF_STARS)


def _genres(text: str) -> tuple[str, ...]:
    text = text.strip()
    return () if text in ("", _NO_GENRES) else tuple(text.split("|"))


def _csv_lines(path: str) -> Iterator[tuple[int, list[str]]]:
    # csv handles the quoted titles with commas; line numbers are physical lines.
    with open_text(path, newline="") as f:
        reader = csv.reader(f)
        for fields in reader:
            if fields:
                yield reader.line_num, fields


def _load_csv(directory: str) -> MovieLens:
    reporter = _Reporter()
    ratings, movie_file = _require(directory, "ratings.csv"), _require(directory, "movies.csv")
    header, lines = _header_and_rows(movie_file, ",", "utf-8", _csv_lines)
    col = _columns(movie_file, header, ("movieId", "title", "genres"))
    movies = {}
    for line, fields in lines:
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, expected {len(header)}")
            movies[int(fields[col["movieId"]])] = _movie(
                reporter, movie_file, line, *split_title_year(fields[col["title"]]),
                _genres(fields[col["genres"]]))
        except ValueError as error:
            reporter.skip("malformed_movie", movie_file, line, f"{fields}: {error}")
    header, lines = _header_and_rows(ratings, ",", "utf-8", _csv_lines)
    col = _columns(ratings, header, ("userId", "movieId", "rating", "timestamp"))
    raw = _rating_rows(lines, ratings, (col["userId"], col["movieId"], col["rating"],
                                        col["timestamp"]), len(header), reporter)
    scores, tags = (os.path.join(directory, n) for n in ("genome-scores.csv", "genome-tags.csv"))
    genome = _tag_genome(scores, tags) if os.path.isfile(scores) and os.path.isfile(tags) else None
    return _finish(raw, movies, {}, False, reporter, "grouplens:ml-csv", HALF_STARS, genome)


def _tag_genome(scores: str, tags: str) -> TagGenome:
    """Reads the tag genome; it is machine-generated, so any bad row raises."""
    header, lines = _header_and_rows(tags, ",", "utf-8", _csv_lines)
    col = _columns(tags, header, ("tagId", "tag"))
    names = {}
    for line, fields in lines:
        try:
            names[int(fields[col["tagId"]])] = fields[col["tag"]]
        except (ValueError, IndexError) as error:
            raise ValueError(f"MovieLens: {tags} line {line}: {fields}: {error}; expected "
                             "tagId,tag") from error
    header, lines = _header_and_rows(scores, ",", "utf-8", _csv_lines)
    col = _columns(scores, header, ("movieId", "tagId", "relevance"))
    triples = []
    for line, fields in lines:
        try:
            triples.append((int(fields[col["movieId"]]), int(fields[col["tagId"]]),
                            float(fields[col["relevance"]])))
        except (ValueError, IndexError) as error:
            raise ValueError(f"MovieLens: {scores} line {line}: {fields}: {error}; expected "
                             "movieId,tagId,relevance") from error
        if triples[-1][1] not in names:
            raise ValueError(f"MovieLens: {scores} line {line}: tagId {triples[-1][1]} is not "
                             f"in {tags}")
    tag_ids = sorted(names)
    item_ids = np.array(sorted({t[0] for t in triples}), np.int64)
    relevance = np.full((len(item_ids), len(tag_ids)), np.nan, np.float32)
    if triples:
        movie_col, tag_col, value = (np.array(c) for c in zip(*triples))
        relevance[np.searchsorted(item_ids, movie_col),
                  np.searchsorted(np.array(tag_ids), tag_col)] = value
    return TagGenome(item_ids, tuple(names[t] for t in tag_ids), relevance)


# ---------------------------------------------------------------- TFDS


def load_tfds(data_dir: str = "", variant: str = "100k") -> MovieLens:
    """Loads ``movielens/<variant>-ratings`` and ``-movies`` already prepared in ``data_dir``.

    Nothing is downloaded. ``tfds.data_source`` reads ArrayRecord files, so prepare them
    first with ``tfds build movielens --file_format=array_record``. Users come from the
    per-rating user features. Only the not-prepared error is tested (no network in CI).

    Raises:
      FileNotFoundError: the datasets are not prepared (or not registered) in ``data_dir``.
    """
    import tensorflow_datasets as tfds  # Lazily: heavy, and only this source needs it.

    sources = {}
    for kind in ("ratings", "movies"):
        name = f"movielens/{variant}-{kind}"
        try:
            sources[kind] = tfds.data_source(name, split="train", data_dir=data_dir or None,
                                             download=False)
        except (ValueError, AssertionError, OSError) as error:
            raise FileNotFoundError(
                f"MovieLens: TFDS dataset {name} is not available in data_dir {data_dir!r} "
                f"(expected it prepared there, nothing is downloaded): {error}") from error
    genre_names = sources["movies"].dataset_info.features["movie_genres"].feature.names
    reporter = _Reporter()
    movies = {}
    name = f"movielens/{variant}-movies"
    for index, record in enumerate(sources["movies"]):
        title, year = split_title_year(record["movie_title"].decode())
        genres = tuple(genre_names[g] for g in record["movie_genres"])
        movies[int(record["movie_id"])] = _movie(reporter, name, index, title, year, genres)
    users, rows = {}, []
    for record in sources["ratings"]:
        user = int(record["user_id"])
        users[user] = User(int(record["raw_user_age"]), "M" if record["user_gender"] else "F",
                           record["user_occupation_text"].decode())
        rows.append((user, int(record["movie_id"]), float(record["user_rating"]),
                     int(record["timestamp"])))
    columns = list(zip(*rows)) or [(), (), (), ()]
    raw = _RawRatings(f"movielens/{variant}-ratings", np.array(columns[0], np.int64),
                      np.array(columns[1], np.int64), np.array(columns[2], np.float32),
                      np.array(columns[3], np.int64), np.arange(len(rows), dtype=np.int64))
    return _finish(raw, movies, users, True, reporter, f"tfds:{variant}",
                   WHOLE_STARS if variant in ("100k", "1m") else HALF_STARS)
