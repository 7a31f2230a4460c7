"""A tiny random backbone learning a synthetic ELM task, for tests and quick demos.

The task: N random prototype vectors each have a name; prompts hold a noisy copy of one
prototype as a soft token and the target is its name. Held-out examples use fresh noise.

  python -m launch.train --config=configs/tiny_elm.py --workdir=/tmp/tiny_elm
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    del arg
    config = ml_collections.ConfigDict()
    config.backbone = ml_collections.ConfigDict(dict(
        format="random", path="", preset="tiny", tokenizer="byte", seed=0,
        dtype="float32", param_dtype="float32", attention_impl="xla", remat_policy="none"))
    config.model = ml_collections.ConfigDict()
    config.model.adapter = ml_collections.ConfigDict(dict(
        num_soft_tokens=1,
        hidden_dims=(64,),      # one hidden layer: the paper's 2-layer MLP
        activation="gelu",
        input_norm="none",      # none | l2 | rms
        output_scale=0.0,       # 0: match real token embeddings (median RMS after sqrt(d))
    ))
    config.data = ml_collections.ConfigDict(dict(
        source="synthetic",     # synthetic | jsonl | tfds
        train="", eval="",      # jsonl paths, or tfds split names
        tfds_name="", tfds_data_dir="",
        max_length=32,
        prompt_template="{prompt}\n",
        batch_size=32,
        eval_batch_size=32,
        seed=0,
    ))
    config.data.synthetic = ml_collections.ConfigDict(dict(
        num_entities=8, dim=16, noise=0.1, train_size=1024, eval_size=128, seed=0, space="vec"))
    config.data.spaces = ml_collections.ConfigDict()  # jsonl/tfds: name -> {table, ids, dim, max_slots}
    config.train = ml_collections.ConfigDict(dict(
        seed=0,
        stages=("adapter", "full"),
        grad_accum_steps=1,
        log_every=10,
        eval_every=100,
        max_eval_batches=8,
        checkpoint_every=50,
        keep_checkpoints=3,
        async_checkpoints=True,
    ))
    config.stage = ml_collections.ConfigDict()
    config.stage.adapter = ml_collections.ConfigDict(dict(
        steps=100, learning_rate=3e-3, warmup_steps=10, final_lr_ratio=0.1,
        weight_decay=0.0, clip_norm=1.0, trainable=("adapters/.*",)))
    config.stage.full = ml_collections.ConfigDict(dict(
        steps=200, learning_rate=1e-3, warmup_steps=20, final_lr_ratio=0.1,
        weight_decay=0.0, clip_norm=1.0, trainable=(".*",)))
    return config
