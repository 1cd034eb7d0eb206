"""One model step of a response, through the request pipeline (limits, usage, traces, guardrails).

    step = ModelStep(pipeline, principal, request, message_id, output_index, persona, references)
    async for event in step.events(budget): ...   # message.output.delta events
    step.content(), step.calls, step.finish, step.usage

The step's text streams as message.output.delta events of the message entry `message_id`; once
the response's tools returned references, through agent_tools.citations.CitationStream: its [n]
markers become tool_reference chunks (their content_index), and the entry's content is cite(text).
Its tool calls arrive whole at the end. The wall-time bound applies to each wait on the engine.
"""

import asyncio
import dataclasses
import time

from plateforme.agent_tools.citations import CitationStream
from plateforme.chat.types import ChatRequest, Delta, Usage
from plateforme.conversations.entries import now_iso
from plateforme.conversations.limits import LoopBudget
from plateforme.pipeline.call import GenerationCall


class StepTrace:
    """What a step's trace keeps as its request (traces/service.begin dumps it): the chat
    completion the model was asked, in the chat API's field names."""

    def __init__(self, request: ChatRequest):
        self.request = request

    def model_dump(self, mode: str = "json", exclude_unset: bool = True) -> dict:
        r = self.request
        out = {"model": r.model, "messages": [dict(m) for m in r.messages]}
        if r.tools:
            out["tools"], out["tool_choice"] = r.tools, r.tool_choice
        optional = {"max_tokens": r.max_tokens, "temperature": r.temperature, "top_p": r.top_p,
                    "stop": r.stop or None, "random_seed": r.seed, "presence_penalty": r.presence_penalty,
                    "frequency_penalty": r.frequency_penalty}
        out.update({k: v for k, v in optional.items() if v is not None})
        if r.guardrails:
            out["guardrails"] = [dataclasses.asdict(rule) for rule in r.guardrails]
        return out


class ModelStep:
    def __init__(self, pipeline, principal, request: ChatRequest, message_id: str, output_index: int, persona,
                 references: list[dict] | None = None):
        self.pipeline, self.principal, self.request = pipeline, principal, request
        self.citations = CitationStream(references) if references else None
        self.message_id, self.output_index, self.persona = message_id, output_index, persona
        # Each step's time to first token is its own (not from the HTTP request's arrival).
        self.call = GenerationCall(principal, "chat", request, traced=StepTrace(request), started=time.perf_counter())
        self.started_at = now_iso()
        self.text = ""
        self.calls: list[dict] = []
        self.finish: str | None = None
        self.usage = Usage(0, 0)

    def content(self) -> str | list[dict]:
        """The message entry's content: the text, or its chunks citing the references."""
        return self.citations.content() if self.citations is not None else self.text

    def _pieces(self, text: str | None) -> list[tuple[int, str | dict]]:
        if self.citations is None:
            return [(0, text)] if text else []
        return self.citations.feed(text) if text is not None else self.citations.finish()

    def _delta_event(self, content_index: int, content: str | dict) -> dict:
        return {"type": "message.output.delta", "created_at": now_iso(), "output_index": self.output_index,
                "id": self.message_id, "content_index": content_index, "model": self.persona.model,
                "agent_id": self.persona.agent_id, "role": "assistant", "content": content}

    async def events(self, budget: LoopBudget):
        """The step's message.output.delta events; raises LoopBoundReached past the wall-time bound."""
        try:
            async with asyncio.timeout(max(budget.remaining_seconds(), 0)):
                stream = await self.pipeline.stream(self.call)
        except TimeoutError:
            raise budget.seconds_reached() from None
        try:
            while True:
                try:
                    async with asyncio.timeout(max(budget.remaining_seconds(), 0)):
                        item = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise budget.seconds_reached() from None
                if isinstance(item, Usage):
                    self.usage = item
                elif isinstance(item, Delta) and item.index == 0:
                    if item.tool_calls:
                        self.calls += item.tool_calls
                    if item.finish_reason:
                        self.finish = item.finish_reason
                    if item.content:
                        self.text += item.content
                        for index, content in self._pieces(item.content):
                            yield self._delta_event(index, content)
        finally:
            await stream.aclose()
        if self.text:
            for index, content in self._pieces(None):
                yield self._delta_event(index, content)
