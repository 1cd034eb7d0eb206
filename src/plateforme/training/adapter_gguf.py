"""Write a peft LoRA adapter as a llama.cpp LoRA GGUF for the base GGUF it was trained on.

llama.cpp applies `scale * B @ A` (scale = alpha / rank) to each adapted weight, with tensors
named `<base tensor>.lora_a` (rank x in) and `.lora_b` (out x rank), as peft stores them.
The base was loaded by transformers from the GGUF, which reorders llama q/k rows into Hugging
Face's rotary layout; the adapter trained in that layout, so q/k `lora_b` rows are put back into
llama.cpp's order (the same interleaving the importer applies to base weights).
"""

import os
import re
from pathlib import Path

import gguf
import torch

from plateforme.models.importer.tensors import interleave_rotary_rows
from plateforme.models.gguf_metadata import GgufHeaderError, read_gguf_header

_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
_ARCHS = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}


class AdapterExportError(RuntimeError):
    pass


def _base_header(base_gguf: Path) -> tuple[str, int, dict[str, int], frozenset[str]]:
    """(architecture, block count, head counts of attn_q / attn_k, tensor names) of the base GGUF."""
    try:
        arch = read_gguf_header(base_gguf, {"general.architecture"}).values.get("general.architecture")
        if arch is None:
            raise AdapterExportError("the base GGUF has no 'general.architecture' metadata")
        keys = {f"{arch}.block_count", f"{arch}.attention.head_count", f"{arch}.attention.head_count_kv"}
        header = read_gguf_header(base_gguf, keys)
    except (OSError, GgufHeaderError) as exc:
        raise AdapterExportError(f"cannot read the base GGUF {base_gguf}: {exc}") from exc
    for key in sorted(keys - {f"{arch}.attention.head_count_kv"}):
        if key not in header.values:
            raise AdapterExportError(f"the base GGUF has no {key!r} metadata")
    heads = {"attn_q": int(header.values[f"{arch}.attention.head_count"])}
    heads["attn_k"] = int(header.values.get(f"{arch}.attention.head_count_kv", heads["attn_q"]))
    return arch, int(header.values[f"{arch}.block_count"]), heads, header.tensor_names


def write_lora_gguf(lora_state: dict[str, torch.Tensor], *, base_gguf: Path, alpha: float, out: Path) -> None:
    """Write `lora_state` (peft.get_peft_model_state_dict) to `out`, atomically."""
    arch_name, n_blocks, heads, base_names = _base_header(Path(base_gguf))
    if arch_name not in _ARCHS:
        raise AdapterExportError(f"unknown base architecture {arch_name!r}")
    names = gguf.get_tensor_name_map(_ARCHS[arch_name], n_blocks)
    tensors: dict[str, torch.Tensor] = {}
    for key, value in lora_state.items():
        match = _KEY.match(key)
        if match is None:
            raise AdapterExportError(f"unexpected adapter tensor {key!r}: only LoRA A/B weights can be exported")
        target = names.get_name(match["module"])
        if target is None or f"{target}.weight" not in base_names:
            raise AdapterExportError(f"adapter tensor {key!r} matches no weight of the base GGUF")
        weight = value.detach().to(torch.float32).cpu()
        kind = target.split(".")[-1]
        if match["part"] == "B" and kind in heads and arch_name in ("llama", "mistral"):
            weight = interleave_rotary_rows(weight, heads[kind])
        tensors[f"{target}.weight.lora_{match['part'].lower()}"] = weight
    if not tensors:
        raise AdapterExportError("the adapter has no LoRA tensors")
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    writer = gguf.GGUFWriter(str(tmp), arch_name)
    writer.add_string("general.type", "adapter")
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name].numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
