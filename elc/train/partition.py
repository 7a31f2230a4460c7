"""Splits parameters into trainable and frozen parts by regexes on their paths.

Only the trainable part is differentiated and has optimizer state, so freezing the
backbone costs neither gradient nor Adam memory for it.
"""

from __future__ import annotations

import re
from typing import Sequence

from flax import traverse_util


def param_paths(params: dict) -> list[str]:
    """Every leaf's '/'-joined path, e.g. 'backbone/groups/layer_0/mlp/up_proj'."""
    return ["/".join(k) for k in traverse_util.flatten_dict(params)]


def split_params(params: dict, trainable: Sequence[str]) -> tuple[dict, dict]:
    """(trainable, frozen): two nested dicts; a leaf is trainable when its path fully
    matches any regex in ``trainable``. Each regex must match at least one leaf."""
    if isinstance(trainable, str):
        raise ValueError(f"trainable must be a list of regexes, got the string {trainable!r}")
    compiled = []
    for pattern in trainable:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"trainable regex {pattern!r} is invalid: {error}") from None
    flat = traverse_util.flatten_dict(params)
    chosen, rest, used = {}, {}, set()
    for key, value in flat.items():
        path = "/".join(key)
        hits = [r.pattern for r in compiled if r.fullmatch(path)]
        used.update(hits)
        (chosen if hits else rest)[key] = value
    unused = [r.pattern for r in compiled if r.pattern not in used]
    if unused:
        raise ValueError(f"trainable regexes {unused} match no parameter; paths look like "
                         f"{param_paths(params)[:3]}")
    return traverse_util.unflatten_dict(chosen), traverse_util.unflatten_dict(rest)


def merge_params(trainable: dict, frozen: dict) -> dict:
    """Inverse of split_params."""
    flat = traverse_util.flatten_dict(frozen)
    flat.update(traverse_util.flatten_dict(trainable))
    return traverse_util.unflatten_dict(flat)
