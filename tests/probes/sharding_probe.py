"""Run as a script with fake CPU devices: prints the shardings the trainer would use.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/probes/sharding_probe.py RULES D F T

Prints JSON {leaf path: [partition spec, per-device shard shape]} for the train state
of the tiny ELM (stage 'full') on a data x fsdp x tensor mesh.
"""

import json
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import meta

from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3
from elc.sharding import logical_rules, make_mesh, tree_shardings
from elc.train.optimizer import OptimizerConfig, make_optimizer
from elc.train.state import create_state


def main(rules_name, data, fsdp, tensor):
    mesh = make_mesh({"data": data, "fsdp": fsdp, "tensor": tensor, "dcn_data": 1})
    rules = logical_rules(rules_name)
    config = get_preset("tiny")
    elm = ELM(config, space_dims({"vec": 16}), AdapterConfig(hidden_dims=(64,)))
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-3, warmup_steps=0, decay_steps=2))

    def init():
        params = {"backbone": Gemma3(config).init(jax.random.key(0),
                                                  jnp.zeros((1, 1), jnp.int32))["params"],
                  "adapters": init_adapters(elm, jax.random.key(1))}
        return create_state(params, [".*"], optimizer, 0, jax.random.key_data(jax.random.key(2)))

    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        abstract = jax.eval_shape(init)
        shardings = tree_shardings(abstract, mesh, rules)
        state = jax.jit(lambda: meta.unbox(init()), out_shardings=shardings)()
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        spec = [list(a) if isinstance(a, tuple) else a for a in leaf.sharding.spec]
        while spec and spec[-1] is None:  # P('x') and P('x', None) are the same sharding
            spec.pop()
        out[jax.tree_util.keystr(path)] = [spec, list(leaf.addressable_shards[0].data.shape)]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:5]))
