"""Copy a GGUF file with metadata changes (tests: a chat template with tool support, FIM tokens)."""

from pathlib import Path

import gguf

_TOKENS = "tokenizer.ggml.tokens"


def _value(field: gguf.ReaderField):
    kind = field.types[0]
    if kind == gguf.GGUFValueType.ARRAY:
        if field.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if kind == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


def copy_with_changes(src: Path, dst: Path, strings: dict[str, str] | None = None,
                      uint32s: dict[str, int] | None = None, renamed_tokens: dict[int, str] | None = None) -> Path:
    """Copy `src` to `dst`, setting string / uint32 metadata keys and renaming vocabulary tokens."""
    strings, uint32s, renamed = strings or {}, uint32s or {}, renamed_tokens or {}
    reader = gguf.GGUFReader(src)
    arch = _value(reader.fields["general.architecture"])
    writer = gguf.GGUFWriter(str(dst), arch=arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture" \
                or field.name in strings or field.name in uint32s:
            continue
        value = _value(field)
        if field.name == _TOKENS and renamed:
            value = [renamed.get(i, token) for i, token in enumerate(value)]
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub)
    for key, text in strings.items():
        writer.add_string(key, text)
    for key, number in uint32s.items():
        writer.add_uint32(key, number)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def copy_with_chat_template(src: Path, dst: Path, template: str) -> Path:
    return copy_with_changes(src, dst, strings={"tokenizer.chat_template": template})


def copy_with_fim_tokens(src: Path, dst: Path, ids: tuple[int, int, int]) -> Path:
    """StarCoder-style FIM: tokens `ids` renamed <fim_prefix>, <fim_suffix>, <fim_middle>, and declared."""
    names = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    keys = ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id")
    return copy_with_changes(src, dst, uint32s=dict(zip(keys, ids)), renamed_tokens=dict(zip(ids, names)))
