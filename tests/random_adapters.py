"""Random LoRA adapters for a base GGUF, with the shapes of its projections (no model loaded).

Used where only serving matters (adapter hosting, memory), not what the adapter computes.
"""

from pathlib import Path

import gguf
import torch

from plateforme.training.adapter_gguf import write_lora_gguf

PROJECTIONS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}


def write_random_adapter(base: Path, out: Path, seed: int, rank: int = 16, std: float = 0.01) -> Path:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for tensor in gguf.GGUFReader(str(base)).tensors:
        parts = tensor.name.split(".")  # blk.N.<kind>.weight
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in PROJECTIONS:
            continue
        n_in, n_out = int(tensor.shape[0]), int(tensor.shape[1])  # ggml order: [in, out]
        prefix = f"base_model.model.model.layers.{parts[1]}.{PROJECTIONS[parts[2]]}"
        state[f"{prefix}.lora_A.weight"] = torch.randn(rank, n_in, generator=generator) * std
        state[f"{prefix}.lora_B.weight"] = torch.randn(n_out, rank, generator=generator) * std
    write_lora_gguf(state, base_gguf=base, alpha=2 * rank, out=out)
    return out
