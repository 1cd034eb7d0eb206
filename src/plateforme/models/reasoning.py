"""Whether a served model is a reasoning model (it writes its thinking before its answer).

`reasoning` in the models config decides when it is given. Left out (None), it is detected,
conservatively, from what the model ships: a chat template (GGUF `tokenizer.chat_template`, or a
vLLM checkpoint's tokenizer_config.json / chat_template.jinja) that writes thinking markers, or
a Mistral tokenizer (tekken.json) with Magistral's `[THINK]` control token. A remote server
(engine `openai`) cannot be asked: declare `reasoning: true` for it.
"""

import json
import logging
from pathlib import Path

from plateforme.models.gguf_metadata import read_gguf_metadata
from plateforme.models.spec import ModelFileMissing, ModelSpec

log = logging.getLogger("plateforme.models")

# The markers a reasoning template writes around (or opens) the model's thinking.
TEMPLATE_MARKERS = ("<think>", "[THINK]")
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"

_DETECTED: dict[tuple, bool] = {}


def template_reasons(template: str | None) -> bool:
    """Whether a chat template is a reasoning model's: it writes a thinking marker."""
    return bool(template) and any(marker in template for marker in TEMPLATE_MARKERS)


def _gguf_template(spec: ModelSpec) -> str | None:
    values, _ = read_gguf_metadata(spec.weights_path(), {CHAT_TEMPLATE_KEY})
    return values.get(CHAT_TEMPLATE_KEY)


def _tekken_thinks(path: str) -> bool:
    """Whether a Mistral tokenizer file has the [THINK] control token (Magistral)."""
    if not path.endswith(".json"):
        return False  # SentencePiece tokenizers (v1-v3) predate reasoning models
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    specials = data.get("special_tokens") or []
    return any(isinstance(t, dict) and t.get("token_str") == "[THINK]" for t in specials)


def _checkpoint_template(model_dir: str) -> str | None:
    """A Hugging Face checkpoint's chat template, if it is a local directory."""
    directory = Path(model_dir).expanduser()
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8", errors="replace")
    config = directory / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, list):  # named templates: [{"name", "template"}, ...]
            return "\n".join(t.get("template", "") for t in template if isinstance(t, dict))
        return template if isinstance(template, str) else None
    return None


def _detect(spec: ModelSpec) -> bool:
    if spec.engine == "openai":
        return False
    try:
        if spec.engine == "vllm":
            if spec.vllm is None:
                return False
            tekken = Path(spec.vllm.model).expanduser() / "tekken.json"
            if tekken.is_file():  # a Mistral-format checkpoint
                return _tekken_thinks(str(tekken))
            return template_reasons(_checkpoint_template(spec.vllm.tokenizer or spec.vllm.model))
        if spec.tokenizer:
            return _tekken_thinks(spec.tokenizer)
        return template_reasons(_gguf_template(spec))
    except (ModelFileMissing, OSError, ValueError) as exc:
        log.warning("model %r: cannot tell whether it reasons (%s); treated as not reasoning", spec.name, exc)
        return False


def _key(spec: ModelSpec) -> tuple:
    return spec.name, spec.engine, spec.path, spec.tokenizer, spec.vllm.model if spec.vllm else None


def known_without_io(spec: ModelSpec) -> bool:
    """Whether `is_reasoning(spec)` answers without reading a file (declared, or detected before)."""
    return spec.reasoning is not None or _key(spec) in _DETECTED


def is_reasoning(spec: ModelSpec) -> bool:
    """Whether `spec` is a reasoning model (declared, or detected once per weights file: this
    reads the file the first time, so async callers run it in a thread unless known_without_io)."""
    if spec.reasoning is not None:
        return spec.reasoning
    key = _key(spec)
    if key not in _DETECTED:
        _DETECTED[key] = _detect(spec)
    return _DETECTED[key]
