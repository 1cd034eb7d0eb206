"""Run a planned generation on its engine: admission, context check, gating, merging.

    core = GenerationCore(resolver)
    events = core.stream(req, plan, tally, prompt="the messages", param="messages")

`plan(engine, client_for)` builds the request's choices (generation/choice.py) for the resolved
engine; `client_for(index)` is the engine client of choice `index`, counted by the request's
TokenTally so what it generates is billed even if the request is cut.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from plateforme.chat.fanout import merge
from plateforme.chat.types import Completion, Delta, Usage
from plateforme.engines.engine import Engine
from plateforme.engines.errors import EngineContextExceeded
from plateforme.engines.token_tally import TokenTally
from plateforme.generation.choice import ChoiceGeneration
from plateforme.generation.context_window import check_context, too_long
from plateforme.generation.engine_resolution import EngineResolver
from plateforme.generation.reduction import reduce_stream

Plan = Callable[[Engine, Callable[[int], object]], Awaitable[list[ChoiceGeneration]]]


class GenerationCore:
    def __init__(self, resolver: EngineResolver):
        self.resolver = resolver

    async def complete(self, req, plan: Plan, tally: TokenTally | None, prompt: str, param: str,
                       n: int = 1, with_logprobs: bool = False) -> Completion:
        """The whole answer (the stream, reduced)."""
        return await reduce_stream(self.stream(req, plan, tally, prompt, param, n), n, with_logprobs)

    async def stream(self, req, plan: Plan, tally: TokenTally | None, prompt: str, param: str,
                     n: int = 1) -> AsyncIterator[Delta | Usage]:
        """Deltas of every choice as they are generated, then one Usage for the whole request.

        Nothing is yielded until the checks (model, capacity, context) have passed and the engine
        has accepted every choice, so a caller can still answer with an HTTP error when the first
        `__anext__` raises.
        """
        engine = await self.resolver.resolve(req.tenant, req.model)
        # Each choice holds an engine slot: n choices take n of them from admission.
        async with engine.admission.admit(req.tenant, weight=n):
            client = engine.client()

            def client_for(index: int):
                return client if tally is None else tally.client(client, index, engine.capabilities.stream_timings)

            try:
                choices = await plan(engine, client_for)
                streams = [c.stream() for c in choices]
            except EngineContextExceeded as exc:
                raise too_long(exc, req, prompt, param) from exc
            heads = [asyncio.create_task(anext(s, None)) for s in streams]
            try:
                # The context check runs while the engine starts: it only costs time when it fails.
                await check_context(engine, req, choices[0], prompt, param)
                firsts = await asyncio.gather(*heads)
            except BaseException as exc:
                for task in heads:
                    task.cancel()
                await asyncio.gather(*heads, return_exceptions=True)
                for s in streams:
                    await s.aclose()
                if isinstance(exc, EngineContextExceeded):
                    raise too_long(exc, req, prompt, param) from exc
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
            yield Usage(usages[0].prompt_tokens if usages else 0, sum(u.completion_tokens for u in usages))


async def _resumed(first, rest: AsyncIterator) -> AsyncIterator:
    """`first` (already taken from `rest`), then the rest of `rest`."""
    if first is not None:
        yield first
    async for item in rest:
        yield item
