"""Random LoRA adapters for a base GGUF, with the shapes of its projections (no model loaded).

Used where only serving matters (adapter hosting, memory), not what the adapter computes.

Parsing a GGUF with gguf.GGUFReader takes seconds (it materialises every vocabulary entry), and
write_lora_gguf parses the base once per adapter written: the base's reader is parsed once per
process and handed to write_lora_gguf for every adapter on that base (the same read-only view of
the same file, so the adapters written are byte for byte those written without it).
"""

import functools
from pathlib import Path
from unittest import mock

import gguf
import torch

from plateforme.training.adapter_gguf import write_lora_gguf

PROJECTIONS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
_READER = gguf.GGUFReader


@functools.lru_cache(maxsize=4)
def _parsed(path: str, size: int, mtime_ns: int) -> gguf.GGUFReader:
    return _READER(path)


def base_reader(base: Path) -> gguf.GGUFReader:
    """The base GGUF's reader, parsed once per process (and again if the file changes)."""
    stat = Path(base).stat()
    return _parsed(str(Path(base).resolve()), stat.st_size, stat.st_mtime_ns)


def write_random_adapter(base: Path, out: Path, seed: int, rank: int = 16, std: float = 0.01) -> Path:
    generator = torch.Generator().manual_seed(seed)
    reader = base_reader(base)
    state = {}
    for tensor in reader.tensors:
        parts = tensor.name.split(".")  # blk.N.<kind>.weight
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in PROJECTIONS:
            continue
        n_in, n_out = int(tensor.shape[0]), int(tensor.shape[1])  # ggml order: [in, out]
        prefix = f"base_model.model.model.layers.{parts[1]}.{PROJECTIONS[parts[2]]}"
        state[f"{prefix}.lora_A.weight"] = torch.randn(rank, n_in, generator=generator) * std
        state[f"{prefix}.lora_B.weight"] = torch.randn(n_out, rank, generator=generator) * std

    def reader_for(path):
        return reader if Path(path).resolve() == Path(base).resolve() else _READER(path)

    with mock.patch.object(gguf, "GGUFReader", reader_for):
        write_lora_gguf(state, base_gguf=base, alpha=2 * rank, out=out)
    return out
