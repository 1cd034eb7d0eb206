"""Checkpoint tensors -> llama.cpp ("llama" graph) tensors: names, q/k row order, stacked experts.

Both layouts are mapped onto the GGUF names of llama.cpp's llama architecture, which also runs
Mistral and Mixtral:

- Mistral-native weights (mistral-inference names) already keep each attention head's rotary
  pairs interleaved, the order llama.cpp expects: they are copied as they are.
- Hugging Face q_proj/k_proj rows were reordered by HF's conversion script (per head: all first
  halves of the rotary pairs, then all second halves); `interleave_rotary_rows` undoes that, with
  the key/value head count for k_proj.
- Mixtral experts (one w1/w2/w3 matrix per expert) are stacked into one 3-D tensor per kind:
  ffn_gate_exps (w1), ffn_down_exps (w2), ffn_up_exps (w3); the router becomes ffn_gate_inp.
"""

import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from safetensors import safe_open

from plateforme.models.importer.checkpoint import Checkpoint, ImportFailed

# (pattern on the checkpoint name, GGUF name template); {0} is the layer, {1} the expert.
_NATIVE = [
    (r"tok_embeddings\.weight", "token_embd.weight"),
    (r"norm\.weight", "output_norm.weight"),
    (r"output\.weight", "output.weight"),
    (r"layers\.(\d+)\.attention\.wq\.weight", "blk.{0}.attn_q.weight"),
    (r"layers\.(\d+)\.attention\.wk\.weight", "blk.{0}.attn_k.weight"),
    (r"layers\.(\d+)\.attention\.wv\.weight", "blk.{0}.attn_v.weight"),
    (r"layers\.(\d+)\.attention\.wo\.weight", "blk.{0}.attn_output.weight"),
    (r"layers\.(\d+)\.attention_norm\.weight", "blk.{0}.attn_norm.weight"),
    (r"layers\.(\d+)\.ffn_norm\.weight", "blk.{0}.ffn_norm.weight"),
    (r"layers\.(\d+)\.feed_forward\.w1\.weight", "blk.{0}.ffn_gate.weight"),
    (r"layers\.(\d+)\.feed_forward\.w2\.weight", "blk.{0}.ffn_down.weight"),
    (r"layers\.(\d+)\.feed_forward\.w3\.weight", "blk.{0}.ffn_up.weight"),
    (r"layers\.(\d+)\.feed_forward\.gate\.weight", "blk.{0}.ffn_gate_inp.weight"),
    (r"layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w1\.weight", "blk.{0}.ffn_gate_exps.weight"),
    (r"layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w2\.weight", "blk.{0}.ffn_down_exps.weight"),
    (r"layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w3\.weight", "blk.{0}.ffn_up_exps.weight"),
]
_HF = [
    (r"model\.embed_tokens\.weight", "token_embd.weight"),
    (r"model\.norm\.weight", "output_norm.weight"),
    (r"lm_head\.weight", "output.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.q_proj\.weight", "blk.{0}.attn_q.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.k_proj\.weight", "blk.{0}.attn_k.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.v_proj\.weight", "blk.{0}.attn_v.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", "blk.{0}.attn_output.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", "blk.{0}.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", "blk.{0}.ffn_norm.weight"),
    (r"model\.layers\.(\d+)\.mlp\.gate_proj\.weight", "blk.{0}.ffn_gate.weight"),
    (r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", "blk.{0}.ffn_down.weight"),
    (r"model\.layers\.(\d+)\.mlp\.up_proj\.weight", "blk.{0}.ffn_up.weight"),
    (r"model\.layers\.(\d+)\.block_sparse_moe\.gate\.weight", "blk.{0}.ffn_gate_inp.weight"),
    (r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w1\.weight", "blk.{0}.ffn_gate_exps.weight"),
    (r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w2\.weight", "blk.{0}.ffn_down_exps.weight"),
    (r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w3\.weight", "blk.{0}.ffn_up_exps.weight"),
]
# Present in some checkpoints, not needed by llama.cpp.
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")


def interleave_rotary_rows(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo Hugging Face's rotary reordering of a q/k projection (rows = n_heads * head_dim)."""
    rows = weight.shape[0]
    return (weight.reshape(n_heads, 2, rows // n_heads // 2, *weight.shape[1:])
            .transpose(1, 2).reshape(weight.shape))


@dataclass
class PlannedTensor:
    """One GGUF tensor: its shape (row-major, numpy order) and how to read it."""
    name: str
    shape: tuple[int, ...]
    load: Callable[[], np.ndarray]


def plan_tensors(ckpt: Checkpoint, stack: ExitStack) -> list[PlannedTensor]:
    """The GGUF tensors of `ckpt` in file order; the safetensors files stay open in `stack`."""
    where: dict[str, object] = {}
    for file in ckpt.tensor_files:
        handle = stack.enter_context(safe_open(str(file), framework="pt"))
        for key in handle.keys():
            where[key] = handle
    rules = [(re.compile(p), t) for p, t in (_NATIVE if ckpt.layout == "native" else _HF)]
    groups: dict[str, dict[int, str]] = {}
    for key in where:
        for pattern, template in rules:
            if m := pattern.fullmatch(key):
                expert = int(m.group(2)) if m.re.groups > 1 else 0
                groups.setdefault(template.format(*m.groups()[:1]), {})[expert] = key
                break
        else:
            if not _IGNORED.fullmatch(key):
                raise ImportFailed(f"{ckpt.src}: unexpected tensor {key!r} for a {ckpt.arch} "
                                   f"checkpoint in {ckpt.layout} layout")
    _check_complete(ckpt, groups)

    def load_one(key: str) -> torch.Tensor:
        tensor = where[key].get_tensor(key).to(torch.float32)  # type: ignore[attr-defined]
        if ckpt.layout == "hf" and key.endswith("q_proj.weight"):
            tensor = interleave_rotary_rows(tensor, ckpt.n_heads)
        elif ckpt.layout == "hf" and key.endswith("k_proj.weight"):
            tensor = interleave_rotary_rows(tensor, ckpt.n_kv_heads)
        return tensor

    def loader(keys: list[str], stacked: bool) -> Callable[[], np.ndarray]:
        if stacked:
            return lambda: torch.stack([load_one(k) for k in keys]).numpy()
        return lambda: load_one(keys[0]).numpy()

    planned = []
    for name in sorted(groups, key=_order):
        by_expert = groups[name]
        keys = [by_expert[e] for e in sorted(by_expert)]
        shape = tuple(where[keys[0]].get_slice(keys[0]).get_shape())  # type: ignore[attr-defined]
        stacked = name.endswith("_exps.weight")
        planned.append(PlannedTensor(name, (len(keys), *shape) if stacked else shape,
                                     loader(keys, stacked)))
    return planned


def _order(name: str) -> tuple[int, str]:
    m = re.match(r"blk\.(\d+)\.", name)
    return (int(m.group(1)) + 1 if m else (0 if name.startswith("token_embd") else 1 << 30), name)


def _check_complete(ckpt: Checkpoint, groups: dict[str, dict[int, str]]) -> None:
    expected = ["token_embd.weight", "output_norm.weight"]
    if not ckpt.tied_embeddings:
        expected.append("output.weight")
    ffn = (["ffn_gate_inp", "ffn_gate_exps", "ffn_down_exps", "ffn_up_exps"] if ckpt.is_moe
           else ["ffn_gate", "ffn_down", "ffn_up"])
    for layer in range(ckpt.n_layers):
        expected += [f"blk.{layer}.{t}.weight" for t in
                     ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", *ffn]]
    missing = [n for n in expected if n not in groups]
    if missing:
        raise ImportFailed(f"{ckpt.src}: the weights lack {len(missing)} tensor(s) "
                           f"({', '.join(missing[:4])}...): incomplete download or another architecture")
    for name, by_expert in groups.items():
        if name.endswith("_exps.weight") and sorted(by_expert) != list(range(ckpt.n_experts)):
            raise ImportFailed(f"{ckpt.src}: {name} has experts {sorted(by_expert)}, "
                               f"the config declares {ckpt.n_experts}")
