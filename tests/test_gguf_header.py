"""models/gguf_metadata.read_gguf_header reads what gguf's own GGUFReader reads (the adapter writer's base facts).

A small GGUF written by gguf.GGUFWriter with every kind of value (scalars, strings, arrays of
numbers and of strings, nested arrays) is read by both; the default model's header gives the facts
its llama.cpp config states. Unit tests: no server, no model loaded.
"""

import gguf
import numpy as np
import pytest

from plateforme.models.gguf_metadata import GgufHeaderError, read_gguf_header
from training_jobs import default_gguf


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_float32("llama.rope.freq_base", 10000.0)
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "bé", ""])
    writer.add_array("tokenizer.ggml.scores", [0.5, -1.0, 2.0, 0.0])
    writer.add_array("general.nested", [[1, 2], [3]])
    writer.add_string("general.name", "small")
    writer.add_uint64("general.big", 2**40)
    for name, shape in [("token_embd.weight", (8, 4)), ("blk.0.attn_q.weight", (4, 4)), ("output_norm.weight", (4,))]:
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_header_reader_agrees_with_gguf_reader(small_gguf):
    keys = {"general.architecture", "llama.block_count", "llama.attention.head_count", "llama.rope.freq_base",
            "tokenizer.ggml.add_bos_token", "general.name", "general.big", "no.such.key"}
    header = read_gguf_header(small_gguf, keys)
    reference = gguf.GGUFReader(str(small_gguf))
    expected = {key: reference.fields[key].contents() for key in keys if key in reference.fields}
    assert header.values == pytest.approx(expected) and "no.such.key" not in header.values
    assert header.values["general.big"] == 2**40 and header.values["general.name"] == "small"
    assert header.tensor_names == {t.name for t in reference.tensors} == {
        "token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight"}


def test_the_default_model_header():
    header = read_gguf_header(default_gguf(), {"general.architecture", "llama.block_count",
                                               "llama.attention.head_count", "llama.attention.head_count_kv"})
    assert header.values == {"general.architecture": "llama", "llama.block_count": 30,
                             "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3}
    assert len(header.tensor_names) == 272 and "blk.29.ffn_down.weight" in header.tensor_names


def test_truncated_and_foreign_files_are_refused(small_gguf, tmp_path):
    data = small_gguf.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[:200])
    with pytest.raises(GgufHeaderError, match="truncated"):
        read_gguf_header(truncated, {"general.architecture"})
    foreign = tmp_path / "model.safetensors"
    foreign.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(GgufHeaderError, match="not a GGUF file"):
        read_gguf_header(foreign, {"general.architecture"})
