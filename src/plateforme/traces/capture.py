"""Capture one chat completion: the request as sent, and the final answer once it is complete.

Nothing here may break the completion itself: every step is guarded and only logs on failure.
Streams are passed through untouched; each delta is appended to an assembler, and the trace is
scheduled for writing (in the background) when the stream's usage, its last item, goes by.
A request a guard blocked (before generation, or its answer withheld) is kept too, marked
`blocked`: its answer is the refusal, with what was withheld; the guardrails' report is kept with
every trace of a guarded request.
"""

import logging
from collections.abc import AsyncIterator, Callable

from plateforme.chat.types import Choice, Completion, Delta, Usage
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.principal import Principal
from plateforme.traces.recorder import TraceRecorder
from plateforme.traces.stream_assembly import StreamAssembler

log = logging.getLogger("plateforme.traces")


def response_record(completion_id: str, model: str, created: int, choices: list[Choice], usage: Usage) -> dict:
    """The answer in the shape of a non-streaming chat completion (without log probabilities)."""
    out = []
    for c in choices:
        message: dict = {"role": "assistant", "content": c.content}
        if c.thinking:  # as the API answers a reasoning model: [thinking chunk, text chunk]
            message["content"] = [{"type": "thinking", "thinking": [{"type": "text", "text": c.thinking}]},
                                  {"type": "text", "text": c.content or ""}]
        if c.tool_calls:
            message["tool_calls"] = c.tool_calls
        out.append({"index": c.index, "message": message, "finish_reason": c.finish_reason})
    return {"id": completion_id, "object": "chat.completion", "model": model, "created": created, "choices": out,
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens}}


class Capture:
    def __init__(self, recorder: TraceRecorder, who: Principal, completion_id: str, model: str, created: int,
                 request: dict, stream: bool):
        self.recorder = recorder
        self.who, self.completion_id, self.model, self.created = who, completion_id, model, created
        self.request, self.stream = request, stream
        # What the request's guardrails checked and found, read when the trace is written.
        self.report: Callable[[], list[dict] | None] = lambda: None

    def redact_request(self, redact: Callable[[str], str]) -> None:
        """Apply `redact` to the text of every message of the captured request."""
        for message in self.request.get("messages") or ():
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = redact(content)
            elif isinstance(content, list):
                for chunk in content:
                    if isinstance(chunk, dict) and isinstance(chunk.get("text"), str):
                        chunk["text"] = redact(chunk["text"])

    def _write(self, response: dict, blocked: bool = False, report: list[dict] | None = None) -> None:
        self.recorder.save_later(ChatTrace(
            workspace_id=self.who.workspace_id, completion_id=self.completion_id, api_key_id=self.who.key_id,
            model=self.model, stream=self.stream, request=self.request, response=response, blocked=blocked,
            guardrails=report if report is not None else self.report()))

    def _save(self, choices: list[Choice], usage: Usage) -> None:
        try:
            self._write(response_record(self.completion_id, self.model, self.created, choices, usage))
        except Exception:
            log.exception("could not capture the trace of %s", self.completion_id)

    def blocked(self, refusal: Exception, withheld: list[str] | None = None) -> None:
        """The request was refused (`refusal`: a RequestRefused); `withheld`: the answer (one text
        per choice), or the stream so far, that the caller did not get."""
        try:
            response = {"id": self.completion_id, "object": "error", "message": f"Request blocked: {refusal}.",
                        "type": "forbidden", "code": "403"}
            withheld = getattr(refusal, "answer", None) or withheld
            if withheld is not None:
                response["withheld"] = [{"index": i, "content": text} for i, text in enumerate(withheld)]
            self._write(response, blocked=True, report=getattr(refusal, "report", None))
        except Exception:
            log.exception("could not capture the trace of %s", self.completion_id)

    def completed(self, result: Completion) -> None:
        """A non-streaming completion was answered."""
        self._save(result.choices, result.usage)

    async def wrap(self, events: AsyncIterator[Delta | Usage],
                   blocked: type[BaseException] | tuple = ()) -> AsyncIterator[Delta | Usage]:
        """Pass a chat stream through, capturing it; a stream that fails or is cut is not stored,
        one stopped by a `blocked` exception (a guard's refusal) is, as blocked."""
        assembler: StreamAssembler | None = StreamAssembler()
        try:
            async for item in events:
                if assembler is not None:
                    try:
                        if isinstance(item, Usage):
                            self._save(assembler.choices(), item)
                            assembler = None
                        else:
                            assembler.add(item)
                    except Exception:
                        log.exception("could not capture the stream of %s", self.completion_id)
                        assembler = None
                yield item
        except blocked as exc:
            if assembler is not None:
                self.blocked(exc, [c.content or "" for c in assembler.choices()])
            raise
        finally:
            await events.aclose()
