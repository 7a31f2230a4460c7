"""A run's config is checked whole before anything loads, every problem named at once."""

import math

import ml_collections
import pytest

from elc.train.config_check import ConfigError, check_run_config
from elc.train.trainer import train

from helpers import load_config


@pytest.mark.parametrize("name, variant", [("tiny_elm", None), ("elm_270m", None),
                                           ("movielens_elm", "cpu_quick"),
                                           ("movielens_elm", "full"), ("describe", None)])
def test_shipped_configs_pass(name, variant):
    # Their data files are made by their prepare step, hence not required here.
    check_run_config(load_config(name, variant), require_files=False)


def test_every_problem_is_reported_at_once():
    config = load_config("tiny_elm")
    config.stage.adapter.learning_rate = float("nan")
    config.stage.full.warmup_steps = 500
    config.train.log_every = 0
    config.sample.top_p = 0.0
    config.model.adapter.activation = "swish"
    config.train.grad_accum_steps = 5
    with pytest.raises(ConfigError) as error:
        check_run_config(config)
    assert error.value.problems == [
        "stage.adapter.learning_rate=nan: expected a finite number",
        "model.adapter.activation='swish': expected one of ('gelu', 'relu', 'silu', 'tanh')",
        "train.log_every=0: expected an integer >= 1",
        "sample.top_p=0.0: expected a finite number in (0, 1]",
        "stage.full.warmup_steps=500: expected fewer than stage.full.steps=200",
        "train.grad_accum_steps=5: expected data.batch_size=32 to split into 5 micro-batches "
        "of a multiple of 1 rows",
    ]
    assert str(error.value).startswith("6 problems in the config:\n  - stage.adapter.")


def _float_fields(node, path=""):
    if isinstance(node, ml_collections.ConfigDict):
        for key in node:
            yield from _float_fields(node[key], f"{path}.{key}" if path else key)
    elif isinstance(node, float):
        yield path


MOVIELENS = load_config("movielens_elm", "cpu_quick")


@pytest.mark.parametrize("field", sorted(set(_float_fields(load_config("tiny_elm")))
                                         | set(_float_fields(MOVIELENS))))
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_value_in_any_float_field_is_named(field, bad):
    config = load_config("movielens_elm", "cpu_quick")
    if not _has(config, field):
        config = load_config("tiny_elm")
    _set(config, field, bad)
    with pytest.raises(ConfigError) as error:
        check_run_config(config, require_files=False)
    assert error.value.problems == [f"{field}={bad!r}: expected a finite number"]


def _has(config, path):
    node = config
    for key in path.split("."):
        if key not in node:
            return False
        node = node[key]
    return True


def _set(config, path, value):
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value


def test_spaces_are_checked_by_name(tmp_path):
    config = load_config("movielens_elm", "cpu_quick")
    config.prepare.out_dir = str(tmp_path)
    space = next(iter(config.data.spaces))
    config.data.spaces[space].table = str(tmp_path / "missing.npz")
    config.data.spaces[space].standardise = True  # British spelling: not a field
    config.data.spaces[space].max_slots = 0
    with pytest.raises(ConfigError) as error:
        check_run_config(config)
    text = str(error.value)
    assert f"data.spaces.{space}.max_slots=0: expected an integer >= 1" in text
    assert f"data.spaces.{space} has unknown fields ['standardise']" in text
    assert f"data.spaces.{space}.table='{tmp_path}/missing.npz': expected an existing" in text


def test_train_checks_before_loading_the_backbone(tmp_path):
    config = load_config("tiny_elm")
    config.backbone.update(format="gguf", path=str(tmp_path / "missing.gguf"))
    config.train.checkpoint_every = -1
    with pytest.raises(ConfigError) as error:
        train(config, str(tmp_path / "workdir"))
    assert error.value.problems == [
        "train.checkpoint_every=-1: expected an integer >= 1",
        f"backbone.path='{tmp_path}/missing.gguf': expected an existing file or directory "
        "(a gguf checkpoint)"]
    assert not (tmp_path / "workdir").exists()


def test_the_movielens_fields_are_checked_with_the_rest():
    from elc.projects.movielens.config_checks import MOVIELENS_CHECKS
    config = load_config("movielens_elm", "cpu_quick")
    check_run_config(config, require_files=False, project_checks=MOVIELENS_CHECKS)
    config.prepare.holdout_movies = 1.0
    config.prepare.tasks = ("movie_genres", "movie_jokes")
    config.eval.interpolation_weights = (0.0, 1.5)
    config.eval.max_new_tokens = 0
    with pytest.raises(ConfigError) as error:
        check_run_config(config, require_files=False, project_checks=MOVIELENS_CHECKS)
    fields = [problem.split("=", 1)[0] for problem in error.value.problems]
    assert fields == ["prepare.holdout_movies", "prepare.tasks", "eval.max_new_tokens",
                      "eval.interpolation_weights"]
