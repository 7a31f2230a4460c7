"""Gemma 3 presets against the published model cards, and config validation."""

import pytest
from helpers import load_config

from elc.model.config import GemmaConfig, get_preset

# Published hyperparameters (Gemma 3 technical report, Table 1 and the released
# config.json files): layers, d_model, query heads, kv heads, head_dim, mlp width.
PUBLISHED = {
    "270m": (18, 640, 4, 1, 256, 2048),
    "1b": (26, 1152, 4, 1, 256, 6912),
    "4b": (34, 2560, 8, 4, 256, 10240),
    "12b": (48, 3840, 16, 8, 256, 15360),
    "27b": (62, 5376, 32, 16, 128, 21504),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_match_published_shapes(name):
    cfg = get_preset(name)
    shape = (cfg.num_layers, cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
             cfg.mlp_dim)
    assert shape == PUBLISHED[name]
    assert cfg.vocab_size == 262_144
    assert cfg.local_rope_base == 10_000 and cfg.global_rope_base == 1_000_000
    small = name in ("270m", "1b")
    assert cfg.sliding_window == (512 if small else 1024)
    assert cfg.global_rope_scale == (1.0 if small else 8.0)


def test_parameter_counts_match_model_names():
    # The names give total parameters in millions/billions (embedding included).
    expected = {"270m": 268e6, "1b": 1.0e9, "4b": 3.88e9, "12b": 11.77e9, "27b": 27.0e9}
    for name, count in expected.items():
        assert get_preset(name).num_params() == pytest.approx(count, rel=0.03), name


def test_27b_query_scale_uses_model_width_over_heads():
    assert get_preset("27b").query_scale == pytest.approx((5376 / 32) ** -0.5)
    assert get_preset("270m").query_scale == pytest.approx(256 ** -0.5)


def test_layer_pattern_and_groups():
    cfg = get_preset("1b")
    assert cfg.layer_types[:6] == ("local",) * 5 + ("global",)
    assert [i for i, t in enumerate(cfg.layer_types) if t == "global"] == [5, 11, 17, 23]
    assert (cfg.num_scanned_groups, cfg.num_tail_layers) == (4, 2)


@pytest.mark.parametrize("field,value,message", [
    ("num_heads", 3, "multiple of num_kv_heads"),
    ("head_dim", 15, "even"),
    ("dtype", "float8", "dtype"),
    ("attention_impl", "flash", "attention_impl"),
    ("embed_dim", 0, "positive"),
    ("attention_pattern", ("local", "sideways"), "attention_pattern"),
])
def test_bad_values_are_named(field, value, message):
    with pytest.raises(ValueError, match=message) as info:
        get_preset("tiny", **{field: value})
    assert field in str(info.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown Gemma preset 'huge'"):
        get_preset("huge")
    assert isinstance(get_preset("tiny"), GemmaConfig)


# ------------------------------------------------------------ every config field is read

def _leaf_names(config, prefix=()):
    """(path, the name a reader uses) of every leaf. Under maps whose keys are chosen by the
    user (stages, spaces, task weights) the reader iterates the map, so the map's own name
    stands for its entries."""
    for key, value in config.items():
        path = prefix + (key,)
        if path in (("prepare", "weights"),):
            yield ".".join(path), key
        elif hasattr(value, "items"):
            inner = _leaf_names(value, path)
            if prefix in ((), ("data",)) and key in ("stage", "spaces"):
                inner = ((p, n) for entry in value.values() for p, n in _leaf_names(entry, path))
            yield from inner
        else:
            yield ".".join(path), key


def test_every_config_field_is_read_by_some_code():
    """A static check: each leaf's name must be read somewhere in elc/ or launch/ (as an
    attribute ``.name`` or a key ``"name"``), outside the files that define the configs. It
    catches the usual way a field stops having an effect: added to a config and never
    wired, or its reader removed. (A common name such as ``seed`` is satisfied by any
    reader; such fields are few and named in the same places they are used.)"""
    import os
    import re
    from helpers import ROOT
    from elc.train.default_config import elm_config
    sources = []
    for top in ("elc", "launch"):
        for directory, _, files in os.walk(os.path.join(ROOT, top)):
            sources += [open(os.path.join(directory, f)).read() for f in files
                        if f.endswith(".py") and f != "default_config.py"]
    code = "\n".join(sources)
    configs = [elm_config(), load_config("tiny_elm"), load_config("elm_270m"),
               load_config("gemma3_270m"), load_config("movielens_elm", "full"),
               load_config("movielens_elm", "cpu_quick"), load_config("describe")]
    unread = sorted({path for config in configs for path, name in _leaf_names(config)
                     if not re.search(rf"\.{name}\b|[\"']{name}[\"']", code)})
    assert not unread, f"config fields nothing reads: {unread}"
