"""A run's config checked whole before anything heavy loads, every problem reported at once.

The components check their own arguments again when they are built (GemmaConfig,
OptimizerConfig, LoraConfig...); this pass exists so that a typo found only after a
minute-long backbone load, or one problem at a time, never costs a run. Each problem
names the field, its value and what was expected.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable

import jax
import ml_collections

from elc.data.input_pipeline import SOURCES
from elc.model.adapter import ACTIVATIONS, INPUT_NORMS
from elc.model.config import DTYPES, PRESETS, REMAT_POLICIES
from elc.sharding import RULE_SETS, make_mesh
from elc.train.adapter_alignment import ADAPTER_INITS
from elc.train.nonfinite_guard import NONFINITE_MODES

# A check returns what was expected when the value fails it, else None.
Check = Callable[[Any], "str | None"]
BACKBONE_FORMATS = ("gguf", "hf", "orbax", "random")
SPACE_FIELDS = {"table", "ids", "dim", "max_slots", "standardize"}


class ConfigError(ValueError):
    """The config has problems; ``problems`` lists them, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem{'s' * (len(problems) > 1)} in the config:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int | None = None) -> Check:
    span = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    return lambda v: None if _is_int(v) and v >= low and (high is None or v <= high) else span


def number(low: float, high: float = math.inf, *, low_open: bool = False,
           high_open: bool = False) -> Check:
    left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
    span = f"a finite number in {left}{low}, {high}{right}"

    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return span
        if v < low or (low_open and v == low) or v > high or (high_open and v == high):
            return span
        return None
    return check


def one_of(options) -> Check:
    options = tuple(options)
    return lambda v: None if v in options else f"one of {options}"


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "True or False"


def regexes(*, allow_empty: bool = False) -> Check:
    def check(v):
        if isinstance(v, str) or not isinstance(v, (tuple, list)) or (not v and not allow_empty):
            return "a non-empty tuple of regexes" if not allow_empty else "a tuple of regexes"
        for pattern in v:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                return f"valid regexes ({pattern!r}: {error})"
        return None
    return check


def _lr_multipliers(v: Any) -> str | None:
    expected = "(regex, factor > 0) pairs"
    if isinstance(v, str) or not isinstance(v, (tuple, list)):
        return expected
    for pair in v:
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or regexes()((pair[0],)) or number(0, low_open=True)(pair[1])):
            return expected
    return None


def _dims(v: Any) -> str | None:
    ok = isinstance(v, (tuple, list)) and all(_is_int(d) and d >= 1 for d in v)
    return None if ok else "a tuple of integers >= 1"


FIELD_CHECKS: dict[str, Check] = {
    "backbone.format": one_of(BACKBONE_FORMATS),
    "backbone.preset": one_of(sorted(PRESETS)),
    "backbone.seed": integer(0),
    "backbone.dtype": one_of(DTYPES),
    "backbone.param_dtype": one_of(DTYPES),
    "backbone.attention_impl": one_of(("xla", "cudnn")),
    "backbone.remat_policy": one_of(REMAT_POLICIES),
    "model.adapter.num_soft_tokens": integer(1),
    "model.adapter.hidden_dims": _dims,
    "model.adapter.activation": one_of(sorted(ACTIVATIONS)),
    "model.adapter.input_norm": one_of(INPUT_NORMS),
    "model.adapter.output_scale": number(0),
    "model.adapter.init": one_of(ADAPTER_INITS),
    "model.adapter.align_ridge": number(0, low_open=True),
    "data.source": one_of(SOURCES),
    "data.max_length": integer(2),
    "data.examples_per_row": integer(1),
    "data.batch_size": integer(1),
    "data.eval_batch_size": integer(1),
    "data.seed": integer(0),
    "mesh.dcn_data": integer(1),
    "mesh.rules": one_of(sorted(RULE_SETS)),
    "train.seed": integer(0),
    "train.grad_accum_steps": integer(1),
    "train.logits_chunk_size": integer(1),
    "train.log_every": integer(1),
    "train.eval_every": integer(1),
    "train.max_eval_batches": integer(1),
    "train.checkpoint_every": integer(1),
    "train.keep_checkpoints": integer(1),
    "train.async_checkpoints": boolean,
    "train.nonfinite_updates": one_of(NONFINITE_MODES),
    "sample.max_new_tokens": integer(1),
    "sample.temperature": number(0),
    "sample.top_k": integer(0),
    "sample.top_p": number(0, 1, low_open=True),
    "sample.seed": integer(0),
    "sample.stop_at_eos": boolean,
}

SYNTHETIC_CHECKS: dict[str, Check] = {
    "num_entities": integer(1), "dim": integer(1), "noise": number(0),
    "train_size": integer(1), "eval_size": integer(1), "seed": integer(0),
}

STAGE_CHECKS: dict[str, Check] = {
    "steps": integer(1),
    "learning_rate": number(0, low_open=True),
    "warmup_steps": integer(0),
    "final_lr_ratio": number(0, 1),
    "weight_decay": number(0),
    "clip_norm": number(0),
    "trainable": regexes(),
    "lr_multipliers": _lr_multipliers,
}

LORA_CHECKS: dict[str, Check] = {
    "rank": integer(0),
    "alpha": number(0, low_open=True),
    "dropout": number(0, 1, high_open=True),
    "targets": regexes(),
}


def _lookup(config, path: str) -> tuple[bool, Any]:
    node = config
    for key in path.split("."):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _apply(config, prefix: str, checks: dict[str, Check], problems: list[str]) -> None:
    for field, check in checks.items():
        path = f"{prefix}{field}"
        present, value = _lookup(config, path)
        if present and (expected := check(value)):
            problems.append(f"{path}={value!r}: expected {expected}")


def _non_finite_floats(node, path: str, problems: list[str]) -> None:
    """Every float anywhere in the config must be finite: NaN passes ``x <= 0`` checks."""
    if isinstance(node, (ml_collections.ConfigDict, dict)):
        for key in node:
            _non_finite_floats(node[key], f"{path}.{key}" if path else key, problems)
    elif isinstance(node, (tuple, list)):
        for i, item in enumerate(node):
            _non_finite_floats(item, f"{path}[{i}]", problems)
    elif isinstance(node, float) and not math.isfinite(node):
        problems.append(f"{path}={node!r}: expected a finite number")


def _check_stages(config, problems: list[str]) -> None:
    stages = config.train.stages
    if isinstance(stages, str) or not isinstance(stages, (tuple, list)) or not stages:
        problems.append(f"train.stages={stages!r}: expected a non-empty tuple of stage names")
        return
    for name in stages:
        if name not in config.stage:
            problems.append(f"train.stages names {name!r}: expected one of the stages defined "
                            f"under config.stage {sorted(config.stage.keys())}")
            continue
        _apply(config, f"stage.{name}.", STAGE_CHECKS, problems)
        spec = config.stage[name]
        if _is_int(spec.steps) and _is_int(spec.warmup_steps) and spec.warmup_steps >= spec.steps >= 1:
            problems.append(f"stage.{name}.warmup_steps={spec.warmup_steps}: expected fewer "
                            f"than stage.{name}.steps={spec.steps}")
        lora = spec.get("lora")
        if lora is not None and lora.get("rank"):
            _apply(config, f"stage.{name}.lora.", LORA_CHECKS, problems)


def _check_data(config, require_files: bool, problems: list[str]) -> None:
    data = config.data
    if _is_int(data.max_target_tokens) and _is_int(data.max_length):
        if not 0 <= data.max_target_tokens <= data.max_length:
            problems.append(f"data.max_target_tokens={data.max_target_tokens}: expected an "
                            f"integer in [0, data.max_length={data.max_length}]")
    else:
        problems.append(f"data.max_target_tokens={data.max_target_tokens!r}: expected an integer")
    if data.source == "synthetic":
        _apply(config, "data.synthetic.", SYNTHETIC_CHECKS, problems)
        return
    if data.source == "jsonl" and require_files:
        for split in ("train", "eval"):
            if not os.path.isfile(data[split]):
                problems.append(f"data.{split}={data[split]!r}: expected an existing JSONL file")
    if not data.spaces:
        problems.append("data.spaces is empty: expected at least one embedding space")
    for name, spec in data.spaces.items():
        where = f"data.spaces.{name}"
        unknown = sorted(set(spec.keys()) - SPACE_FIELDS)
        if unknown:
            problems.append(f"{where} has unknown fields {unknown}: expected some of "
                            f"{sorted(SPACE_FIELDS)}")
        table = spec.get("table", "")
        if require_files and table and "://" not in table and not os.path.isfile(table):
            problems.append(f"{where}.table={table!r}: expected an existing .npz or .npy file")
        if not table and not spec.get("dim"):
            problems.append(f"{where}: expected a table or a dim")
        if spec.get("standardize") and not table:
            problems.append(f"{where}.standardize=True: expected a table to take the mean and "
                            "standard deviation from")
        # dim 0 (or unset) means "from the table"; max_slots and standardize have no such value.
        checks = {"max_slots": integer(1), "standardize": boolean}
        if spec.get("dim") not in (None, 0, ""):
            checks["dim"] = integer(1)
        for field, check in checks.items():
            if field in spec and (expected := check(spec[field])):
                problems.append(f"{where}.{field}={spec[field]!r}: expected {expected}")


def _check_backbone_path(config, problems: list[str]) -> None:
    backbone = config.backbone
    path = backbone.get("path", "")
    if backbone.format != "random" and path and "://" not in path and not os.path.exists(path):
        problems.append(f"backbone.path={path!r}: expected an existing file or directory "
                        f"(a {backbone.format} checkpoint)")


def _check_mesh(config, device_count: int, problems: list[str]) -> None:
    mesh = config.mesh
    for axis in ("data", "fsdp", "tensor"):
        size = mesh.get(axis)
        if not _is_int(size) or not (size == -1 or size >= 1):
            problems.append(f"mesh.{axis}={size!r}: expected an integer >= 1, or -1 for the rest")
            return
    try:
        shape = make_mesh(mesh, jax.devices()[:device_count]).shape
    except ValueError as error:
        problems.append(str(error))
        return
    rows = shape["data"] * shape["fsdp"]
    for name in ("batch_size", "eval_batch_size"):
        size = config.data[name]
        if _is_int(size) and size >= 1 and size % rows:
            problems.append(f"data.{name}={size}: expected a multiple of the mesh's data x fsdp "
                            f"= {rows}")
    accum, size = config.train.grad_accum_steps, config.data.batch_size
    if _is_int(accum) and accum >= 1 and _is_int(size) and size % (accum * rows):
        problems.append(f"train.grad_accum_steps={accum}: expected data.batch_size={size} to "
                        f"split into {accum} micro-batches of a multiple of {rows} rows")


def check_run_config(config, device_count: int | None = None, *,
                     require_files: bool = True,
                     project_checks: dict[str, Check] | None = None) -> None:
    """Raises ConfigError listing every problem of a training run's ``config``.

    ``device_count`` (default: all devices) is what the mesh is checked against. Without
    ``require_files`` the example and table files need not exist yet (a pipeline checks
    its config before it prepares them). ``project_checks`` adds a project's own fields
    (``{"prepare.seed": integer(0), ...}``; absent fields are skipped).
    """
    problems: list[str] = []
    _non_finite_floats(config, "", problems)
    non_finite = set(problems)
    _apply(config, "", {**FIELD_CHECKS, **(project_checks or {})}, problems)
    _check_stages(config, problems)
    _check_data(config, require_files, problems)
    if require_files:
        _check_backbone_path(config, problems)
    _check_mesh(config, device_count or jax.device_count(), problems)
    # A NaN field fails its range check too: say it once.
    non_finite_fields = {problem.split("=", 1)[0] for problem in non_finite}
    unique = list(dict.fromkeys(
        problem for problem in problems
        if problem in non_finite or problem.split("=", 1)[0] not in non_finite_fields))
    if unique:
        raise ConfigError(unique)
