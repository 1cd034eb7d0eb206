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
from plateforme.chat.remote_choice import RemoteChoiceStream
from plateforme.chat.remote_payload import check_remote_request, remote_payload
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.engines.engine import Engine
from plateforme.engines.errors import EngineContextExceeded
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.pool import WorkerPool
from plateforme.engines.token_tally import TokenTally
from plateforme.models.registry import ModelRegistry


class ChatService:
    def __init__(self, registry: ModelRegistry, pool: WorkerPool, fine_tunes=None):
        self.registry = registry
        self.pool = pool
        # Resolves a workspace's fine-tuned models (fine_tuning.serving.FineTuneServing), if any.
        self.fine_tunes = fine_tunes

    async def _worker(self, req: ChatRequest) -> Engine:
        if self.fine_tunes is not None and self.registry.get(req.model) is None:
            target = await self.fine_tunes.resolve(req.tenant, req.model)  # off the event loop
            if target is not None:
                return target
        return self.pool.get(self.registry.require(req.model).name)

    async def _plan(self, worker: Engine, client: OpenAIEngineClient, req: ChatRequest,
                    tally: TokenTally | None) -> list[ChoiceStream]:
        check_messages(req.messages, req.prefix)
        if req.json_schema:
            check_schema(req.json_schema, "response_format.json_schema.schema")

        def client_for(index: int):  # each choice's engine calls are counted as they stream
            return client if tally is None else tally.client(client, index)

        if not worker.capabilities.grammar:  # the server's own tools and structured outputs
            check_remote_request(req, worker.spec, worker.capabilities)
            payload = remote_payload(req, worker.spec)
            return [RemoteChoiceStream(client_for(i), i, payload, req) for i in range(req.n)]
        if worker.spec.tokenizer:  # Mistral-format model: mistral-common tokenizes (off the event loop)
            return await asyncio.to_thread(mistral_choices, client_for, worker.spec, req)
        payload = engine_payload(req, worker.spec.default_temperature, req.max_tokens)
        generic = uses_generic_tools(req)
        return [ChoiceStream(client_for(i), i, payload, req, generic) for i in range(req.n)]

    async def _check_context(self, worker: Engine, req: ChatRequest, choice: ChoiceStream) -> None:
        """Refuse prompt + max_tokens (or min_tokens) beyond the window (the engine itself refuses
        a prompt that alone is too long)."""
        window = worker.spec.context_length
        field, wanted = max(("max_tokens", req.max_tokens or 0), ("min_tokens", req.min_tokens or 0),
                            key=lambda pair: pair[1])
        if not wanted or choice.prompt_token_bound() + wanted <= window:
            return  # surely fits: no round trip to the engine (it would delay every stream's start)
        if not worker.capabilities.exact_prompt_count:
            return  # the engine cannot count the prompt: the server itself refuses what does not fit
        prompt_tokens = await choice.count_prompt_tokens()
        if prompt_tokens + wanted > window:
            raise ContextLengthExceeded(
                f"Prompt contains {prompt_tokens} tokens and {field} is {wanted}: "
                f"together they exceed the {window}-token context of model {req.model!r}. "
                f"Shorten the messages or lower {field}.")

    def _too_long(self, exc: EngineContextExceeded, req: ChatRequest) -> ContextLengthExceeded:
        return ContextLengthExceeded(
            f"Prompt contains {exc.prompt_tokens} tokens, too large for model {req.model!r} "
            f"with {exc.context} maximum context length. Shorten the messages.")

    async def complete(self, req: ChatRequest, tally: TokenTally | None = None) -> Completion:
        """The whole answer. `tally` counts the tokens generated as they come (billed even if
        this is cancelled midway)."""
        worker = await self._worker(req)
        # Each choice holds an engine slot: n choices take n of them from admission.
        async with worker.admission.admit(req.tenant, weight=req.n):
            client = worker.client()
            choices = await self._plan(worker, client, req, tally)
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

    async def stream(self, req: ChatRequest, tally: TokenTally | None = None) -> AsyncIterator[Delta | Usage]:
        """Deltas of every choice as they are generated, then one Usage for the whole request.

        Nothing is yielded until the checks (model, capacity, context) have passed and the engine
        has accepted every choice, so a caller can still answer with an HTTP error when the first
        `__anext__` raises.
        """
        worker = await self._worker(req)
        async with worker.admission.admit(req.tenant, weight=req.n):
            client = worker.client()
            choices = await self._plan(worker, client, req, tally)
            streams = [c.stream() for c in choices]
            heads = [asyncio.create_task(anext(s, None)) for s in streams]
            try:
                await self._check_context(worker, req, choices[0])
                firsts = await asyncio.gather(*heads)
            except BaseException as exc:
                for task in heads:
                    task.cancel()
                await asyncio.gather(*heads, return_exceptions=True)
                for s in streams:
                    await s.aclose()
                if isinstance(exc, EngineContextExceeded):
                    raise self._too_long(exc, req) from exc
                raise
            merged = merge([_resumed(first, s) for first, s in zip(firsts, streams)])
            usages: list[Usage] = []
            try:
                async for item in merged:
                    if isinstance(item, Usage):
                        usages.append(item)
                    else:
                        yield item
            finally:
                await merged.aclose()
            yield Usage(usages[0].prompt_tokens if usages else 0,
                        sum(u.completion_tokens for u in usages))


async def _resumed(first, rest: AsyncIterator) -> AsyncIterator:
    """`first` (already taken from `rest`), then the rest of `rest`."""
    if first is not None:
        yield first
    async for item in rest:
        yield item


__all__ = ["ChatService", "Choice"]
