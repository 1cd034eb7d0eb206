"""The one path of every generation: admission and limits, guards, traces, usage, metrics.

    pipeline = RequestPipeline(billing, traces, metrics, {"chat": chat_service, "fim": fim_service})
    result = await pipeline.complete(GenerationCall(principal, "chat", chat_request))
    async for item in await pipeline.stream(GenerationCall(principal, "chat", chat_request)): ...

HTTP routes call it (api/completions.py) and so will batch jobs, agent loops and evaluations:
each is limited by its workspace's and key's limits, billed exactly once however it ends,
captured when its workspace captures traces, and counted in the metrics. The pipeline's own
cost (everything but the generation) is measured per request in
`plateforme_pipeline_seconds{stage}` (admit: limits, guards, capture switch; record: usage write);
the guardrails' share of it in `plateforme_guardrail_seconds{stage}` (input, output).
"""

import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.types import Completion, Delta, Usage
from plateforme.pipeline.call import GenerationCall
from plateforme.pipeline.guards import GUARDRAILS, OutputGuard, RequestGuard, RequestRefused
from plateforme.pipeline.settlement import UsageSettlement, settled_stream
from plateforme.traces.capture import Capture

log = logging.getLogger("plateforme.pipeline")


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
        if getattr(call.request, "guardrails", None) and not any(g.name == GUARDRAILS for g in self.guards):
            raise InvalidChatRequest("guardrails: this server has no moderation service to check them; remove "
                                     "the field, or ask the operator to enable moderation", "guardrails")
        began = time.perf_counter()
        who = call.principal
        await self.billing.admit(who)
        try:
            for guard in self.guards:
                await guard.check(call)
        except RequestRefused as exc:
            await self._refused(call, stream, exc)
            raise
        call.request.tenant = who.workspace_id  # admission shares each model fairly between workspaces
        settlement = UsageSettlement(call.id, self._recorder(call), self._ended(call.model))
        capture = await self._capture(call, stream)
        self._observe("admit", began)
        return self.services[call.route], settlement, capture

    async def _capture(self, call: GenerationCall, stream: bool) -> Capture | None:
        if call.traced is None:
            return None
        capture = await self.traces.begin(call.principal, call.id, call.model, call.created, stream, call.traced)
        if capture is not None:
            capture.report = lambda: call.guardrails
            if call.redact is not None:  # the guardrails redacted the input: the trace keeps it redacted
                capture.redact_request(call.redact)
        return capture

    async def _refused(self, call: GenerationCall, stream: bool, exc: RequestRefused) -> None:
        """Count a guard's refusal; keep it (usage row, trace) as blocked when it asks to be."""
        self._ended(call.model)("refused")
        if not exc.record:
            return
        try:
            await self.billing.record(call.principal, call.model, call.route, call.id, 0, 0, blocked=True,
                                      guardrail_tokens=call.guardrail_tokens)
            capture = await self._capture(call, stream)
            if capture is not None:
                capture.blocked(exc)
        except Exception:  # the refusal is answered all the same
            log.exception("the refusal of %s could not be recorded", call.id)

    def _recorder(self, call: GenerationCall):
        async def record(usage: Usage, blocked: bool = False) -> None:
            began = time.perf_counter()
            if self.metrics is not None:
                self.metrics.observe_tokens(call.model, usage.prompt_tokens, usage.completion_tokens)
            await self.billing.record(call.principal, call.model, call.route, call.id,
                                      usage.prompt_tokens, usage.completion_tokens, blocked=blocked,
                                      guardrail_tokens=call.guardrail_tokens)
            self._observe("record", began)
        return record

    def _ended(self, model: str):
        def ended(outcome: str) -> None:
            if self.metrics is not None:
                self.metrics.observe_generation_end(model, outcome)
        return ended

    def _output_guards(self) -> list[OutputGuard]:
        return [g for g in self.guards if isinstance(g, OutputGuard)]

    async def complete(self, call: GenerationCall) -> Completion:
        """The whole answer. Cancelled midway (the client left), what was generated is billed. An
        output guard that withholds the answer raises RequestRefused: billed, recorded as blocked."""
        service, settlement, capture = await self._begin(call, False)
        try:
            result = await service.complete(call.request, settlement.tally)
            for guard in self._output_guards():
                await guard.check_output(call, result)
        except RequestRefused as exc:
            await settlement.complete(result.usage, outcome="blocked")
            if capture is not None:
                capture.blocked(exc, [c.content or "" for c in result.choices])
            raise
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
        here, where an HTTP caller can still answer it with its status. An output guard that
        stops the stream later raises RequestRefused from the iteration (billed, recorded blocked)."""
        service, settlement, capture = await self._begin(call, True)
        events = service.stream(call.request, settlement.tally)
        for guard in self._output_guards():
            events = guard.watch_stream(call, events)
        if capture is not None:
            events = capture.wrap(events, blocked=RequestRefused)
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
