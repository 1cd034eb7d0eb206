"""Chat prompts for Mistral-format models, tokenized by mistral-common as Mistral does.

A model whose spec names a Mistral tokenizer file (tekken.json, tokenizer.model.v*) gets its
prompt built here, not by the GGUF's chat template: system prompt, tools, assistant tool calls,
tool results and an assistant `prefix` are encoded by `MistralTokenizer.encode_chat_completion`,
and the token ids go to the engine unchanged.
"""

import functools

from mistral_common.exceptions import MistralCommonException
from mistral_common.protocol.instruct.messages import (
    AssistantMessage, SystemMessage, ToolMessage, UserMessage,
)
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.tool_names import named_tool_results
from plateforme.chat.types import ChatRequest


@functools.lru_cache(maxsize=16)
def load_tokenizer(path: str) -> MistralTokenizer:
    """The tokenizer of a spec, loaded once per file."""
    return MistralTokenizer.from_file(path)


def _message(message: dict, is_last_prefix: bool):
    role, content = message["role"], message.get("content")
    if role == "system":
        return SystemMessage(content=content or "")
    if role == "user":
        return UserMessage(content=content or "")
    if role == "tool":
        return ToolMessage(content=content or "", tool_call_id=message.get("tool_call_id"),
                           name=message.get("name"))
    calls = [ToolCall(id=c.get("id") or "null", function=FunctionCall(
        name=c["function"]["name"], arguments=c["function"]["arguments"]))
        for c in message.get("tool_calls") or []]
    return AssistantMessage(content=content or None, tool_calls=calls or None, prefix=is_last_prefix)


def _tool(tool: dict) -> Tool:
    function = tool["function"]
    return Tool(function=Function(name=function["name"], description=function.get("description") or "",
                                  parameters=function.get("parameters") or {"type": "object", "properties": {}}))


def mistral_request(req: ChatRequest, tools: list[dict]) -> ChatCompletionRequest:
    """The mistral-common request for `req`, offering `tools` (those left after tool_choice)."""
    last = len(req.messages) - 1
    messages = [_message(m, req.prefix and i == last) for i, m in enumerate(named_tool_results(req.messages))]
    return ChatCompletionRequest(messages=messages, tools=[_tool(t) for t in tools] or None)


def encode_chat(tokenizer: MistralTokenizer, req: ChatRequest, tools: list[dict]) -> list[int]:
    """Prompt token ids, exactly as mistral-common encodes the conversation."""
    try:
        return tokenizer.encode_chat_completion(mistral_request(req, tools)).tokens
    except (MistralCommonException, ValueError, AssertionError) as exc:
        raise InvalidChatRequest(f"this conversation cannot be encoded for the model's Mistral tokenizer "
                                 f"({tokenizer.version.value}): {exc}", param="messages") from exc
