"""Run as a script with fake CPU devices: prints the shardings the trainer would use.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/probes/sharding_probe.py RULES D F T

Prints JSON {leaf path: [partition spec, per-device shard shape]} for the train state
of stage 'full' of configs/tiny_elm.py on a data x fsdp x tensor mesh, built as the
trainer builds it (elc.train.build).
"""

import json
import os
import sys

import jax

from elc.sharding import logical_rules, make_mesh, strip_boxes
from elc.train.build import (abstract_train_state, build_elm, init_params, stages_from_config,
                             state_factory)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import load_config  # noqa: E402


def main(rules_name, data, fsdp, tensor):
    mesh = make_mesh({"data": data, "fsdp": fsdp, "tensor": tensor, "dcn_data": 1})
    rules = logical_rules(rules_name)
    config = load_config("tiny_elm")
    elm = build_elm(config)
    stage = next(s for s in stages_from_config(config) if s.name == "full")
    shardings = abstract_train_state(elm, stage, mesh, rules).shardings
    new_state, _ = state_factory(stage, 0)
    # Initialised outside the mesh, as the trainer does (see elc.train.build.init_params).
    state = jax.jit(lambda: strip_boxes(new_state(init_params(elm, jax.random.key(0)),
                                                  jax.random.key_data(jax.random.key(2)))),
                    out_shardings=shardings)()
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        spec = [list(a) if isinstance(a, tuple) else a for a in leaf.sharding.spec]
        while spec and spec[-1] is None:  # P('x') and P('x', None) are the same sharding
            spec.pop()
        out[jax.tree_util.keystr(path)] = [spec, list(leaf.addressable_shards[0].data.shape)]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:5]))
