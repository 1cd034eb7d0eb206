"""Fill-in-the-middle request, as in Mistral's spec (FIMCompletionRequest).

The response is Mistral's FIMCompletionResponse, which is a ChatCompletionResponse
(api/schemas/chat.py); streamed chunks are chat completion chunks.
"""

from typing import Any

from pydantic import Field

from plateforme.api.schemas.chat_messages import Strict
from plateforme.fim.types import FIMRequest


class FIMCompletionRequest(Strict):
    model: str
    prompt: str
    suffix: str | None = ""
    temperature: float | None = Field(default=None, ge=0, le=1.5)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=0)
    min_tokens: int | None = Field(default=None, ge=0)
    stream: bool = False
    stop: str | list[str] | None = None
    random_seed: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None
    prompt_cache_key: str | None = None

    def to_fim_request(self) -> FIMRequest:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return FIMRequest(model=self.model, prompt=self.prompt, suffix=self.suffix or "",
                          max_tokens=self.max_tokens, min_tokens=self.min_tokens, temperature=self.temperature,
                          top_p=self.top_p, stop=stop, seed=self.random_seed)
