"""The tokenizer of a checkpoint, written into the GGUF metadata with gguf's vocab readers.

- Mistral tokenizer files (tekken.json, tokenizer.model.v*): read with `gguf.vocab.MistralVocab`
  (mistral-common). The file is also returned, to be copied next to the GGUF: the platform then
  builds prompts with mistral-common (`ModelSpec.tokenizer`), so no chat template is stored.
- Hugging Face tokenizer.json, byte-level BPE: tokens and merges as written there; llama.cpp's
  pre-tokenizer is recognised from the split regex (tekken and Llama 3 patterns).
- Hugging Face tokenizer.json with byte fallback (Llama 2 / Mistral v0.x style): `LlamaHfVocab`.
- Hugging Face tokenizer.model (SentencePiece): `SentencePieceVocab`.
For Hugging Face tokenizers, `SpecialVocab` adds merges, special token ids and the chat template
(tokenizer_config.json `chat_template`, or chat_template.jinja / chat_template.json).
"""

import json
import logging
from pathlib import Path

import gguf
from gguf.vocab import LlamaHfVocab, MistralVocab, SentencePieceVocab, SpecialVocab

from plateforme.models.importer.checkpoint import Checkpoint, ImportFailed, mistral_tokenizer_file

log = logging.getLogger(__name__)

TEKKEN_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
                r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Split regex of a byte-level BPE tokenizer.json -> llama.cpp's `tokenizer.ggml.pre`.
KNOWN_PRE_TOKENIZERS = {TEKKEN_SPLIT: "tekken", LLAMA3_SPLIT: "llama-bpe"}


def add_vocab(writer: gguf.GGUFWriter, ckpt: Checkpoint) -> Path | None:
    """Write the tokenizer of `ckpt`; return the Mistral tokenizer file it came from, if any."""
    src = ckpt.src
    mistral_file = mistral_tokenizer_file(src)
    if ckpt.layout == "native" or (mistral_file and not (src / "tokenizer.json").is_file()):
        if mistral_file is None:
            raise ImportFailed(f"{src} has no tokenizer: a Mistral-native checkpoint needs its "
                               "tekken.json or tokenizer.model.v* next to params.json")
        _add_mistral(writer, ckpt, mistral_file)
        return mistral_file
    if (src / "tokenizer.model").is_file():
        try:
            vocab = SentencePieceVocab(src)
        except ImportError as exc:
            raise ImportFailed(f"{src}/tokenizer.model is a SentencePiece model: install the "
                               f"`sentencepiece` package to import it ({exc})") from exc
        _add_tokens(writer, ckpt, "llama", list(vocab.all_tokens()))
    elif (src / "tokenizer.json").is_file():
        _add_tokenizer_json(writer, ckpt)
    else:
        raise ImportFailed(f"{src} has no tokenizer: expected tokenizer.json, tokenizer.model or "
                           "tekken.json next to config.json")
    SpecialVocab(src, load_merges=True, n_vocab=ckpt.vocab_size).add_to_gguf(writer, quiet=True)
    return None


def _add_mistral(writer: gguf.GGUFWriter, ckpt: Checkpoint, file: Path) -> None:
    vocab = MistralVocab(file.parent)
    if Path(vocab.fname_tokenizer).name != file.name:
        raise ImportFailed(f"{ckpt.src} holds several Mistral tokenizer files; keep only {file.name}")
    _add_tokens(writer, ckpt, vocab.gguf_tokenizer_model, list(vocab.all_tokens()))
    if vocab.tokenizer_type.value == "tekken":
        writer.add_tokenizer_pre("tekken")
        writer.add_token_merges(vocab.extract_vocab_merges_from_model())
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_unk_token_id(vocab.unk_id)
    writer.add_pad_token_id(vocab.pad_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def _add_tokenizer_json(writer: gguf.GGUFWriter, ckpt: Checkpoint) -> None:
    path = ckpt.src / "tokenizer.json"
    data = json.loads(path.read_text())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ImportFailed(f"{path}: tokenizer model {model.get('type')!r} is not supported (BPE only)")
    if model.get("byte_fallback"):
        _add_tokens(writer, ckpt, "llama", list(LlamaHfVocab(ckpt.src).all_tokens()))
        return
    pre = KNOWN_PRE_TOKENIZERS.get(_split_regex(data.get("pre_tokenizer") or {}) or "")
    if pre is None:
        raise ImportFailed(f"{path}: unrecognised pre-tokenizer; llama.cpp needs it named, and this "
                           f"importer knows {', '.join(sorted(KNOWN_PRE_TOKENIZERS.values()))}")
    by_id = {i: (t.encode(), gguf.TokenType.NORMAL) for t, i in model["vocab"].items()}
    for added in data.get("added_tokens") or []:
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[added["id"]] = (added["content"].encode(), kind)
    if sorted(by_id) != list(range(len(by_id))):
        raise ImportFailed(f"{path}: token ids are not contiguous from 0")
    _add_tokens(writer, ckpt, "gpt2", [(t, 0.0, k) for _, (t, k) in sorted(by_id.items())])
    writer.add_tokenizer_pre(pre)


def _split_regex(pre_tokenizer: dict) -> str | None:
    parts = pre_tokenizer.get("pretokenizers") or [pre_tokenizer]
    for part in parts:
        if part.get("type") == "Split":
            return (part.get("pattern") or {}).get("Regex")
    return None


def _add_tokens(writer: gguf.GGUFWriter, ckpt: Checkpoint, model: str,
                tokens: list[tuple[bytes, float, gguf.TokenType]]) -> None:
    """Token list, padded with unused tokens up to the model's embedding rows."""
    if len(tokens) > ckpt.vocab_size:
        raise ImportFailed(f"{ckpt.src}: the tokenizer has {len(tokens)} tokens but the model only "
                           f"{ckpt.vocab_size} embeddings: wrong tokenizer file?")
    for i in range(len(tokens), ckpt.vocab_size):
        tokens.append((f"[PAD{i}]".encode(), -1000.0, gguf.TokenType.UNUSED))
    writer.add_tokenizer_model(model)
    writer.add_token_list([t for t, _, _ in tokens])
    writer.add_token_scores([s for _, s, _ in tokens])
    writer.add_token_types([k for _, _, k in tokens])
