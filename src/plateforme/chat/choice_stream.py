"""One choice of a chat completion: engine stream(s) in, Mistral-shaped deltas out.

Handles what the engine does not do the way Mistral's API does:
- `min_tokens`: first generate min_tokens tokens with end-of-sequence banned, then continue
  from that text as an assistant prefix;
- tool calls: parsed from the constrained JSON answer and sent whole, as Mistral streams each
  call in one delta, with 9-character ids;
- a reasoning model's thinking: sent apart from the answer (chat/answer_parts.py).
"""

import json
from collections.abc import AsyncIterator

from plateforme.chat import generic_tools
from plateforme.chat.answer_parts import AnswerParts, reasoning_of
from plateforme.chat.types import ChatRequest, Delta, Usage
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.generation.sampling import choice_seed


# Tokens a chat template may add beyond the messages' own text (default system prompt, markers).
TEMPLATE_OVERHEAD = 256
MESSAGE_OVERHEAD = 32

class ChoiceStream:
    def __init__(self, client: OpenAIEngineClient, index: int, payload: dict, req: ChatRequest,
                 generic_tools: bool):
        self.client = client
        self.index = index
        self.req = req
        self.generic = generic_tools
        self.payload = dict(payload)
        if req.seed is not None:
            self.payload["seed"] = choice_seed(req.seed, index)

    async def count_prompt_tokens(self) -> int:
        """Tokens the chat template makes of the prompt, as the engine will see them."""
        return await self.client.count_chat_prompt_tokens(self.payload["messages"])

    def prompt_token_bound(self) -> int:
        """An upper bound of the prompt's tokens, without asking the engine: byte-level and
        byte-fallback tokenizers never make more tokens than the text has UTF-8 bytes; the
        chat template adds role markers per message and at most a short default system prompt."""
        text_bytes = len(json.dumps(self.payload["messages"], ensure_ascii=False).encode())
        return TEMPLATE_OVERHEAD + MESSAGE_OVERHEAD * len(self.payload["messages"]) + text_bytes

    def _phases(self) -> list[dict]:
        req, payload = self.req, self.payload
        if not req.min_tokens:
            return [payload]
        if req.max_tokens is not None and req.max_tokens <= req.min_tokens:
            return [{**payload, "ignore_eos": True}]  # every token up to max_tokens is a required one
        return [{**payload, "max_tokens": req.min_tokens, "ignore_eos": True}, payload]

    def _opening(self) -> list[Delta]:
        """The first deltas of the answer: sent once the engine has accepted the request."""
        opening = [Delta(self.index, role="assistant", content="")]
        if self.req.prefix and not self.generic:
            # As Mistral's API does, the answer starts with the prefix it continues.
            opening.append(Delta(self.index, content=self.payload["messages"][-1]["content"]))
        return opening

    async def stream(self) -> AsyncIterator[Delta | Usage]:
        """Deltas of this choice, then its Usage. Nothing is yielded before the engine's first
        chunk, so a refusal (prompt too long, worker down) is raised before anything is sent."""
        opening = self._opening()
        # A reasoning model's thinking goes apart from its answer (the constrained JSON answer
        # of generic tool calls has none).
        parts = AnswerParts(self.index, self.req.reasoning and not self.generic)
        text, finish = "", "stop"
        prompt_tokens = completion_tokens = 0
        phases = self._phases()
        for number, payload in enumerate(phases):
            if number == 1:  # continue from what phase 0 wrote
                if finish != "length" or (self.req.max_tokens and completion_tokens >= self.req.max_tokens):
                    break
                payload = self._continuation(payload, text, completion_tokens)
            async for chunk in self.client.stream_chat(payload):
                for delta in opening:
                    yield delta
                opening = []
                if chunk.get("usage"):
                    prompt_tokens = prompt_tokens or chunk["usage"]["prompt_tokens"]
                    completion_tokens += chunk["usage"]["completion_tokens"]
                for engine_choice in chunk.get("choices", []):
                    delta = engine_choice.get("delta") or {}
                    content = delta.get("content") or ""
                    logprobs = (engine_choice.get("logprobs") or {}).get("content")
                    text += content
                    reasoning = reasoning_of(delta)
                    if self.generic:  # the constrained answer is parsed once complete
                        if reasoning:
                            yield Delta(self.index, thinking=reasoning)
                    else:
                        for piece in parts.deltas(content, reasoning, logprobs):
                            yield piece
                    if engine_choice.get("finish_reason"):
                        finish = engine_choice["finish_reason"]
        for delta in opening:  # the engine streamed nothing at all
            yield delta
        for piece in parts.finish():
            yield piece
        tool_calls: list[dict] = []
        if self.generic and finish != "length":
            content, tool_calls = generic_tools.parse_answer(text)
            if content:
                yield Delta(self.index, content=content)
        elif self.generic and text:
            yield Delta(self.index, content=text)
        if tool_calls:
            finish = "tool_calls"
            yield Delta(self.index, tool_calls=tool_calls)
        yield Delta(self.index, finish_reason=finish)
        yield Usage(prompt_tokens, completion_tokens)

    def _continuation(self, payload: dict, text: str, used: int) -> dict:
        messages = list(payload["messages"])
        if self.req.prefix:
            last = messages.pop()
            text = last["content"] + text
        messages.append({"role": "assistant", "content": text})
        out = {**payload, "messages": messages}
        if self.req.max_tokens is not None:
            out["max_tokens"] = self.req.max_tokens - used
        return out
