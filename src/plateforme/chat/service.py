"""Chat completions on a served model: checks, generation, streaming, n choices, tools."""

import asyncio
from collections.abc import AsyncIterator

from plateforme.chat.choice_stream import ChoiceStream
from plateforme.chat.engine_payload import engine_payload, uses_generic_tools
from plateforme.chat.errors import ContextLengthExceeded
from plateforme.chat.fanout import merge
from plateforme.chat.json_schema_support import check_schema
from plateforme.chat.message_checks import check_messages
from plateforme.chat.mistral_choice import mistral_choices
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.engines.errors import EngineContextExceeded
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.pool import ModelWorker, WorkerPool
from plateforme.models.registry import ModelRegistry


class ChatService:
    def __init__(self, registry: ModelRegistry, pool: WorkerPool, fine_tunes=None):
        self.registry = registry
        self.pool = pool
        # Resolves a workspace's fine-tuned models (fine_tuning.serving.FineTuneServing), if any.
        self.fine_tunes = fine_tunes

    def _worker(self, req: ChatRequest) -> ModelWorker:
        if self.fine_tunes is not None and self.registry.get(req.model) is None:
            target = self.fine_tunes.target(req.tenant, req.model)
            if target is not None:
                return target
        return self.pool.get(self.registry.require(req.model).name)

    async def _plan(self, worker: ModelWorker, client: OpenAIEngineClient,
                    req: ChatRequest) -> list[ChoiceStream]:
        check_messages(req.messages, req.prefix)
        if req.json_schema:
            check_schema(req.json_schema, "response_format.json_schema.schema")
        if worker.spec.tokenizer:  # Mistral-format model: mistral-common tokenizes (off the event loop)
            return await asyncio.to_thread(mistral_choices, client, worker.spec, req)
        payload = engine_payload(req, worker.spec.default_temperature, req.max_tokens)
        generic = uses_generic_tools(req)
        return [ChoiceStream(client, i, payload, req, generic) for i in range(req.n)]

    async def _check_context(self, worker: ModelWorker, req: ChatRequest, choice: ChoiceStream) -> None:
        """Refuse prompt + max_tokens beyond the window (the engine itself refuses a too-long prompt)."""
        window = worker.spec.context_length
        if req.max_tokens is None or choice.prompt_token_bound() + req.max_tokens <= window:
            return  # surely fits: no round trip to the engine (it would delay every stream's start)
        prompt_tokens = await choice.count_prompt_tokens()
        if prompt_tokens + req.max_tokens > window:
            raise ContextLengthExceeded(
                f"Prompt contains {prompt_tokens} tokens and max_tokens is {req.max_tokens}: "
                f"together they exceed the {window}-token context of model {req.model!r}. "
                "Shorten the messages or lower max_tokens.")

    def _too_long(self, exc: EngineContextExceeded, req: ChatRequest) -> ContextLengthExceeded:
        return ContextLengthExceeded(
            f"Prompt contains {exc.prompt_tokens} tokens, too large for model {req.model!r} "
            f"with {exc.context} maximum context length. Shorten the messages.")

    async def complete(self, req: ChatRequest) -> Completion:
        worker = self._worker(req)
        async with worker.admission.admit(req.tenant):
            client = worker.client()
            choices = await self._plan(worker, client, req)
            # The context check runs while generation starts: it only costs time when it fails.
            generations = [asyncio.create_task(c.run()) for c in choices]
            try:
                await self._check_context(worker, req, choices[0])
                results = await asyncio.gather(*generations)
            except EngineContextExceeded as exc:
                raise self._too_long(exc, req) from exc
            finally:
                for task in generations:
                    task.cancel()
                await asyncio.gather(*generations, return_exceptions=True)
        usage = Usage(results[0][1].prompt_tokens, sum(u.completion_tokens for _, u in results))
        return Completion([choice for choice, _ in results], usage)

    async def stream(self, req: ChatRequest) -> AsyncIterator[Delta | Usage]:
        """Deltas of every choice as they are generated, then one Usage for the whole request.

        Checks (model, capacity, context) run before the first item, so a caller can still
        answer with an HTTP error when the first `__anext__` raises.
        """
        worker = self._worker(req)
        async with worker.admission.admit(req.tenant):
            client = worker.client()
            choices = await self._plan(worker, client, req)
            merged = merge([c.stream() for c in choices])
            first = asyncio.create_task(anext(merged, None))
            try:
                await self._check_context(worker, req, choices[0])
                item = await first
            except EngineContextExceeded as exc:
                raise self._too_long(exc, req) from exc
            except BaseException:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
                await merged.aclose()
                raise
            usages: list[Usage] = []
            try:
                while item is not None:
                    if isinstance(item, Usage):
                        usages.append(item)
                    else:
                        yield item
                    item = await anext(merged, None)
            finally:
                await merged.aclose()
            yield Usage(usages[0].prompt_tokens if usages else 0,
                        sum(u.completion_tokens for u in usages))


__all__ = ["ChatService", "Choice"]
