"""Find out what a checkpoint directory holds: its layout, architecture, shapes and files."""

import json
from dataclasses import dataclass, field
from pathlib import Path

# Mistral-native tokenizer files, as mistral-common names them.
MISTRAL_TOKENIZER_GLOBS = ("tekken.json", "tokenizer.model.v*")
# Hugging Face `model_type` values this importer converts, all served by llama.cpp's "llama" graph.
HF_MODEL_TYPES = ("mistral", "mixtral", "llama")
# mistral-inference's default when params.json has no rope_theta.
NATIVE_DEFAULT_ROPE_THETA = 1_000_000.0


class ImportFailed(RuntimeError):
    """The checkpoint cannot be imported; the message names the cause and the fix."""


@dataclass
class Checkpoint:
    src: Path
    layout: str  # "native" (params.json + consolidated.safetensors) or "hf" (config.json)
    arch: str  # "mistral", "mixtral" or "llama"
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    vocab_size: int
    max_positions: int | None
    sliding_window: int | None = None
    n_experts: int = 0
    n_experts_used: int = 0
    # No output.weight / lm_head.weight: llama.cpp then reuses the token embeddings.
    tied_embeddings: bool = False
    tensor_files: list[Path] = field(default_factory=list)

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"cannot read {path}: {exc}") from exc


def _need(config: dict, source: Path, *keys: str):
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    raise ImportFailed(f"{source} has no {' / '.join(keys)}: is this a complete checkpoint?")


def _native(src: Path) -> Checkpoint:
    params_file = src / "params.json"
    params = _read_json(params_file)
    files = sorted(src.glob("consolidated*.safetensors"))
    if not files:
        raise ImportFailed(
            f"{src} has params.json but no consolidated.safetensors: download the weights too "
            "(older .pth checkpoints are not supported; convert them to safetensors first)")
    moe = params.get("moe") or {}
    dim = _need(params, params_file, "dim")
    n_heads = _need(params, params_file, "n_heads")
    arch = "mixtral" if moe else "mistral"
    return Checkpoint(
        src=src, layout="native", arch=arch, dim=dim,
        n_layers=_need(params, params_file, "n_layers"), n_heads=n_heads,
        n_kv_heads=params.get("n_kv_heads") or n_heads,
        head_dim=params.get("head_dim") or dim // n_heads,
        hidden_dim=_need(params, params_file, "hidden_dim"),
        norm_eps=_need(params, params_file, "norm_eps"),
        rope_theta=params.get("rope_theta") or NATIVE_DEFAULT_ROPE_THETA,
        vocab_size=_need(params, params_file, "vocab_size"),
        max_positions=params.get("max_seq_len") or params.get("max_position_embeddings"),
        sliding_window=params.get("sliding_window"),
        n_experts=moe.get("num_experts", 0), n_experts_used=moe.get("num_experts_per_tok", 0),
        tied_embeddings=bool(params.get("tied_embeddings")), tensor_files=files,
    )


def _hf_files(src: Path) -> list[Path]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(_read_json(index).get("weight_map", {}).values()))
        missing = [n for n in names if not (src / n).is_file()]
        if missing:
            raise ImportFailed(f"{src}: shards listed in model.safetensors.index.json are missing: "
                               f"{', '.join(missing)}; download all of them")
        return [src / n for n in names]
    files = sorted(src.glob("*.safetensors"))
    if not files:
        hint = " (PyTorch .bin weights are not supported: convert them to safetensors)" \
            if any(src.glob("*.bin")) else ""
        raise ImportFailed(f"{src} has config.json but no *.safetensors weights{hint}")
    return files


def _hf(src: Path) -> Checkpoint:
    config_file = src / "config.json"
    config = _read_json(config_file)
    config = {**config, **(config.get("text_config") or {})}
    model_type = config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise ImportFailed(
            f"{src}: unsupported architecture model_type={model_type!r} "
            f"(architectures {config.get('architectures')}); "
            f"`plateforme models import` converts {', '.join(sorted(HF_MODEL_TYPES))} checkpoints")
    dim = _need(config, config_file, "hidden_size")
    n_heads = _need(config, config_file, "num_attention_heads")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise ImportFailed(f"{src}: rope scaling {rope.get('rope_type', rope.get('type'))!r} "
                           "is not supported by this importer")
    return Checkpoint(
        src=src, layout="hf", arch=model_type, dim=dim,
        n_layers=_need(config, config_file, "num_hidden_layers"), n_heads=n_heads,
        n_kv_heads=config.get("num_key_value_heads") or n_heads,
        head_dim=config.get("head_dim") or dim // n_heads,
        hidden_dim=_need(config, config_file, "intermediate_size"),
        norm_eps=_need(config, config_file, "rms_norm_eps"),
        rope_theta=rope.get("rope_theta") or config.get("rope_theta") or 10_000.0,
        vocab_size=_need(config, config_file, "vocab_size"),
        max_positions=config.get("max_position_embeddings"),
        sliding_window=config.get("sliding_window"),
        n_experts=config.get("num_local_experts") or 0,
        n_experts_used=config.get("num_experts_per_tok") or 0,
        tied_embeddings=bool(config.get("tie_word_embeddings")), tensor_files=_hf_files(src),
    )


def mistral_tokenizer_file(src: Path) -> Path | None:
    """The Mistral tokenizer file of `src`: tekken.json, else the newest tokenizer.model.v*."""
    files = sorted(f for pattern in MISTRAL_TOKENIZER_GLOBS for f in src.glob(pattern) if f.is_file())

    def rank(f: Path) -> tuple[bool, int]:
        version = f.name.rpartition(".v")[2]
        return f.name != "tekken.json", -int(version) if version.isdigit() else 0

    return min(files, key=rank) if files else None


def _check_tokenizer(ckpt: Checkpoint) -> None:
    if ckpt.layout == "native" and mistral_tokenizer_file(ckpt.src) is None:
        raise ImportFailed(f"{ckpt.src} has no tokenizer: a Mistral-native checkpoint needs its "
                           "tekken.json or tokenizer.model.v* next to params.json")
    if ckpt.layout == "hf" and mistral_tokenizer_file(ckpt.src) is None and not any(
            (ckpt.src / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        raise ImportFailed(f"{ckpt.src} has no tokenizer: expected tokenizer.json, tokenizer.model "
                           "or tekken.json next to config.json")


def read_checkpoint(src: Path) -> Checkpoint:
    """The checkpoint in directory `src`, or ImportFailed saying what is missing."""
    src = Path(src).expanduser()
    if not src.is_dir():
        raise ImportFailed(f"{src} is not a directory: give the checkpoint's directory")
    if (src / "params.json").is_file() or (src / "config.json").is_file():
        ckpt = _native(src) if (src / "params.json").is_file() else _hf(src)
        _check_tokenizer(ckpt)
        return ckpt
    raise ImportFailed(f"{src} has neither params.json (Mistral native format) nor config.json "
                       "(Hugging Face format): is it a model checkpoint directory?")
