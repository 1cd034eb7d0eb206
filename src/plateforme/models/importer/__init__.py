"""`plateforme models import`: convert a Mistral-native or Hugging Face checkpoint to GGUF.

Supported: Mistral, Mixtral and Llama checkpoints (served by llama.cpp's "llama" graph), from
safetensors weights; f32, f16 or q8_0 output. The model lands in `<data_dir>/models/<name>/` and
is registered in `<data_dir>/models.yaml`, which `plateforme serve` reads with its defaults.
"""

import shutil
from pathlib import Path

from plateforme.models.importer.checkpoint import Checkpoint, ImportFailed, read_checkpoint
from plateforme.models.importer.register import check_name, default_name, register
from plateforme.models.spec import ModelSpec

__all__ = ["Checkpoint", "ImportFailed", "QUANTS", "import_checkpoint", "read_checkpoint"]

QUANTS = ("f16", "q8_0", "f32")  # writer.QUANTS maps them to GGML types

MAX_CONTEXT = 4096
IMPORT_PARALLEL = 2


def context_length(ckpt: Checkpoint) -> int:
    """Tokens per request: the model's limit (and sliding window, see writer.py) capped at 4096."""
    limits = [MAX_CONTEXT, ckpt.max_positions or MAX_CONTEXT, ckpt.sliding_window or MAX_CONTEXT]
    return max(64, min(limits))


def import_checkpoint(src: Path, data_dir: Path, name: str | None = None, quant: str = "f16",
                      progress: bool = True) -> ModelSpec:
    """Convert checkpoint directory `src`, register it in `data_dir`, return its ModelSpec."""
    if quant not in QUANTS:
        raise ImportFailed(f"unknown quantisation {quant!r}: choose one of {', '.join(QUANTS)}")
    data_dir = Path(data_dir).expanduser()
    ckpt = read_checkpoint(Path(src))
    name = check_name(name or default_name(ckpt.src))
    from plateforme.models.importer.writer import write_gguf  # torch, gguf: only once needed

    model_dir = data_dir / "models" / name
    gguf_path = model_dir / "model.gguf"
    tokenizer_src = write_gguf(ckpt, gguf_path, quant=quant, name=name, progress=progress)
    tokenizer = None
    if tokenizer_src is not None:
        tokenizer = model_dir / tokenizer_src.name
        tmp = tokenizer.with_name(f".{tokenizer.name}.tmp")
        shutil.copyfile(tokenizer_src, tmp)
        tmp.replace(tokenizer)
    spec = ModelSpec(
        name=name, path=str(gguf_path.resolve()),
        tokenizer=str(tokenizer.resolve()) if tokenizer else None,
        context_length=context_length(ckpt), parallel=IMPORT_PARALLEL,
        description=f"{ckpt.arch} imported from {ckpt.src.resolve()} ({ckpt.layout} layout, {quant})",
    )
    register(spec, data_dir)
    return spec
