"""The one path of every generation: admission and limits, guards, traces, usage, metrics.

    pipeline = RequestPipeline(billing, traces, metrics, {"chat": chat_service, "fim": fim_service})
    result = await pipeline.complete(GenerationCall(principal, "chat", chat_request))
    async for item in await pipeline.stream(GenerationCall(principal, "chat", chat_request)): ...

HTTP routes call it (api/completions.py) and so will batch jobs, agent loops and evaluations:
each is limited by its workspace's and key's limits, billed exactly once however it ends,
captured when its workspace captures traces, and counted in the metrics. The pipeline's own
cost (everything but the generation) is measured per request in
`plateforme_pipeline_seconds{stage}` (admit: limits, guards, capture switch; record: usage write).
"""

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from plateforme.chat.types import Completion, Delta, Usage
from plateforme.pipeline.call import GenerationCall
from plateforme.pipeline.guards import RequestGuard
from plateforme.pipeline.settlement import UsageSettlement, settled_stream
from plateforme.traces.capture import Capture


class RequestPipeline:
    def __init__(self, billing, traces, metrics, services: dict[str, Any],
                 guards: Sequence[RequestGuard] = ()):
        """`billing`: usage.billing.Billing; `traces`: traces.service.TraceService; `metrics`:
        observability.metrics.Metrics (or None); `services`: the capability of each route, with
        `complete(request, tally)` and `stream(request, tally)`."""
        self.billing, self.traces, self.metrics = billing, traces, metrics
        self.services = services
        self.guards = list(guards)

    def _observe(self, stage: str, since: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_pipeline(stage, time.perf_counter() - since)

    async def _begin(self, call: GenerationCall, stream: bool) -> tuple[Any, UsageSettlement, Capture | None]:
        """Admit `call` (raises RateLimited, RequestRefused) and prepare its settlement and capture."""
        if call.route not in self.services:
            raise ValueError(f"no capability serves route {call.route!r}")
        began = time.perf_counter()
        who = call.principal
        await self.billing.admit(who)
        for guard in self.guards:
            await guard.check(call)
        call.request.tenant = who.workspace_id  # admission shares each model fairly between workspaces
        settlement = UsageSettlement(call.id, self._recorder(call), self._ended(call.model))
        capture = None if call.traced is None else \
            await self.traces.begin(who, call.id, call.model, call.created, stream, call.traced)
        self._observe("admit", began)
        return self.services[call.route], settlement, capture

    def _recorder(self, call: GenerationCall):
        async def record(usage: Usage) -> None:
            began = time.perf_counter()
            if self.metrics is not None:
                self.metrics.observe_tokens(call.model, usage.prompt_tokens, usage.completion_tokens)
            await self.billing.record(call.principal, call.model, call.route, call.id,
                                      usage.prompt_tokens, usage.completion_tokens)
            self._observe("record", began)
        return record

    def _ended(self, model: str):
        def ended(outcome: str) -> None:
            if self.metrics is not None:
                self.metrics.observe_generation_end(model, outcome)
        return ended

    async def complete(self, call: GenerationCall) -> Completion:
        """The whole answer. Cancelled midway (the client left), what was generated is billed."""
        service, settlement, capture = await self._begin(call, False)
        try:
            result = await service.complete(call.request, settlement.tally)
        except BaseException as exc:
            settlement.failed(exc)
            raise
        await settlement.complete(result.usage)
        if capture is not None:
            capture.completed(result)  # written in the background
        return result

    async def stream(self, call: GenerationCall) -> AsyncIterator[Delta | Usage]:
        """The answer's deltas, then one Usage. The checks (limits, guards, model, capacity,
        context) and the engine's acceptance happen before this returns, so a refusal is raised
        here, where an HTTP caller can still answer it with its status."""
        service, settlement, capture = await self._begin(call, True)
        events = service.stream(call.request, settlement.tally)
        if capture is not None:
            events = capture.wrap(events)
        try:
            first = await anext(events)
        except BaseException as exc:
            settlement.failed(exc)
            await events.aclose()
            raise
        return settled_stream(first, events, settlement, lambda: self._first_token(call))

    def _first_token(self, call: GenerationCall) -> None:
        if self.metrics is not None:
            self.metrics.observe_ttft(call.model, time.perf_counter() - call.started)
