"""What a served model can do, as shown on its model card."""

from plateforme.engines.engine import capabilities_of
from plateforme.fim.errors import FIMUnsupported
from plateforme.fim.gguf_tokens import gguf_fim_tokens
from plateforme.fim.prompt import mistral_fim_prompt
from plateforme.fim.types import FIMRequest
from plateforme.models.spec import ModelFileMissing, ModelSpec

_FIM: dict[tuple[str, str, str | None], bool] = {}


def _fim(spec: ModelSpec) -> bool:
    if not capabilities_of(spec).token_prompts:  # FIM prompts are token ids the gateway builds
        return False
    try:
        if spec.tokenizer:
            mistral_fim_prompt(spec, FIMRequest(model=spec.name, prompt="a", suffix="b"))
            return True
        return gguf_fim_tokens(spec.weights_path()) is not None
    except (FIMUnsupported, ModelFileMissing, OSError):
        return False


def supports_fim(spec: ModelSpec) -> bool:
    """Whether /v1/fim/completions works on `spec` (reads tokenizer or GGUF metadata once)."""
    key = (spec.name, spec.path, spec.tokenizer)
    if key not in _FIM:
        _FIM[key] = _fim(spec)
    return _FIM[key]
