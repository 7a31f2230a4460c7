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
import jax.numpy as jnp
import numpy as np
from flax.core import meta

from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3
from elc.generation.sampler import generate
from elc.sharding import logical_rules, make_mesh, put_sharded, strip_boxes, tree_shardings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import abstract_backbone, random_backbone  # noqa: E402

CONFIG = dataclasses.replace(get_preset("tiny"), sliding_window=6)
MESHES = [("fsdp", 1, 8, 1), ("fsdp_tp", 2, 2, 2)]


def main():
    elm = ELM(CONFIG, space_dims({"vec": 5}), AdapterConfig(num_soft_tokens=2, hidden_dims=(16,),
                                                            output_scale=3.0))
    init_bank = lambda: init_adapters(elm, jax.random.key(1))
    abstract = {"backbone": abstract_backbone(CONFIG), "adapters": jax.eval_shape(init_bank)}
    params = {"backbone": random_backbone(CONFIG),
              "adapters": jax.device_get(jax.jit(lambda: meta.unbox(init_bank()))())}
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
