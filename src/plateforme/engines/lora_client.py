"""An engine client that runs every generation with one LoRA adapter of its worker switched on.

llama.cpp loads all adapters of a base model in one process and picks them per request with the
body field `lora: [{"id": i, "scale": s}]`; this wrapper adds that field, everything else goes
to the worker's plain client.
"""

from collections.abc import AsyncIterator

from plateforme.engines.openai_client import OpenAIEngineClient


class LoraClient:
    def __init__(self, client: OpenAIEngineClient, lora: list[dict]):
        self._client = client
        self._lora = lora
        self.base_url = client.base_url

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        return await self._client.chat({**payload, "lora": self._lora}, timeout)

    def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        return self._client.stream_chat({**payload, "lora": self._lora})

    def stream_completion(self, payload: dict) -> AsyncIterator[dict]:
        return self._client.stream_completion({**payload, "lora": self._lora})

    async def count_chat_prompt_tokens(self, messages: list[dict]) -> int:
        return await self._client.count_chat_prompt_tokens(messages)

    async def tokenize(self, text: str) -> list[int]:
        return await self._client.tokenize(text)
