"""The base model and its tokenizer, read from the GGUF once and cached as plain HF files.

transformers reads a GGUF by dequantising every tensor (about 30 s for a 135M model; the
tokenizer alone takes seconds); the result is saved under the job's cache_dir, keyed by the GGUF's
path, size and modification time, so later jobs on the same file load it in about a second.
Each cache entry is written to a private temporary directory and renamed into place, so a job
never sees a half-written entry; one job fills an entry at a time (a lock file beside it): a
second job starting meanwhile waits for it and reads its result instead of spending the same
tens of seconds of CPU again (a job killed while filling frees the lock with its process).
"""

import fcntl

import functools
import hashlib
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plateforme.models.gguf_metadata import read_gguf_metadata
from plateforme.training.job import JobError

log = logging.getLogger("plateforme.training")
MAX_DEFAULT_SEQ_LEN = 2048


@dataclass(frozen=True)
class GgufFacts:
    architecture: str
    context_length: int


def gguf_facts(gguf: Path) -> GgufFacts:
    """What the trainer needs to know before loading anything; JobError when it cannot fine-tune it."""
    if not gguf.is_file():
        raise JobError(f"base model file {gguf} does not exist")
    try:
        values, _ = read_gguf_metadata(gguf, {"general.architecture", "tokenizer.chat_template"})
        arch = str(values.get("general.architecture") or "")
        context, _ = read_gguf_metadata(gguf, {f"{arch}.context_length"})
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise JobError(f"cannot read the base model file {gguf}: {exc}") from exc
    if not values.get("tokenizer.chat_template"):
        raise JobError(f"the base model {gguf.name} has no chat template (tokenizer.chat_template) in its GGUF, "
                       "so conversations cannot be formatted the way the model is served; models prompted "
                       "through a Mistral tokenizer (mistral-common) cannot be fine-tuned yet")
    return GgufFacts(arch, int(context.get(f"{arch}.context_length") or MAX_DEFAULT_SEQ_LEN))


def default_seq_len(requested: int | None, facts: GgufFacts) -> int:
    if requested is None:
        return min(MAX_DEFAULT_SEQ_LEN, facts.context_length)
    if requested > facts.context_length:
        raise JobError(f"hyperparameters.seq_len {requested} exceeds the base model's {facts.context_length}-token "
                       "context; lower it")
    return requested


def cache_entry(cache_dir: Path, gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir / f"{gguf.stem}-{key}"


def _cached(final: Path, build) -> Path:
    """`final`, built by `build(tmp_dir)` and renamed into place if no one did it before."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".lock-{final.name}", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed, or when the process dies
        if final.is_dir():  # another job filled it while this one waited
            return final
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            build(tmp)
            os.rename(tmp, final)  # no other writer: they all hold the lock to write
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextmanager
def _gguf_read_once():
    """While transformers reads a GGUF: gguf-py's reader parses a file once, and its tensor-name map
    is built once per architecture and depth.

    transformers' GGUF loading parses the whole header (the vocabulary's ~100 000 strings, field by
    field in Python) for the config and again for the weights, and builds gguf-py's tensor-name map
    (thousands of patterns) once per module of the model, hundreds of times; both are read-only
    values of their arguments, so sharing them changes nothing in what is loaded. Default model:
    the weights' entry in 24 s of CPU instead of 46, the tokenizer's in 17 instead of 20, the same
    bytes. Restored after.
    """
    import gguf

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = saved[0](path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(saved[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved


def load_tokenizer(cache_dir: Path, gguf: Path):
    from transformers import AutoTokenizer

    def build(tmp: Path) -> None:
        log.info("reading the tokenizer of %s (cached for later jobs)", gguf.name)
        with _gguf_read_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)

    return AutoTokenizer.from_pretrained(_cached(cache_entry(cache_dir, gguf) / "tokenizer", build))


def cached_model_dir(cache_dir: Path, gguf: Path) -> Path:
    """The cache entry of the dequantised base model (saved with save_pretrained), built if missing."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    def build(tmp: Path) -> None:
        log.info("dequantising %s with transformers (once; cached for later jobs)", gguf.name)
        try:
            with _gguf_read_once():
                model = AutoModelForCausalLM.from_pretrained(
                    gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                    quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True))
        except ValueError as exc:  # e.g. an architecture transformers cannot read from GGUF
            raise JobError(f"transformers cannot load the base model {gguf.name}: {exc}") from exc
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:  # a plain dense model from now on
            quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)

    return _cached(cache_entry(cache_dir, gguf) / "model", build)


def load_model(cache_dir: Path, gguf: Path, dtype):
    """The base model, dequantised, with SDPA attention, in `dtype`, on the CPU."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(cached_model_dir(cache_dir, gguf), dtype=dtype,
                                                attn_implementation="sdpa")
