"""One model step of a response, through the request pipeline (limits, usage, traces, guardrails).

    step = ModelStep(pipeline, principal, request, message_id, output_index, persona)
    async for event in step.events(budget): ...   # message.output.delta events
    step.text, step.calls, step.finish, step.usage

The step's text streams as message.output.delta events of the message entry `message_id`; its
tool calls arrive whole at the end. The wall-time bound applies to each wait on the engine.
"""

import asyncio
import dataclasses

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
    def __init__(self, pipeline, principal, request: ChatRequest, message_id: str, output_index: int, persona):
        self.pipeline, self.principal, self.request = pipeline, principal, request
        self.message_id, self.output_index, self.persona = message_id, output_index, persona
        self.call = GenerationCall(principal, "chat", request, traced=StepTrace(request))
        self.started_at = now_iso()
        self.text = ""
        self.calls: list[dict] = []
        self.finish: str | None = None
        self.usage = Usage(0, 0)

    def _delta_event(self, content: str) -> dict:
        return {"type": "message.output.delta", "created_at": now_iso(), "output_index": self.output_index,
                "id": self.message_id, "content_index": 0, "model": self.persona.model,
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
                        yield self._delta_event(item.content)
        finally:
            await stream.aclose()
