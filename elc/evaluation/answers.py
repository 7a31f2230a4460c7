"""Saved answers of an evaluation: ``WORKDIR/eval/answers.jsonl`` and its header.

Generation (the model, on the accelerator) and scoring (MiniLM, ridge maps, facts; any
machine) meet here. Every answer is one JSON object per line (:class:`Answer`); the header
``answers_meta.json`` (:class:`AnswersMeta`) records how they were made: the config
settings that decide what was asked, the stages, the generation settings, the time taken
and the device. Both files are written through a temporary file and a rename, the header
last, so a crash never leaves a file that looks complete; the header holds the number of
answers and the answers file's SHA-256, which reading checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from elc.data.examples import SlotValue

ANSWERS_FILE = "answers.jsonl"
META_FILE = "answers_meta.json"
FORMAT_VERSION = 1
PROBES = ("held_out", "interpolation", "cav")


@dataclasses.dataclass(frozen=True)
class Answer:
    """One answer and what was asked.

    Attributes:
      variant: who answered: ``untrained``, a stage name, ``text_only`` or ``reference``
        (the true target text).
      probe: ``held_out`` (a held-out example), ``interpolation`` (a point between two
        movies) or ``cav`` (a user moved along a genre's concept direction).
      task: the task whose phrasing was asked.
      prompt: the prompt text as asked, with its ``<space>`` slots.
      slots: slot key -> entity id, or the inline vector of a novel point, as asked.
      spaces: the embedding spaces of ``slots``.
      answer: the generated text (for ``reference``: the true target).
      example: held_out: the index of the example among the task's held-out examples.
      origin: held_out: where the example came from (``eval.jsonl:17``).
      entities: held_out: the example's slots (entity ids), also where the prompt asked
        with titles instead (``text_only``).
      target: held_out: the true answer.
      pair: interpolation: the ids of movies a and b; ``weight``: the point's weight t in
        ``(1 - t) a + t b``.
      user, genre, amount: cav: the held-out user, the genre whose direction moved them,
        and how far (in mean vector norms).
    """

    variant: str
    probe: str
    task: str
    prompt: str
    slots: Mapping[str, SlotValue]
    spaces: Sequence[str]
    answer: str
    example: int | None = None
    origin: str | None = None
    entities: Mapping[str, SlotValue] | None = None
    target: str | None = None
    pair: Sequence[str] | None = None
    weight: float | None = None
    user: str | None = None
    genre: str | None = None
    amount: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this answer, without the fields that do not apply."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, record: Any, where: str) -> Answer:
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING}
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if not required <= record.keys() or not record.keys() <= fields:
            raise ValueError(f"{where}: missing keys {sorted(required - record.keys())}, "
                             f"unexpected keys {sorted(record.keys() - fields)}")
        if record["probe"] not in PROBES:
            raise ValueError(f"{where}: probe {record['probe']!r} is not one of {PROBES}")
        return cls(**record)


@dataclasses.dataclass
class AnswersMeta:
    """How a set of answers was made (``answers_meta.json``).

    Attributes:
      settings: flat config field -> value of every setting that decides what was asked
        and answered (see ``generation_settings`` in :mod:`elc.projects.movielens.evaluation`);
        scoring with a config that differs in any of them is an error.
      stages: the training stages, each {"name", "steps", "trainable", "eval"}; "eval"
        holds the held-out metrics logged at the end of the stage (``eval/`` dropped).
      variants: the variants in report order.
      tasks: the tasks with held-out examples, in report order.
      generation: max_new_tokens, batch_size, temperature, top_k, top_p, seed.
      cav: genre -> {"direction": the unit CAV in user space, "positive_users",
        "train_users"}, as fitted when the answers were made.
      seconds: how long generation took; devices: "<count> x <device kind>".
      created: when (ISO 8601); answers: the number of answers; sha256: of answers.jsonl.
    """

    settings: dict[str, Any]
    stages: list[dict[str, Any]]
    variants: list[str]
    tasks: list[str]
    generation: dict[str, Any]
    cav: dict[str, dict[str, Any]]
    seconds: float
    devices: str
    created: str
    answers: int = 0
    sha256: str = ""
    format: int = FORMAT_VERSION


def plain(value: Any) -> Any:
    """``value`` as plain JSON: tuples as lists, numpy scalars as numbers, and a NaN or
    infinity (a metric nothing could be measured for) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    return value


def write_atomically(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _dumps(value: Any, **kwargs) -> str:
    return json.dumps(plain(value), allow_nan=False, **kwargs)


def write_answers(out_dir: str, answers: Sequence[Answer], meta: AnswersMeta) -> str:
    """Writes ``answers`` and their header into ``out_dir``; returns the answers' path.

    The old header goes first and the new one is written last, so answers without a
    matching header are never taken for complete ones.
    """
    os.makedirs(out_dir, exist_ok=True)
    path, meta_path = os.path.join(out_dir, ANSWERS_FILE), os.path.join(out_dir, META_FILE)
    if os.path.exists(meta_path):
        os.remove(meta_path)
    text = "".join(_dumps(a.to_json()) + "\n" for a in answers)
    write_atomically(path, text)
    meta = dataclasses.replace(meta, answers=len(answers),
                               sha256=hashlib.sha256(text.encode()).hexdigest())
    write_atomically(meta_path, _dumps(dataclasses.asdict(meta), indent=1) + "\n")
    return path


def read_answers(out_dir: str, generate_command: str) -> tuple[AnswersMeta, list[Answer]]:
    """The header and answers saved in ``out_dir``.

    Raises:
      FileNotFoundError: no answers or no header, naming the missing file and
        ``generate_command``, the command that makes them.
      ValueError: a malformed line, or answers that do not match their header.
    """
    path, meta_path = os.path.join(out_dir, ANSWERS_FILE), os.path.join(out_dir, META_FILE)
    for name, needed in ((path, "saved answers"), (meta_path, "the header of the saved answers")):
        if not os.path.exists(name):
            raise FileNotFoundError(
                f"{name} does not exist: scoring needs {needed}. Make them with: "
                f"{generate_command}")
    with open(meta_path) as f:
        record = json.load(f)
    fields = {f.name for f in dataclasses.fields(AnswersMeta)}
    if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION or not (
            record.keys() == fields):
        raise ValueError(f"{meta_path} is not an answers header of format {FORMAT_VERSION}; "
                         f"make the answers again with: {generate_command}")
    meta = AnswersMeta(**record)
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != meta.sha256:
        raise ValueError(f"{path} is not the file its header {meta_path} describes (its "
                         f"SHA-256 differs; was it changed or cut short?); make the answers "
                         f"again with: {generate_command}")
    answers = [Answer.from_json(json.loads(line), f"{path}:{number}")
               for number, line in enumerate(data.decode().splitlines(), 1) if line.strip()]
    if len(answers) != meta.answers:
        raise ValueError(f"{path} holds {len(answers)} answers, its header {meta.answers}")
    return meta, answers


def check_settings(meta: AnswersMeta, settings: Mapping[str, Any], path: str,
                   generate_command: str) -> None:
    """Raises ValueError naming the first setting in which ``settings`` (from the config
    used for scoring) differ from the ones the answers in ``path`` were made with."""
    settings = plain(settings)
    for field in [*meta.settings, *(k for k in settings if k not in meta.settings)]:
        made, now = meta.settings.get(field, "<unset>"), settings.get(field, "<unset>")
        if made != now:
            hint = (f" (name the config's variant, e.g. --config=configs/movielens_elm.py:{made})"
                    if field == "variant" else "")
            raise ValueError(
                f"the answers in {path} were made with {field}={_dumps(made)} but this config "
                f"has {field}={_dumps(now)}; score with the config (and overrides) they were "
                f"made with{hint}, or make them again with: {generate_command}")
