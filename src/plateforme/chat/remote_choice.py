"""One choice of a chat completion on a remote OpenAI-compatible server (engine `openai`).

Content streams through as the server writes it. Tool calls arrive as OpenAI fragments (the
name first, then pieces of the arguments); Mistral sends each call whole in one delta, with
9-character ids, so the fragments are collected and sent together once the server is done.
A reasoning model's thinking (the server's `reasoning_content`, or inline `<think>` markers)
streams apart from the answer as thinking deltas (chat/answer_parts.py).
"""

from collections.abc import AsyncIterator

from plateforme.chat.answer_parts import AnswerParts, reasoning_of
from plateforme.chat.choice_stream import ChoiceStream
from plateforme.chat.tool_ids import new_tool_call_id
from plateforme.chat.types import Delta, Usage

MISTRAL_FINISH = ("stop", "length", "model_length", "error", "tool_calls")


class RemoteChoiceStream(ChoiceStream):
    def __init__(self, client, index: int, payload: dict, req):
        super().__init__(client, index, payload, req, generic_tools=False)

    async def stream(self) -> AsyncIterator[Delta | Usage]:
        """Deltas of this choice, then its Usage; nothing before the server's first chunk."""
        opening = [Delta(self.index, role="assistant", content="")]
        finish, usage = "stop", Usage(0, 0)
        parts = AnswerParts(self.index, self.req.reasoning)
        calls: dict[int, dict] = {}  # OpenAI tool-call index -> {"name", "arguments"}
        async for chunk in self.client.stream_chat(self.payload):
            for delta in opening:
                yield delta
            opening = []
            if chunk.get("usage"):
                usage = Usage(chunk["usage"].get("prompt_tokens") or 0, chunk["usage"].get("completion_tokens") or 0)
            for server_choice in chunk.get("choices") or ():
                delta = server_choice.get("delta") or {}
                logprobs = (server_choice.get("logprobs") or {}).get("content")
                for piece in parts.deltas(delta.get("content") or "", reasoning_of(delta), logprobs):
                    yield piece
                for fragment in delta.get("tool_calls") or ():
                    call = calls.setdefault(fragment.get("index", len(calls)), {"name": "", "arguments": ""})
                    function = fragment.get("function") or {}
                    call["name"] += function.get("name") or ""
                    call["arguments"] += function.get("arguments") or ""
                if server_choice.get("finish_reason"):
                    finish = server_choice["finish_reason"]
        for delta in opening:  # the server streamed nothing at all
            yield delta
        for piece in parts.finish():
            yield piece
        if calls:
            finish = "tool_calls"
            yield Delta(self.index, tool_calls=[
                {"id": new_tool_call_id(), "type": "function", "index": i,
                 "function": {"name": call["name"], "arguments": call["arguments"] or "{}"}}
                for i, call in enumerate(calls[k] for k in sorted(calls))])
        yield Delta(self.index, finish_reason=finish if finish in MISTRAL_FINISH else "stop")
        yield usage
