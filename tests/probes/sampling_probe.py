"""Run as a script with fake CPU devices: greedy ELM generation, on one device and sharded.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/probes/sampling_probe.py

Prints JSON {"single": tokens, "<rules> <data>x<fsdp>x<tensor>": {"tokens": ..., "q_proj":
partition spec of a sharded parameter}} for a tiny random ELM with slot vectors.
"""

import dataclasses
import json
import os
import sys

import flax.linen as nn
import jax
import numpy as np

from elc.model.config import get_preset
from elc.generation.sampler import generate
from elc.sharding import logical_rules, make_mesh, put_sharded, strip_boxes, tree_shardings
from elc.train.build import abstract_params, build_elm, init_params
from elc.train.default_config import elm_config

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import random_backbone  # noqa: E402

CONFIG = dataclasses.replace(get_preset("tiny"), sliding_window=6)
MESHES = [("fsdp", 1, 8, 1), ("fsdp_tp", 2, 2, 2)]


def elm_run_config():
    """A synthetic run whose space ``vec`` has 5-d vectors, two soft tokens per vector."""
    config = elm_config()
    config.backbone.update(format="random", preset="tiny", tokenizer="byte")
    config.data.synthetic.update(dim=5, space="vec")
    config.model.adapter.update(num_soft_tokens=2, hidden_dims=(16,), output_scale=3.0)
    return config


def main():
    elm = build_elm(elm_run_config(), backbone=CONFIG)
    abstract = abstract_params(elm)
    params = {"backbone": random_backbone(CONFIG),
              "adapters": jax.device_get(jax.jit(
                  lambda: strip_boxes(init_params(elm, jax.random.key(1))["adapters"]))())}
    rng = np.random.default_rng(0)
    prompts = [[2] + rng.integers(3, 262, size=n).tolist() for n in (4, 17, 9)]
    slots = [{"vec": {"vectors": rng.normal(size=(2, 5)).astype(np.float32),
                      "mask": np.array(used), "positions": np.array(positions, np.int32)}}
             for used, positions in [([True, False], [[1, 2], [40, 40]]),
                                     ([True, True], [[3, 4], [10, 11]]),
                                     ([False, False], [[40, 40], [40, 40]])]]
    run = lambda p: generate(elm, {"params": p}, prompts, max_new_tokens=8, slots=slots)
    out = {"single": run(params)}
    for rules_name, data, fsdp, tensor in MESHES:
        mesh = make_mesh({"data": data, "fsdp": fsdp, "tensor": tensor, "dcn_data": 1})
        rules = logical_rules(rules_name)
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
            sharded = put_sharded(params, tree_shardings(abstract, mesh, rules))
            q_proj = sharded["backbone"]["groups"]["layer_0"]["attention"]["q_proj"]
            out[f"{rules_name} {data}x{fsdp}x{tensor}"] = {
                "tokens": run(sharded),
                "q_proj": [list(a) if isinstance(a, tuple) else a for a in q_proj.sharding.spec]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
