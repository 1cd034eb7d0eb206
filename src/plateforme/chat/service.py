"""Chat completions on a served model: context check, generation, streaming, n choices."""

import asyncio
from collections.abc import AsyncIterator

from plateforme.chat.errors import ContextLengthExceeded, UnknownModel
from plateforme.chat.fanout import merge
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.pool import ModelWorker, WorkerPool
from plateforme.models.registry import ModelRegistry


class ChatService:
    def __init__(self, registry: ModelRegistry, pool: WorkerPool):
        self.registry = registry
        self.pool = pool

    def _worker(self, model: str) -> ModelWorker:
        spec = self.registry.get(model)
        if spec is None:
            raise UnknownModel(model)
        return self.pool.get(spec.name)

    async def _engine_payloads(
        self, worker: ModelWorker, client: OpenAIEngineClient, req: ChatRequest
    ) -> tuple[list[dict], int]:
        """One engine request per choice, and the prompt's token count."""
        window = worker.spec.context_length
        prompt_tokens = await client.count_chat_prompt_tokens(req.messages)
        max_tokens = req.max_tokens if req.max_tokens is not None else window - prompt_tokens
        if prompt_tokens + max(max_tokens, 1) > window:
            raise ContextLengthExceeded(
                f"Prompt contains {prompt_tokens} tokens and max_tokens is {req.max_tokens}: "
                f"together they exceed the {window}-token context of model {req.model!r}. "
                "Shorten the messages or lower max_tokens."
                if req.max_tokens is not None
                else f"Prompt contains {prompt_tokens} tokens, too large for model {req.model!r} "
                f"with {window} maximum context length. Shorten the messages."
            )
        base = {
            "messages": req.messages,
            "max_tokens": max_tokens,
            "temperature": req.temperature if req.temperature is not None else worker.spec.default_temperature,
        }
        optional = {
            "top_p": req.top_p,
            "stop": req.stop or None,
            "presence_penalty": req.presence_penalty,
            "frequency_penalty": req.frequency_penalty,
        }
        base.update({k: v for k, v in optional.items() if v is not None})
        payloads = []
        for i in range(req.n):
            payload = dict(base)
            if req.seed is not None:
                # Distinct but reproducible choices: choice i samples with seed + i.
                payload["seed"] = req.seed + i
            payloads.append(payload)
        return payloads, prompt_tokens

    async def complete(self, req: ChatRequest) -> Completion:
        worker = self._worker(req.model)
        with worker.admission.admit():
            client = worker.client()
            payloads, prompt_tokens = await self._engine_payloads(worker, client, req)
            results = await asyncio.gather(*(client.chat(p) for p in payloads))
        choices = []
        completion_tokens = 0
        for index, result in enumerate(results):
            engine_choice = result["choices"][0]
            choices.append(Choice(index, engine_choice["message"].get("content") or "",
                                  engine_choice["finish_reason"]))
            completion_tokens += result["usage"]["completion_tokens"]
        return Completion(choices, Usage(prompt_tokens, completion_tokens))

    async def stream(self, req: ChatRequest) -> AsyncIterator[Delta | Usage]:
        """Deltas of every choice as they are generated, then one Usage for the whole request.

        Checks (model, capacity, context) run before the first item, so a caller can still
        answer with an HTTP error when the first `__anext__` raises.
        """
        worker = self._worker(req.model)
        with worker.admission.admit():
            client = worker.client()
            payloads, prompt_tokens = await self._engine_payloads(worker, client, req)
            streams = [self._choice_stream(client, i, p) for i, p in enumerate(payloads)]
            completion_tokens = 0
            async for item in merge(streams):
                if isinstance(item, Usage):
                    completion_tokens += item.completion_tokens
                else:
                    yield item
            yield Usage(prompt_tokens, completion_tokens)

    @staticmethod
    async def _choice_stream(client: OpenAIEngineClient, index: int, payload: dict):
        async for chunk in client.stream_chat(payload):
            if chunk.get("usage"):
                yield Usage(chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
            for engine_choice in chunk.get("choices", []):
                delta = engine_choice.get("delta") or {}
                content = delta.get("content")
                role = delta.get("role")
                finish = engine_choice.get("finish_reason")
                if content or role or finish:
                    yield Delta(index, content=content, role=role, finish_reason=finish)
