"""Opening the text files users hand to elc, so that a file in the wrong encoding is an
error naming the file and the byte offset of its first undecodable byte, not a bare
UnicodeDecodeError whose position counts from the start of some internal buffer."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
from typing import Any, Iterator, TextIO

_CHUNK = 1 << 20  # bytes decoded at a time when locating a bad byte


class TextDecodeError(ValueError):
    """A text file holds bytes its encoding cannot decode; the message names the file,
    the byte offset and the line of the first one."""


def _first_undecodable_byte(path: str | os.PathLike, encoding: str = "utf-8"
                           ) -> tuple[int, int, str] | None:
    """(0-based byte offset, 1-based line, reason) of the first byte of ``path`` that
    ``encoding`` cannot decode; None when the whole file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = newlines = 0  # bytes handed to the decoder so far, and the newlines among them
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            pending = decoder.getstate()[0]  # an unfinished multi-byte character, never "\n"
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:  # error.start counts from pending's start
                before = (pending + chunk)[:error.start]
                return (offset - len(pending) + error.start,
                        newlines + before.count(b"\n") + 1, error.reason)
            if not chunk:
                return None
            offset += len(chunk)
            newlines += chunk.count(b"\n")


@contextlib.contextmanager
def open_text(path: str | os.PathLike, encoding: str = "utf-8",
              newline: str | None = None) -> Iterator[TextIO]:
    """``open(path, encoding=encoding, newline=newline)`` for reading, whose decoding
    errors inside the ``with`` block become a TextDecodeError such as
    ``data/ids.txt: not UTF-8 at byte 1234 (line 56: invalid start byte)``."""
    with open(path, encoding=encoding, newline=newline) as f:
        try:
            yield f
        except UnicodeDecodeError:
            found = _first_undecodable_byte(path, encoding)
            if found is None:  # the error came from something else the block decoded
                raise
            offset, line, reason = found
            name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
            raise TextDecodeError(f"{os.fspath(path)}: not {name} at byte {offset} "
                                  f"(line {line}: {reason})") from None


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole text of ``path``; a TextDecodeError names the file and byte offset of the
    first byte ``encoding`` cannot decode."""
    with open_text(path, encoding) as f:
        return f.read()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in the UTF-8 file ``path``; FileNotFoundError when it is missing, a
    ValueError naming the file for undecodable bytes or invalid JSON."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.fspath(path)} not found")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{os.fspath(path)} is not valid JSON: {error}") from None
