"""The prompt tokens of a fill-in-the-middle request, built exactly for the model's format.

- Mistral-format models (spec.tokenizer): mistral-common's `encode_fim`
  (`<s>[SUFFIX]suffix[PREFIX]prompt`); tokenizers before v2 have no FIM and are refused.
- GGUF models with StarCoder-style tokens: `<fim_prefix>prompt<fim_suffix>suffix<fim_middle>`
  (BOS first when the model adds one), the text tokenized by the engine itself. This is the
  sequence llama.cpp's /infill builds, without its silent truncation of long inputs.
"""

import asyncio

from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.fim.errors import FIMUnsupported
from plateforme.fim.gguf_tokens import FimTokens, gguf_fim_tokens
from plateforme.fim.types import FIMRequest
from plateforme.models.spec import ModelSpec


def mistral_fim_prompt(spec: ModelSpec, req: FIMRequest) -> list[int]:
    # mistral-common is imported when a Mistral-format model is first used (half a second at
    # every start of a gateway serving none).
    from mistral_common.exceptions import MistralCommonException
    from mistral_common.protocol.fim.request import FIMRequest as MistralFIMRequest

    from plateforme.chat.mistral_prompt import load_tokenizer

    tokenizer = load_tokenizer(spec.tokenizer)
    try:
        return tokenizer.encode_fim(MistralFIMRequest(prompt=req.prompt, suffix=req.suffix or None)).tokens
    except (MistralCommonException, AttributeError) as exc:
        raise FIMUnsupported(f"model {spec.name!r} has no fill-in-the-middle tokens: its Mistral tokenizer "
                             f"({tokenizer.version.value}) does not support FIM") from exc


async def model_fim_tokens(spec: ModelSpec) -> FimTokens:
    """The GGUF's FIM tokens (read once per file, off the event loop), or FIMUnsupported."""
    tokens = await asyncio.to_thread(gguf_fim_tokens, spec.weights_path())
    if tokens is None:
        raise FIMUnsupported(
            f"model {spec.name!r} has no fill-in-the-middle tokens (<fim_prefix>, <fim_suffix>, <fim_middle>), "
            "so it cannot serve /v1/fim/completions; use a code model trained for FIM")
    return tokens


async def gguf_fim_prompt(fim: FimTokens, client: OpenAIEngineClient, req: FIMRequest) -> list[int]:
    prefix = await client.tokenize(req.prompt) if req.prompt else []
    suffix = await client.tokenize(req.suffix) if req.suffix else []
    bos = [fim.bos] if fim.bos is not None else []
    return [*bos, fim.prefix, *prefix, fim.suffix, *suffix, fim.middle]
