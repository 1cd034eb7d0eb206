"""Tiny random checkpoints (Mistral, Mixtral, Llama) in Mistral-native or Hugging Face layout.

`make_checkpoint` builds a small transformers model with seeded random weights and writes it the
way the real checkpoints of that family are published:

- "hf": `config.json` + `model.safetensors` (sharded with `model.safetensors.index.json` when
  `shards` > 1) + `tokenizer.json` / `tokenizer_config.json` (with a chat template), as
  `save_pretrained` writes them.
- "native": `params.json` + `consolidated.safetensors` + `tekken.json`, with mistral-inference's
  tensor names. Hugging Face's q/k projections are stored rotary-permuted (their conversion script
  reorders each head's rows from interleaved pairs to two halves); the native checkpoint keeps
  the interleaved order, so the q/k rows are put back here.

`reference_model` rebuilds the very same transformers model (same seed), for parity checks.

Tokenizers: "tekken" copies mistral-common's packaged tekken_240911.json (131072 tokens);
"tekken-small" is that file cut to its first 4096 tokens (1000 control tokens + 3096 byte-level
BPE ranks; mistral-common and llama.cpp both load it), which keeps the embedding matrices small.
"spm-v3" copies the packaged SentencePiece tokenizer.model.v3 (32768 tokens; native layout only).
"""

import json
import shutil
import tempfile
from pathlib import Path

import mistral_common
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

TEKKEN_FILE = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
SPM_V3_FILE = Path(mistral_common.__file__).parent / "data" / "mistral_instruct_tokenizer_240323.model.v3"
SMALL_VOCAB = 4096
ARCHS = ("mistral", "mixtral", "llama")
LAYOUTS = ("native", "hf")
# Short prompts in the parity tests must stay below this (see tests/test_import_parity.py).
SLIDING_WINDOW = 64
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST]{{ m['content'] }}[/INST]"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)

_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, tie_word_embeddings=False,
              max_position_embeddings=8192, bos_token_id=1, eos_token_id=2)
_ARCH = {
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM,
                dict(rope_theta=1_000_000.0, sliding_window=SLIDING_WINDOW)),
    "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM,
                dict(rope_theta=1_000_000.0, num_local_experts=8, num_experts_per_tok=2,
                     sliding_window=None)),
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, dict(rope_theta=10_000.0)),
}


def tokenizer_vocab_size(tokenizer: str) -> int:
    return {"tekken": 131072, "tekken-small": SMALL_VOCAB, "spm-v3": 32768}[tokenizer]


def write_tekken(dst: Path, tokenizer: str) -> Path:
    """The tekken.json of `tokenizer` ("tekken" or "tekken-small") at `dst`."""
    if tokenizer == "tekken":
        shutil.copyfile(TEKKEN_FILE, dst)
    elif tokenizer == "tekken-small":
        data = json.loads(TEKKEN_FILE.read_text())
        specials = data["config"]["default_num_special_tokens"]
        data["vocab"] = data["vocab"][:SMALL_VOCAB - specials]
        data["config"].update(default_vocab_size=SMALL_VOCAB, num_vocab_tokens=SMALL_VOCAB - specials)
        data.pop("image", None)
        dst.write_text(json.dumps(data))
    else:
        raise ValueError(f"unknown tokenizer {tokenizer!r}")
    return dst


def reference_model(arch: str, vocab_size: int, seed: int = 0) -> transformers.PreTrainedModel:
    """The seeded random model behind `make_checkpoint(..., arch, seed=seed)`, in float32.

    Weights are drawn larger than a real init (std 0.1, lm_head std 1, norm gains around 1) so
    attention and MLP outputs weigh on the residual stream and the next-token distribution is
    peaked: a wrong permutation or a swapped tensor changes the top tokens."""
    config_cls, model_cls, extra = _ARCH[arch]
    config = config_cls(vocab_size=vocab_size, initializer_range=0.1, **_SHAPE, **extra)
    torch.manual_seed(seed)
    model = model_cls(config).float().eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=gen))
            elif name == "lm_head.weight":
                param.copy_(torch.randn(param.shape, generator=gen))
    return model


def unpermute_qk(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Hugging Face's rotary layout (per head: first halves, then second halves) back to the
    interleaved pairs that Mistral-native checkpoints and llama.cpp use."""
    rows, cols = weight.shape
    return weight.reshape(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def _native_name(hf_name: str) -> str:
    name = hf_name.removeprefix("model.")
    for old, new in [("embed_tokens", "tok_embeddings"), ("lm_head", "output"),
                     ("self_attn.q_proj", "attention.wq"), ("self_attn.k_proj", "attention.wk"),
                     ("self_attn.v_proj", "attention.wv"), ("self_attn.o_proj", "attention.wo"),
                     ("input_layernorm", "attention_norm"), ("post_attention_layernorm", "ffn_norm"),
                     ("mlp.gate_proj", "feed_forward.w1"), ("mlp.down_proj", "feed_forward.w2"),
                     ("mlp.up_proj", "feed_forward.w3"), ("block_sparse_moe", "feed_forward")]:
        name = name.replace(old, new)
    return name


def _write_native(hf_dir: Path, dst: Path, config: transformers.PretrainedConfig) -> None:
    tensors = {}
    for file in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(file, "pt") as f:
            for key in f.keys():
                tensor = f.get_tensor(key)
                if key.endswith("q_proj.weight"):
                    tensor = unpermute_qk(tensor, config.num_attention_heads)
                elif key.endswith("k_proj.weight"):
                    tensor = unpermute_qk(tensor, config.num_key_value_heads)
                tensors[_native_name(key)] = tensor.contiguous()
    save_file(tensors, dst / "consolidated.safetensors")
    params = {
        "dim": config.hidden_size, "n_layers": config.num_hidden_layers, "head_dim": config.head_dim,
        "hidden_dim": config.intermediate_size, "n_heads": config.num_attention_heads,
        "n_kv_heads": config.num_key_value_heads, "norm_eps": config.rms_norm_eps,
        "vocab_size": config.vocab_size, "rope_theta": config.rope_parameters["rope_theta"],
        "max_seq_len": config.max_position_embeddings,
    }
    if getattr(config, "sliding_window", None):
        params["sliding_window"] = config.sliding_window
    if getattr(config, "num_local_experts", None):
        params["moe"] = {"num_experts": config.num_local_experts,
                         "num_experts_per_tok": config.num_experts_per_tok}
    (dst / "params.json").write_text(json.dumps(params, indent=2))


def _write_hf_tokenizer(dst: Path, tokenizer: str) -> None:
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tekken = write_tekken(Path(tmp) / "tekken.json", tokenizer)
        hf_tok = convert_tekken_tokenizer(str(tekken), chat_template=CHAT_TEMPLATE)
        hf_tok.save_pretrained(str(dst))
    # Keep only the Hugging Face files, so the import reads tokenizer.json.
    (dst / "tekken.json").unlink(missing_ok=True)


def make_checkpoint(dst: Path, arch: str, layout: str, tokenizer: str = "tekken", seed: int = 0,
                    shards: int = 1) -> Path:
    """Write a tiny `arch` checkpoint in `layout` into `dst` (created) and return `dst`."""
    if arch not in ARCHS or layout not in LAYOUTS:
        raise ValueError(f"arch must be one of {ARCHS}, layout one of {LAYOUTS}")
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    model = reference_model(arch, tokenizer_vocab_size(tokenizer), seed)
    if layout == "hf":
        size = sum(p.numel() * 4 for p in model.parameters())
        shard = f"{size // shards // 1000 + 1}KB" if shards > 1 else "10GB"
        model.save_pretrained(str(dst), max_shard_size=shard)
        _write_hf_tokenizer(dst, tokenizer)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            _write_native(Path(tmp), dst, model.config)
        if tokenizer == "spm-v3":
            shutil.copyfile(SPM_V3_FILE, dst / "tokenizer.model.v3")
        else:
            write_tekken(dst / "tekken.json", tokenizer)
    return dst
