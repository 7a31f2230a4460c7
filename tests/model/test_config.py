"""Gemma 3 presets against the published model cards, and config validation."""

import pytest

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
