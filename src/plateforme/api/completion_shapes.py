"""A completion on the wire: the response of a non-streaming request, the chunks of a stream."""

from plateforme.api.schemas.chat import AssistantMessageOut, ChatCompletionChoice, ChatCompletionResponse, UsageInfo
from plateforme.chat.types import Completion, Delta, Usage


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                     total_tokens=usage.total_tokens)


def completion_response(completion_id: str, model: str, created: int, result: Completion) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        id=completion_id, model=model, created=created,
        choices=[
            ChatCompletionChoice(
                index=c.index, finish_reason=c.finish_reason,
                message=AssistantMessageOut(content=c.content, tool_calls=c.tool_calls or None),
                logprobs={"content": c.logprobs} if c.logprobs is not None else None)
            for c in result.choices
        ],
        usage=usage_info(result.usage),
    )


def chunk_choice(delta: Delta) -> dict:
    """One streamed choice's piece, as the `choices[]` item of a `chat.completion.chunk`."""
    body: dict = {}
    if delta.role:
        body["role"] = delta.role
    body["content"] = delta.content or ""
    if delta.tool_calls:
        body["tool_calls"] = delta.tool_calls
    choice = {"index": delta.index, "delta": body, "finish_reason": delta.finish_reason}
    if delta.logprobs:
        choice["logprobs"] = {"content": delta.logprobs}
    return choice
