"""The default ELM run configuration; configs/*.py start from it and override fields."""

from __future__ import annotations

import ml_collections


def sample_config() -> ml_collections.ConfigDict:
    """How launch.sample generates (see elc.generation.sampler.generate)."""
    return ml_collections.ConfigDict(dict(
        max_new_tokens=64,
        temperature=0.0,    # 0: greedy
        top_k=0,            # 0: no top-k filter
        top_p=1.0,          # 1: no nucleus filter
        seed=0,
        stop_at_eos=True,
    ))


def backbone_config() -> ml_collections.ConfigDict:
    """Which Gemma 3 decoder to load and how to run it (see elc.checkpoints.backbone)."""
    return ml_collections.ConfigDict(dict(
        format="gguf",          # gguf | hf | orbax | random
        path="",                # empty + gguf: the packaged Gemma 3 270M
        preset="270m",          # architecture for orbax / random, and what launch.plan plans
        tokenizer="",           # tokenizer.model path, or "byte" (tests); gguf carries its own
        seed=0,                 # init seed for format=random
        dtype="float32",        # compute dtype: float32 | bfloat16
        param_dtype="float32",
        attention_impl="xla",   # xla | cudnn (GPU, bf16)
        # Keep each layer's matmul outputs, recompute the elementwise work: the 1B's step
        # at 8 x 512 plans at 28 GiB instead of 51 (launch.plan), at the same CPU speed.
        remat_policy="dots_saveable"))   # dots_saveable | full | none


def elm_config() -> ml_collections.ConfigDict:
    """Every field the trainer reads, with defaults. See configs/tiny_elm.py for use."""
    config = ml_collections.ConfigDict()
    config.backbone = backbone_config()
    config.model = ml_collections.ConfigDict()
    config.model.adapter = ml_collections.ConfigDict(dict(
        num_soft_tokens=1,      # soft tokens per vector
        hidden_dims=(1024,),    # one hidden layer: the paper's 2-layer MLP
        activation="gelu",      # gelu | relu | silu | tanh
        input_norm="none",      # none | l2 | rms
        output_scale=0.0,       # 0: start soft tokens at the median RMS of real token embeddings
        # random | aligned: the output layer fitted so that a vector's soft token points
        # where its training answers' token embeddings do (elc/train/adapter_alignment.py)
        init="random",
        align_ridge=1.0,        # aligned: L2 penalty, in units of a hidden feature's variance
    ))
    config.data = ml_collections.ConfigDict(dict(
        source="synthetic",     # synthetic | jsonl | tfds
        train="", eval="",      # jsonl paths, or tfds split names
        tfds_name="", tfds_data_dir="",
        max_length=64,          # tokens per row
        examples_per_row=1,     # > 1: pack up to this many examples into each row
        max_target_tokens=0,    # target tokens per row, averaged over a device's rows; 0: measure
        prompt_template="{prompt}\n",
        batch_size=16,
        eval_batch_size=16,
        seed=0,
    ))
    # The built-in task: name which of N random prototype vectors (plus noise) was given.
    config.data.synthetic = ml_collections.ConfigDict(dict(
        num_entities=8, dim=16, noise=0.1, train_size=1024, eval_size=128, seed=0, space="vec"))
    # jsonl / tfds: one entry per space, {table: .npz or .npy, ids: ids file, dim, max_slots,
    # standardize: feed the model each vector standardised with the table's per-dimension
    # mean and std}.
    config.data.spaces = ml_collections.ConfigDict()
    # Device mesh (see elc/sharding.py): sizes of the data, fsdp and tensor axes, one of
    # them -1 for "all remaining devices"; dcn_data > 1 spans TPU slices.
    config.mesh = ml_collections.ConfigDict(dict(
        data=-1, fsdp=1, tensor=1, dcn_data=1,
        rules="fsdp",           # fsdp | fsdp_tp (MaxText-style tensor parallelism)
    ))
    config.train = ml_collections.ConfigDict(dict(
        seed=0,
        stages=("adapter", "full"),  # run in this order; each defined under config.stage
        grad_accum_steps=1,
        logits_chunk_size=128,  # target positions per row projected to the vocabulary at once
        log_every=10,
        eval_every=100,
        max_eval_batches=8,
        checkpoint_every=50,
        checkpoint_dir="",      # empty: WORKDIR/checkpoints; multi-host: shared (gs://...)
        keep_checkpoints=3,
        async_checkpoints=True,
        # A step with a NaN or infinite loss or gradient norm: "stop" ends the run with an
        # error naming the step; "skip" leaves the parameters as they were and counts it.
        nonfinite_updates="stop",
    ))
    config.sample = sample_config()
    # A stage trains the parameters whose paths match `trainable`. To keep the 168M-parameter
    # embedding table frozen in a full stage:
    #   --config.stage.full.trainable='("adapters/.*", "backbone/(?!embedder/).*")'
    config.stage = ml_collections.ConfigDict()
    # lr_multipliers: (regex, factor) pairs; matching parameters learn at factor x the
    # stage's rate, e.g. (("adapters/.*", 30.0),) keeps adapters learning fast in a stage
    # that fine-tunes the backbone gently.
    config.stage.adapter = ml_collections.ConfigDict(dict(
        steps=100, learning_rate=1e-3, warmup_steps=10, final_lr_ratio=0.1,
        weight_decay=0.0, clip_norm=1.0, trainable=("adapters/.*",), lr_multipliers=(),
        lora=lora_config()))
    config.stage.full = ml_collections.ConfigDict(dict(
        steps=100, learning_rate=1e-5, warmup_steps=10, final_lr_ratio=0.1,
        weight_decay=0.0, clip_norm=1.0, trainable=(".*",), lr_multipliers=(),
        lora=lora_config()))
    return config


def lora_config() -> ml_collections.ConfigDict:
    """A stage's LoRA settings (see elc/train/lora.py); rank 0 turns LoRA off. A LoRA
    stage trains the pairs and its ``trainable`` (e.g. ``("adapters/.*",)``); the kernels
    it adapts stay frozen."""
    return ml_collections.ConfigDict(dict(
        rank=0,
        alpha=16.0,             # updates scaled by alpha / rank
        dropout=0.0,            # drops input features of the LoRA path (shared per step)
        targets=(r"backbone/(groups|tail)/layer_\d+/attention/(q|k|v|o)_proj",)))
