"""GGUF import on small files written here in llama.cpp's Gemma 3 conventions.

The real 270M file (tests/model/test_gemma3_270m.py) covers F32, Q8_0, Q5_0, Q4_K and Q6_K
against transformers; these tests add the other tensor types, the tokenizer rebuild
and the error messages.
"""

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import dequantize, quantize

from elc.checkpoints.gguf_import import load_gguf
from elc.model.config import get_preset
from elc.checkpoints.layer_stack import LayerWeights

TINY = get_preset("tiny")
BYTE_PIECES = [f"<0x{i:02X}>" for i in range(256)]
# A toy BPE vocabulary: merges "t h -> th", "th e -> the", "c a -> ca", "ca t -> cat",
# "▁ cat -> ▁cat"; higher score merges first.
WORD_PIECES = ["▁", "t", "h", "e", "c", "a", "th", "the", "ca", "cat", "▁cat"]
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>"]


def toy_vocab():
    tokens = SPECIALS + BYTE_PIECES + WORD_PIECES
    types = [3] * len(SPECIALS) + [6] * 256 + [1] * len(WORD_PIECES)
    scores = [0.0] * (len(SPECIALS) + 256) + [-float(i) for i in range(len(WORD_PIECES))]
    while len(tokens) < TINY.vocab_size:
        tokens.append(f"<unused{len(tokens)}>")
        types.append(3)
        scores.append(0.0)
    return tokens, scores, types


def random_weights(seed=0, config=TINY) -> LayerWeights:
    rng = np.random.default_rng(seed)
    d, h, k, hd, m = (config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim,
                      config.mlp_dim)
    shapes = {"attention/q_proj": (d, h, hd), "attention/k_proj": (d, k, hd),
              "attention/v_proj": (d, k, hd), "attention/o_proj": (h, hd, d),
              "mlp/gate_proj": (d, m), "mlp/up_proj": (d, m), "mlp/down_proj": (m, d)}
    norms = ["attention/q_norm/scale", "attention/k_norm/scale", "pre_attention_norm/scale",
             "post_attention_norm/scale", "pre_ffw_norm/scale", "post_ffw_norm/scale"]
    layers = []
    for _ in range(config.num_layers):
        layer = {name: rng.normal(size=s).astype(np.float32) * 0.2 for name, s in shapes.items()}
        for name in norms:
            layer[name] = rng.normal(size=(hd if "q_norm" in name or "k_norm" in name else d,)
                                     ).astype(np.float32) * 0.3
        layers.append(layer)
    return LayerWeights(embedding=rng.normal(size=(config.vocab_size, d)).astype(np.float32),
                        final_norm=rng.normal(size=(d,)).astype(np.float32) * 0.3, layers=layers)


def llama_cpp_tensors(weights: LayerWeights, config=TINY) -> dict[str, np.ndarray]:
    """Tensors as llama.cpp's converter writes them: [out, in], norms stored as 1 + scale."""
    d = config.embed_dim
    out = {"token_embd.weight": weights.embedding, "output_norm.weight": weights.final_norm + 1}
    for i, layer in enumerate(weights.layers):
        p = f"blk.{i}."
        out[p + "attn_q.weight"] = layer["attention/q_proj"].reshape(d, -1).T
        out[p + "attn_k.weight"] = layer["attention/k_proj"].reshape(d, -1).T
        out[p + "attn_v.weight"] = layer["attention/v_proj"].reshape(d, -1).T
        out[p + "attn_output.weight"] = layer["attention/o_proj"].reshape(-1, d).T
        out[p + "ffn_gate.weight"] = layer["mlp/gate_proj"].T
        out[p + "ffn_up.weight"] = layer["mlp/up_proj"].T
        out[p + "ffn_down.weight"] = layer["mlp/down_proj"].T
        for gguf_name, name in [("attn_q_norm", "attention/q_norm/scale"),
                                ("attn_k_norm", "attention/k_norm/scale"),
                                ("attn_norm", "pre_attention_norm/scale"),
                                ("post_attention_norm", "post_attention_norm/scale"),
                                ("ffn_norm", "pre_ffw_norm/scale"),
                                ("post_ffw_norm", "post_ffw_norm/scale")]:
            out[p + gguf_name + ".weight"] = layer[name] + 1
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def write_gguf(path, tensors, *, matrix_type=Q.F32, arch="gemma3", raw=None, config=TINY):
    """Writes a tiny Gemma 3 GGUF; 2-D tensors other than the embedding in ``matrix_type``.
    ``raw`` maps names to (bytes array, type) written as they are."""
    writer = GGUFWriter(str(path), arch)
    meta = {"block_count": config.num_layers, "embedding_length": config.embed_dim,
            "feed_forward_length": config.mlp_dim, "attention.head_count": config.num_heads,
            "attention.head_count_kv": config.num_kv_heads, "attention.key_length": config.head_dim,
            "attention.value_length": config.head_dim,
            "attention.sliding_window": config.sliding_window,
            "context_length": config.context_length}
    for key, value in meta.items():
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_float32(f"{arch}.rope.freq_base", 1e6)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    tokens, scores, types = toy_vocab()
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    for name, index in [("bos", 2), ("eos", 1), ("unknown", 3), ("padding", 0)]:
        writer.add_uint32(f"tokenizer.ggml.{name}_token_id", index)
    raw = raw or {}
    for name, value in tensors.items():
        if name in raw:
            data, kind = raw[name]
            writer.add_tensor(name, data, raw_dtype=kind)  # uint8 data: its shape is in bytes
        elif value.ndim == 2 and name != "token_embd.weight" and matrix_type != Q.F32:
            writer.add_tensor(name, quantize(value, matrix_type), raw_dtype=matrix_type)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_f32_file_loads_exactly(tmp_path):
    weights = random_weights()
    write_gguf(tmp_path / "m.gguf", llama_cpp_tensors(weights))
    config, loaded, _ = load_gguf(tmp_path / "m.gguf")
    assert config == TINY
    np.testing.assert_array_equal(loaded.embedding, weights.embedding)
    np.testing.assert_allclose(loaded.final_norm, weights.final_norm, atol=1e-6)
    for got, want in zip(loaded.layers, weights.layers):
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)


# Relative error bound of each type against the original float weights (normal data):
# about half a quantisation step over the block's range.
TYPE_TOLERANCE = {Q.F16: 1e-3, Q.BF16: 1e-2, Q.Q8_0: 1e-2, Q.Q5_0: 5e-2, Q.Q5_1: 5e-2,
                  Q.Q4_0: 1.2e-1, Q.Q4_1: 1.2e-1}


@pytest.mark.parametrize("kind", list(TYPE_TOLERANCE), ids=lambda k: k.name)
def test_quantised_types_dequantise_close_to_the_original(tmp_path, kind):
    weights = random_weights()
    write_gguf(tmp_path / "m.gguf", llama_cpp_tensors(weights), matrix_type=kind)
    _, loaded, _ = load_gguf(tmp_path / "m.gguf")
    for got, want in zip(loaded.layers, weights.layers):
        for name in ("attention/q_proj", "attention/o_proj", "mlp/gate_proj", "mlp/down_proj"):
            error = np.linalg.norm(got[name] - want[name]) / np.linalg.norm(want[name])
            assert error < TYPE_TOLERANCE[kind], (name, error)


K_QUANT_BLOCK_BYTES = {Q.Q2_K: 84, Q.Q3_K: 110, Q.Q4_K: 144, Q.Q5_K: 176, Q.Q6_K: 210}


@pytest.mark.parametrize("kind", list(K_QUANT_BLOCK_BYTES), ids=lambda k: k.name)
def test_k_quant_tensors_keep_their_orientation(tmp_path, kind):
    # The gguf package cannot quantise K-types, so the test writes random blocks (redrawn
    # until finite) and checks that the loader places gguf's dequantisation of them right.
    # K-blocks hold 256 values, so the MLP is widened to 256 for ffn_down's rows.
    config = TINY.replace(mlp_dim=256)
    tensors = llama_cpp_tensors(random_weights(config=config), config)
    rng = np.random.default_rng(1)
    while True:
        blocks = rng.integers(0, 256, size=(config.embed_dim, K_QUANT_BLOCK_BYTES[kind]),
                              dtype=np.uint8)
        with np.errstate(invalid="ignore", over="ignore"):
            values = dequantize(blocks, kind)
        if np.isfinite(values).all():
            break
    write_gguf(tmp_path / "m.gguf", tensors, config=config,
               raw={"blk.3.ffn_down.weight": (blocks, kind)})
    _, loaded, _ = load_gguf(tmp_path / "m.gguf")
    np.testing.assert_array_equal(loaded.layers[3]["mlp/down_proj"],
                                  values.reshape(config.embed_dim, 256).T)


def test_tokenizer_rebuilt_from_metadata(tmp_path):
    write_gguf(tmp_path / "m.gguf", llama_cpp_tensors(random_weights()))
    _, _, tokenizer = load_gguf(tmp_path / "m.gguf")
    tokens, _, _ = toy_vocab()
    piece = tokens.index
    # "the cat": no dummy prefix, so "the" stays unprefixed and " cat" becomes "▁cat";
    # "ž" is not in the vocabulary and falls back to its UTF-8 bytes C5 BE.
    assert tokenizer.encode("the cat") == [2, piece("the"), piece("▁cat")]
    assert tokenizer.encode("<start_of_turn>ž", add_bos=False) == [
        piece("<start_of_turn>"), piece("<0xC5>"), piece("<0xBE>")]
    assert tokenizer.decode(tokenizer.encode("the cat ž")) == "the cat ž"
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id) == (2, 1, 0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF file not found: .*nothing.gguf"):
        load_gguf(tmp_path / "nothing.gguf")


def test_not_a_gguf_file(tmp_path):
    (tmp_path / "notes.gguf").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.gguf is not a GGUF file \(starts with b'hell'"):
        load_gguf(tmp_path / "notes.gguf")


def test_other_architecture(tmp_path):
    tensors = llama_cpp_tensors(random_weights())
    write_gguf(tmp_path / "llama.gguf", tensors, arch="llama")
    with pytest.raises(ValueError, match="architecture is 'llama'; elc reads 'gemma3' only"):
        load_gguf(tmp_path / "llama.gguf")


def test_unsupported_tensor_type_is_named(tmp_path):
    tensors = llama_cpp_tensors(random_weights())
    raw = {"blk.1.attn_v.weight": (np.zeros((32, 64), np.int8), Q.I8)}
    write_gguf(tmp_path / "m.gguf", tensors, raw=raw)
    with pytest.raises(ValueError, match="blk.1.attn_v.weight has type I8"):
        load_gguf(tmp_path / "m.gguf")


def test_shape_mismatch_is_named(tmp_path):
    tensors = llama_cpp_tensors(random_weights())
    tensors["blk.4.ffn_up.weight"] = tensors["blk.4.ffn_up.weight"][:100]
    write_gguf(tmp_path / "m.gguf", tensors)
    with pytest.raises(ValueError, match=r"blk.4.ffn_up.weight has shape \(100, 64\), but the "
                                         r"config expects \(128, 64\)"):
        load_gguf(tmp_path / "m.gguf")


def test_missing_tensor_is_named(tmp_path):
    tensors = llama_cpp_tensors(random_weights())
    del tensors["blk.6.post_ffw_norm.weight"]
    write_gguf(tmp_path / "m.gguf", tensors)
    with pytest.raises(ValueError, match="no tensor 'blk.6.post_ffw_norm.weight'"):
        load_gguf(tmp_path / "m.gguf")
