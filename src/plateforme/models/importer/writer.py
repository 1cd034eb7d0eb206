"""Write a checkpoint as one GGUF file for llama.cpp's "llama" architecture.

Tensors are streamed: the header and tensor index are written from the safetensors shapes, then
each tensor is read, converted and written in turn, so memory holds one tensor (one layer's
stacked experts) at a time. Norms and other 1-D tensors and the MoE router stay float32.

Sliding-window attention: llama.cpp's "llama" graph attends over the whole context and has no
sliding-window key, so a Mistral model's `sliding_window` is dropped here. Outputs match the
original model exactly only while prompt + completion stay within the window (4096 tokens for
Mistral 7B v0.1; later Mistral models have no window); past it, attention sees more context than
the model was trained with. The registered context length is capped to the window for that reason.
"""

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import gguf
import numpy as np
from gguf.quants import quantize
from tqdm import tqdm

from plateforme.models.importer.checkpoint import Checkpoint
from plateforme.models.importer.tensors import PlannedTensor, plan_tensors
from plateforme.models.importer.vocab import add_vocab

QUANTS = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
ARCH = "llama"


def tensor_type(tensor: PlannedTensor, quant: str) -> gguf.GGMLQuantizationType:
    qtype = QUANTS[quant][0]
    if len(tensor.shape) == 1 or tensor.name.endswith("ffn_gate_inp.weight"):
        return gguf.GGMLQuantizationType.F32
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if tensor.shape[-1] % block:  # rows that do not split into whole blocks
        return gguf.GGMLQuantizationType.F16
    return qtype


def convert(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    if qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def _add_hparams(writer: gguf.GGUFWriter, ckpt: Checkpoint, quant: str, name: str) -> None:
    writer.add_name(name)
    writer.add_file_type(QUANTS[quant][1])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(ckpt.max_positions or 32768)
    writer.add_embedding_length(ckpt.dim)
    writer.add_block_count(ckpt.n_layers)
    writer.add_feed_forward_length(ckpt.hidden_dim)
    writer.add_head_count(ckpt.n_heads)
    writer.add_head_count_kv(ckpt.n_kv_heads)
    writer.add_key_length(ckpt.head_dim)
    writer.add_value_length(ckpt.head_dim)
    writer.add_rope_dimension_count(ckpt.head_dim)
    writer.add_rope_freq_base(float(ckpt.rope_theta))
    writer.add_layer_norm_rms_eps(float(ckpt.norm_eps))
    writer.add_vocab_size(ckpt.vocab_size)
    if ckpt.is_moe:
        writer.add_expert_count(ckpt.n_experts)
        writer.add_expert_used_count(ckpt.n_experts_used)


def write_gguf(ckpt: Checkpoint, dst: Path, quant: str = "f16", name: str = "model",
               progress: bool = True) -> Path | None:
    """Write `ckpt` to `dst` (replaced atomically: a temp file renamed at the end).

    Returns the Mistral tokenizer file the vocabulary came from, if any."""
    if quant not in QUANTS:
        raise ValueError(f"quant must be one of {', '.join(QUANTS)}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with ExitStack() as stack:
            planned = plan_tensors(ckpt, stack)
            writer = gguf.GGUFWriter(tmp, ARCH)
            stack.callback(writer.close)
            _add_hparams(writer, ckpt, quant, name)
            tokenizer_file = add_vocab(writer, ckpt)
            types = [tensor_type(t, quant) for t in planned]
            for tensor, qtype in zip(planned, types):
                byte_shape = gguf.quant_shape_to_byte_shape(tensor.shape, qtype) \
                    if qtype == gguf.GGMLQuantizationType.Q8_0 else tensor.shape
                item = 1 if qtype == gguf.GGMLQuantizationType.Q8_0 else \
                    (4 if qtype == gguf.GGMLQuantizationType.F32 else 2)
                writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float32),
                                       int(np.prod(byte_shape)) * item, raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            bar = tqdm(zip(planned, types), total=len(planned), desc=f"converting to {quant}",
                       unit="tensor", file=sys.stderr, disable=not progress)
            for tensor, qtype in bar:
                array = tensor.load()
                assert array.shape == tensor.shape, (tensor.name, array.shape, tensor.shape)
                writer.write_tensor_data(convert(array, qtype))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return tokenizer_file
