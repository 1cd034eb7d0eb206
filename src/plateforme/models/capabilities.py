"""What a served model can do, as shown on its model card."""

import functools

from plateforme.fim.errors import FIMUnsupported
from plateforme.fim.gguf_tokens import gguf_fim_tokens
from plateforme.fim.prompt import mistral_fim_prompt
from plateforme.fim.types import FIMRequest
from plateforme.models.spec import ModelSpec, ModelFileMissing


@functools.lru_cache(maxsize=64)
def _fim(name: str, path: str, tokenizer: str | None, spec_json: str) -> bool:
    spec = ModelSpec.model_validate_json(spec_json)
    try:
        if tokenizer:
            mistral_fim_prompt(spec, FIMRequest(model=name, prompt="a", suffix="b"))
            return True
        return gguf_fim_tokens(spec.weights_path()) is not None
    except (FIMUnsupported, ModelFileMissing, OSError):
        return False


def supports_fim(spec: ModelSpec) -> bool:
    """Whether /v1/fim/completions works on `spec` (reads tokenizer or GGUF metadata once)."""
    return _fim(spec.name, spec.path, spec.tokenizer, spec.model_dump_json())
