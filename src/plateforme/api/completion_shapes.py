"""A completion on the wire: the response of a non-streaming request, the chunks of a stream.

A reasoning model's thinking goes apart from its answer, as Mistral sends it: the message's
`content` is then the list [thinking chunk, text chunk], and a streamed piece of thinking is a
delta whose `content` is [thinking chunk].
"""

from plateforme.api.schemas.chat import AssistantMessageOut, ChatCompletionChoice, ChatCompletionResponse, UsageInfo
from plateforme.api.schemas.chat_messages import TextChunk, ThinkChunk
from plateforme.chat.types import Choice, Completion, Delta, Usage


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                     total_tokens=usage.total_tokens)


def thinking_chunk(text: str) -> dict:
    """Mistral's ThinkChunk holding `text`."""
    return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}


def message_content(choice: Choice) -> str | list | None:
    if not choice.thinking:
        return choice.content
    return [ThinkChunk(thinking=[TextChunk(text=choice.thinking)]), TextChunk(text=choice.content or "")]


def completion_response(completion_id: str, model: str, created: int, result: Completion) -> ChatCompletionResponse:
    return ChatCompletionResponse(
        id=completion_id, model=model, created=created,
        choices=[
            ChatCompletionChoice(
                index=c.index, finish_reason=c.finish_reason,
                message=AssistantMessageOut(content=message_content(c), tool_calls=c.tool_calls or None),
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
    body["content"] = [thinking_chunk(delta.thinking)] if delta.thinking else delta.content or ""
    if delta.tool_calls:
        body["tool_calls"] = delta.tool_calls
    choice = {"index": delta.index, "delta": body, "finish_reason": delta.finish_reason}
    if delta.logprobs:
        choice["logprobs"] = {"content": delta.logprobs}
    return choice
