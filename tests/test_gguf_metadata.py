"""The fast GGUF metadata scan agrees with the gguf package's full reader."""

import gguf
from gguf_copy import _value

from plateforme.models.gguf_metadata import read_gguf_metadata
from plateforme.models.registry import ModelRegistry

KEYS = {"general.architecture", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token", "llama.context_length", "llama.rope.freq_base", "no.such.key"}


def test_scan_matches_gguf_reader():
    path = ModelRegistry.from_file(None).specs[0].weights_path()
    reader = gguf.GGUFReader(path)
    tokens = _value(reader.fields["tokenizer.ggml.tokens"])
    wanted = {tokens[0], tokens[7], tokens[4242], tokens[-1], "<not a token>"}
    values, found = read_gguf_metadata(path, KEYS, wanted)
    expected = {k: _value(reader.fields[k]) for k in KEYS if k in reader.fields}
    assert values.keys() == expected.keys() and len(values) == 6
    for key, value in expected.items():
        if isinstance(value, float):
            assert abs(values[key] - value) < 1e-3, key
        else:
            assert values[key] == value, key
    assert found == {t: tokens.index(t) for t in wanted if t in tokens}
    assert len(found) == 4
