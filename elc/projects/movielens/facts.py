"""Exact-fact metrics: the facts a generated answer states, checked against the reference.

The reference of an eval example is the target :mod:`elc.projects.movielens.tasks` wrote from the data, so
it states the true facts. One parser per task reads the facts a text states (a title, a
year, genres, a rating, ...); it reads both texts, and the metrics compare the two readings.
Parsers follow the target templates of tasks.py but also pick facts out of looser text:
movie titles, genres and occupations are recognised by matching the :class:`Catalogue`'s
names as whole words, ignoring case and punctuation, leftmost first and longest at a
position (so "Good, The Bad and The Ugly, The (1966)" is one title, not a list); numbers by
the phrase around them ("averaging 3.8", "4.0 out of 5", "24-year-old").

Missing facts. A fact the reference does not state (a movie without a year, a profile
without liked genres) makes its metrics NaN: there is nothing to check. A fact the
reference states but the generated text does not counts as wrong: 0 for accuracies, F1 and
overlaps, NaN for errors (no number to take a difference with), so report an error's count
of non-NaN values beside its mean, as :func:`mean_metrics` does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from elc.projects.movielens.dataset import MovieLens, split_title_year

# The phrases tasks.py writes; read from there so that parser and writer cannot drift apart.
from elc.projects.movielens.tasks import GENDER_PERSON, POPULARITY

_WORD = re.compile(r"[^\W_]+")
_YEAR = re.compile(r"\((\d{4})\)")
_DECADE = re.compile(r"\b(\d{3}0)'?s\b")
_OUT_OF_5 = re.compile(r"(\d+(?:\.\d+)?)\s*out of 5", re.IGNORECASE)
_RATERS = re.compile(r"rated by\s+(\d+)", re.IGNORECASE)
_AGE = re.compile(r"(\d+)[\s-]*years?[\s-]*old", re.IGNORECASE)
_SENTENCE_END = r"(?:\.(?=\s|$)|$)"
_POPULARITY_PHRASES = sorted((phrase for _, phrase in POPULARITY), key=len, reverse=True)
_POPULARITY_RE = re.compile(r"\b(" + "|".join(map(re.escape, _POPULARITY_PHRASES)) + r")\b",
                            re.IGNORECASE)
# Where the genre sentence of a summary ends: the audience or the reception sentence.
_SUMMARY_GENRES_END = re.compile(
    r"largest audience|\b(?:" + "|".join(map(re.escape, _POPULARITY_PHRASES)) + r")\s*:",
    re.IGNORECASE)
_GENDER_CODE = {person: code for code, person in GENDER_PERSON.items()}
_TIE = "(tie)"  # a comparison answered "both": no normalised title contains parentheses
_PLACEHOLDER = "\x00{}\x00"  # a title masked out of a comparison, by its match index


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(casefolded word, start, end) of each run of letters and digits."""
    return [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _normalise(text: str) -> str:
    """Lower case, punctuation dropped, words joined by one space: the comparison key."""
    return " ".join(word for word, _, _ in _tokens(text))


class _PhraseIndex:
    """Finds known phrases in text as whole-word sequences, leftmost first, longest at each
    position; a match consumes its words."""

    def __init__(self, phrases: Iterable[str]):
        self._phrases: set[tuple[str, ...]] = set()
        lengths: dict[str, set[int]] = {}
        for phrase in phrases:
            words = tuple(word for word, _, _ in _tokens(phrase))
            if words:
                self._phrases.add(words)
                lengths.setdefault(words[0], set()).add(len(words))
        # Per first word, the phrase lengths to try, longest first: a handful of lookups per
        # word instead of a scan of the whole catalogue.
        self._lengths = {word: sorted(ls, reverse=True) for word, ls in lengths.items()}

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(normalised phrase, start, end) of each match; end is after its last word."""
        tokens = _tokens(text)
        words = [word for word, _, _ in tokens]
        found, i = [], 0
        while i < len(tokens):
            for length in self._lengths.get(words[i], ()):
                # A slice cut short by the end of the text could equal a shorter phrase.
                if i + length <= len(words) and tuple(words[i:i + length]) in self._phrases:
                    found.append((" ".join(words[i:i + length]), tokens[i][1],
                                  tokens[i + length - 1][2]))
                    i += length
                    break
            else:
                i += 1
        return found


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """The names parsers recognise.

    Attributes:
      titles: every movie's ``"Title (year)"`` (``"Title"`` without a year), as tasks.py
        writes it.
      genres: the genre vocabulary.
      occupations: the occupation vocabulary.
    """

    titles: tuple[str, ...]
    genres: tuple[str, ...]
    occupations: tuple[str, ...]

    @classmethod
    def from_movielens(cls, ml: MovieLens) -> Catalogue:
        """The titles, genres and occupations of a dataset."""
        movies = list(ml.movies.by_id.values())
        titles = tuple(m.full_title for m in movies)  # as the targets write them
        # tasks.py never writes ML-100k's "unknown" genre (it means no genre).
        genres = tuple(sorted({g for m in movies for g in m.genres} - {"unknown"}))
        occupations = tuple(sorted({u.occupation for u in ml.users.by_id.values()}))
        return cls(titles, genres, occupations)

    # Built on first use: the indexes of a large catalogue take a moment.
    @functools.cached_property
    def _title_index(self) -> _PhraseIndex:
        """Full titles, year included."""
        return _PhraseIndex(self.titles)

    @functools.cached_property
    def _name_index(self) -> _PhraseIndex:
        """Titles without their year, to judge a title apart from its year."""
        return _PhraseIndex(split_title_year(title)[0] for title in self.titles)

    @functools.cached_property
    def _genre_index(self) -> _PhraseIndex:
        return _PhraseIndex(self.genres)

    @functools.cached_property
    def _occupation_index(self) -> _PhraseIndex:
        return _PhraseIndex(self.occupations)


# ---------------------------------------------------------------- reading facts

Facts = dict[str, object]


def _segment(marker: str, text: str) -> str | None:
    """The text after the regex ``marker`` up to the end of its sentence; None if absent."""
    match = re.search(marker + r"\s*(.*?)" + _SENTENCE_END, text, re.IGNORECASE | re.DOTALL)
    return None if match is None else match.group(1)


def _float(pattern: re.Pattern, text: str | None) -> float | None:
    match = None if text is None else pattern.search(text)
    return None if match is None else float(match.group(1))


def _genres(text: str | None, catalogue: Catalogue) -> frozenset[str] | None:
    """The vocabulary genres named in ``text``; None if none is."""
    found = frozenset(key for key, _, _ in catalogue._genre_index.find(text or ""))
    return found or None


def _titles(text: str, catalogue: Catalogue) -> frozenset[str] | None:
    found = frozenset(key for key, _, _ in catalogue._title_index.find(text))
    return found or None


def _shares(segment: str | None) -> list[tuple[str, float]] | None:
    """``"18-24 (33%), 55 and over (33%) and under 18 (33%)"`` -> [(label, percent)]."""
    items, start = [], 0
    for match in re.finditer(r"\((\d+(?:\.\d+)?)\s*%\)", segment or ""):
        # A label runs from the previous share to this one, less the list's ", " or "and ".
        label = re.sub(r"^[\s,]*(?:and\s+)?", "", segment[start:match.start()], flags=re.IGNORECASE)
        items.append((_normalise(label), float(match.group(1))))
        start = match.end()
    return items or None


def _name_and_rest(text: str, catalogue: Catalogue) -> tuple[str | None, str]:
    """The movie name (title without year) a text names first, and the text after it."""
    found = catalogue._name_index.find(text)
    if found:
        name, _, end = found[0]
        return name, text[end:]
    # A name outside the catalogue: the template's head, before "(year)" or, lacking one,
    # before a colon or the end of the sentence.
    year = _YEAR.search(text)
    end = year.start() if year else re.search(r":|" + _SENTENCE_END, text).start()
    return _normalise(text[:end]) or None, text[end:]


def _year(text: str) -> int | None:
    match = _YEAR.search(text)
    return None if match is None else int(match.group(1))


def _parse_identity(text: str, catalogue: Catalogue) -> Facts:
    name, rest = _name_and_rest(text, catalogue)
    return {"title": name, "year": _year(rest)}


def _parse_genres(text: str, catalogue: Catalogue) -> Facts:
    return {"genres": _genres(text, catalogue)}


def _parse_era(text: str, catalogue: Catalogue) -> Facts:
    match = _DECADE.search(text)
    return {"decade": None if match is None else int(match.group(1))}


def _parse_audience(text: str, catalogue: Catalogue) -> Facts:
    return {"raters": _float(_RATERS, text),
            "age": _shares(_segment(r"\bages?:", text)),
            "gender": _shares(_segment(r"\bgenders?:", text)),
            "occupation": _shares(_segment(r"\boccupations?:", text))}


def _parse_reception(text: str, catalogue: Catalogue) -> Facts:
    match = _POPULARITY_RE.search(text)
    return {"popularity": None if match is None else match.group(1).casefold(),
            "rating": _float(_OUT_OF_5, text)}


def _parse_title_list(text: str, catalogue: Catalogue) -> Facts:
    return {"titles": _titles(text, catalogue)}


def _parse_summary(text: str, catalogue: Catalogue) -> Facts:
    name, rest = _name_and_rest(text, catalogue)
    end = _SUMMARY_GENRES_END.search(rest)
    return {"title": name, "year": _year(rest),
            "genres": _genres(rest[:end.start()] if end else rest, catalogue),
            "rating": _float(_OUT_OF_5, rest)}


def _parse_compare(text: str, catalogue: Catalogue) -> Facts:
    found = catalogue._title_index.find(text)
    # Titles masked first, so that a title's own words or dots cannot break the sentences.
    masked, start = [], 0
    for index, (_, begin, end) in enumerate(found):
        masked += [text[start:begin], _PLACEHOLDER.format(index)]
        start = end
    masked = "".join(masked) + text[start:]

    def named(claim: str, tie: str) -> str | None:
        match = re.search(r"\x00(\d+)\x00\W*" + claim, masked, re.IGNORECASE)
        if match is not None:
            return found[int(match.group(1))][0]
        return _TIE if re.search(tie, masked, re.IGNORECASE) else None

    if re.search(r"\bshare no genres?\b", masked, re.IGNORECASE):
        shared = frozenset()
    else:
        shared = _genres(_segment(r"\bboth are\b", masked), catalogue)
    return {"shared": shared, "more_popular": named(r"is more popular", r"\bboth have\b"),
            "better_rated": named(r"is better rated", r"\bboth average\b")}


def liked_genres(profile: str, catalogue: Catalogue) -> frozenset[str] | None:
    """The genres of a user profile's "Likes ..." sentence; None if it names none."""
    # \b keeps "Dislikes" from reading as "Likes".
    return _genres(_segment(r"\blikes\b", profile), catalogue)


def _parse_profile(text: str, catalogue: Catalogue) -> Facts:
    return {"liked": liked_genres(text, catalogue),
            "favourites": _titles(text, catalogue), "rating": _float(_OUT_OF_5, text)}


def _parse_demographics(text: str, catalogue: Catalogue) -> Facts:
    age = _float(_AGE, text)
    other = re.search(r"\bperson of gender\s+([^\s;,.]+)", text, re.IGNORECASE)
    person = re.search(r"\b(woman|man)\b", text, re.IGNORECASE)
    code = (other.group(1) if other else
            _GENDER_CODE[person.group(1).casefold()] if person else None)
    marker = re.search(r"\boccupation\b\W*", text, re.IGNORECASE)
    segment = text[marker.end():] if marker else text
    found = catalogue._occupation_index.find(segment)
    if found:
        occupation = found[0][0]
    elif marker:  # an occupation outside the vocabulary, as the template writes it
        occupation = _normalise(re.match(r"(.*?)" + _SENTENCE_END, segment, re.DOTALL).group(1))
    else:
        occupation = None
    return {"age": age, "gender": code and code.casefold(), "occupation": occupation or None}


def _parse_enjoys(text: str, catalogue: Catalogue) -> Facts:
    answer = re.search(r"\b(yes|no)\b", text, re.IGNORECASE)
    return {"answer": None if answer is None else answer.group(1).casefold(),
            "rating": _float(_OUT_OF_5, text)}


# ---------------------------------------------------------------- comparing facts


def _accuracy(generated: object, reference: object) -> float:
    if reference is None:
        return math.nan
    return float(generated is not None and generated == reference)


def _error(generated: float | None, reference: float | None) -> float:
    if reference is None or generated is None:
        return math.nan
    return abs(generated - reference)


def _relative_error(generated: float | None, reference: float | None) -> float:
    if reference is None or generated is None or reference == 0:
        return math.nan
    return abs(generated - reference) / abs(reference)


def set_f1(generated: frozenset | None, reference: frozenset | None) -> float:
    """Set F1 of a reading against the reference's: NaN if the reference states none, 0 if
    the reading does not; both stating the empty set ("They share no genre") is a match."""
    if reference is None:
        return math.nan
    if generated is None:
        return 0.0
    if not generated and not reference:
        return 1.0
    return 2 * len(generated & reference) / (len(generated) + len(reference))


def _overlap(generated: frozenset | None, reference: frozenset | None) -> float:
    """Share of the reference's items the generated text names."""
    if not reference:
        return math.nan
    return len((generated or frozenset()) & reference) / len(reference)


def _top_accuracy(generated: list[tuple[str, float]] | None,
                  reference: list[tuple[str, float]] | None) -> float:
    """Whether the generated largest group is a largest group of the reference (ties in
    the reference's percentages all count as largest)."""
    if reference is None:
        return math.nan
    if generated is None:
        return 0.0
    top = max(share for _, share in reference)
    generated_top = max(generated, key=lambda item: item[1])[0]  # the first on a tie
    return float(generated_top in {label for label, share in reference if share == top})


def _within(generated: float | None, reference: float | None, tolerance: float) -> float:
    if reference is None:
        return math.nan
    return float(generated is not None and abs(generated - reference) <= tolerance)


def _mean_defined(values: Sequence[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


Metric = Callable[[Facts, Facts], float]


@dataclasses.dataclass(frozen=True)
class _FieldsMetric:
    """A metric of two readings and the fields of :data:`Facts` it reads."""

    compare: Metric
    fields: tuple[str, ...]

    def __call__(self, generated: Facts, reference: Facts) -> float:
        return self.compare(generated, reference)


def _on(compare: Callable[[object, object], float], field: str) -> _FieldsMetric:
    return _FieldsMetric(lambda generated, reference: compare(generated[field], reference[field]),
                         (field,))


def _audience_demographics(generated: Facts, reference: Facts) -> float:
    return _mean_defined([_top_accuracy(generated[field], reference[field])
                          for field in ("age", "gender", "occupation")])


def _user_demographics(generated: Facts, reference: Facts) -> float:
    return _mean_defined([_accuracy(generated["gender"], reference["gender"]),
                          _accuracy(generated["occupation"], reference["occupation"]),
                          _within(generated["age"], reference["age"], 5)])


_TITLE_LIST = (_parse_title_list, {"title_overlap": _on(_overlap, "titles")})
_SPECS: dict[str, tuple[Callable[[str, Catalogue], Facts], dict[str, _FieldsMetric]]] = {
    "movie_identity": (_parse_identity, {"title_accuracy": _on(_accuracy, "title"),
                                         "year_accuracy": _on(_accuracy, "year")}),
    "movie_genres": (_parse_genres, {"genre_f1": _on(set_f1, "genres")}),
    "movie_era": (_parse_era, {"decade_accuracy": _on(_accuracy, "decade")}),
    "movie_audience": (_parse_audience, {
        "demographic_accuracy": _FieldsMetric(_audience_demographics,
                                              ("age", "gender", "occupation")),
        "rater_count_error": _on(_relative_error, "raters")}),
    "movie_reception": (_parse_reception, {"popularity_accuracy": _on(_accuracy, "popularity"),
                                           "rating_error": _on(_error, "rating")}),
    "movie_similar": _TITLE_LIST,
    "movie_summary": (_parse_summary, {"title_accuracy": _on(_accuracy, "title"),
                                       "year_accuracy": _on(_accuracy, "year"),
                                       "genre_f1": _on(set_f1, "genres"),
                                       "rating_error": _on(_error, "rating")}),
    "movie_compare": (_parse_compare, {
        "shared_genre_f1": _on(set_f1, "shared"),
        "more_popular_accuracy": _on(_accuracy, "more_popular"),
        "better_rated_accuracy": _on(_accuracy, "better_rated")}),
    "user_profile": (_parse_profile, {"liked_genre_f1": _on(set_f1, "liked"),
                                      "favourite_overlap": _on(_overlap, "favourites"),
                                      "rating_error": _on(_error, "rating")}),
    "user_demographics": (_parse_demographics, {
        "gender_accuracy": _on(_accuracy, "gender"),
        "occupation_accuracy": _on(_accuracy, "occupation"),
        "age_error": _on(_error, "age"),
        "demographic_accuracy": _FieldsMetric(_user_demographics,
                                              ("gender", "occupation", "age"))}),
    "user_recommendations": _TITLE_LIST,
    "user_enjoys_movie": (_parse_enjoys, {"answer_accuracy": _on(_accuracy, "answer"),
                                          "rating_error": _on(_error, "rating")}),
}

FACT_METRICS: dict[str, tuple[str, ...]] = {task: tuple(metrics)
                                            for task, (_, metrics) in _SPECS.items()}
"""Task -> the names of the metrics :func:`fact_metrics` reports for it, in order."""

METRIC_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    task: {name: metric.fields for name, metric in metrics.items()}
    for task, (_, metrics) in _SPECS.items()}
"""Task -> metric -> the fields of the task's :func:`parse_facts` reading it compares."""


def _spec(task: str):
    if task not in _SPECS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(_SPECS)}")
    return _SPECS[task]


def parse_facts(task: str, text: str, catalogue: Catalogue) -> Facts:
    """The facts ``text`` states, read as ``task``'s answers are: field -> value (None
    where the text states none). Raises ValueError for an unknown task."""
    return _spec(task)[0](text, catalogue)


def facts_metrics(task: str, generated: Facts, reference: Facts,
                  names: Sequence[str] | None = None) -> dict[str, float]:
    """The metrics of :func:`fact_metrics` (or those of them in ``names``) on two readings
    already made, e.g. facts a probe predicted against the reference's."""
    return {name: float(metric(generated, reference))
            for name, metric in _spec(task)[1].items() if names is None or name in names}


def fact_metrics(task: str, generated: str, reference: str,
                 catalogue: Catalogue) -> dict[str, float]:
    """The exact-fact metrics of one generated answer.

    Args:
      task: a task of :data:`elc.projects.movielens.tasks.TASKS`.
      generated: the model's answer.
      reference: the target tasks.py built for the same example (the true facts).
      catalogue: the names to recognise.

    Returns:
      ``FACT_METRICS[task]`` -> value: accuracies, F1 and overlaps in [0, 1], errors >= 0
      (``rating_error`` and ``age_error`` absolute, ``rater_count_error`` relative); NaN
      where the reference states no such fact (or, for errors, the answer states none).

    Raises:
      ValueError: unknown task.
    """
    return facts_metrics(task, parse_facts(task, generated, catalogue),
                         parse_facts(task, reference, catalogue))


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """NaN-aware means of metric rows, and ``"<name>_n"``, the number of non-NaN values.

    A name missing from a row (rows of different tasks) is skipped like a NaN. A name
    without any value has mean NaN and count 0.
    """
    names = list(dict.fromkeys(name for row in rows for name in row))
    means: dict[str, float] = {}
    for name in names:
        values = np.array([row[name] for row in rows if name in row], np.float64)
        defined = values[~np.isnan(values)]
        means[name] = float(defined.mean()) if defined.size else math.nan
        means[f"{name}_n"] = float(defined.size)
    return means
