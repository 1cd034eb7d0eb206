"""Count the tokens a request makes the engine process, as they stream, whatever ends the request.

The engine's own usage arrives only with its last chunk. A request the client abandons, or that
a worker crash cuts, never sees it; yet the engine did the work, and it must be billed and count
against the limits. Every engine call of a request goes through a `MeteredClient`, which keeps
the running count in the request's `TokenTally`:
- chat calls ask llama.cpp for `timings_per_token`, so each chunk carries the prompt tokens
  (`prompt_n` + `cache_n`) and the tokens predicted so far (`predicted_n`);
- token-id calls (`/completion`, with `return_tokens`) count the prompt given and each chunk's
  `tokens`;
- chat calls on a remote server (engine `openai`, no llama.cpp `timings`) count one completion
  token per chunk that carries generated content or tool-call text: a lower bound (a server may
  put several tokens in one chunk), replaced by the server's exact usage when its last chunk
  (`stream_options.include_usage`) arrives. The prompt of a stream cut before that chunk is not
  known, so it is not counted.
A choice whose generation takes several engine calls (`min_tokens` phases, forced tool calls)
bills the prompt of its first call and the completion tokens of all of them, as the final usage
does.
"""

from collections.abc import AsyncIterator


class TokenTally:
    """Prompt and completion tokens of one request so far, per choice index."""

    def __init__(self) -> None:
        self.prompt: dict[int, int] = {}
        self.completion: dict[int, int] = {}

    def totals(self) -> tuple[int, int]:
        """(prompt tokens, completion tokens): the prompt is counted once, as in the final usage."""
        prompt = self.prompt.get(0, max(self.prompt.values(), default=0))
        return prompt, sum(self.completion.values())

    def client(self, client, index: int, timings: bool) -> "MeteredClient":
        """`client` (an engine client) with its calls for choice `index` counted here; `timings`:
        whether the engine streams llama.cpp's per-chunk timings (EngineCapabilities.stream_timings)."""
        return MeteredClient(client, self, index, timings)


class MeteredClient:
    """An engine client whose streaming generations are counted in a TokenTally."""

    def __init__(self, client, tally: TokenTally, index: int, timings: bool):
        self._client = client
        self._timings = timings
        self._tally = tally
        self._index = index
        self.base_url = client.base_url

    def _prompt(self, tokens: int) -> None:
        if tokens:
            self._tally.prompt.setdefault(self._index, tokens)

    async def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        before = self._tally.completion.get(self._index, 0)  # earlier calls of this choice
        if not self._timings:
            async for chunk in self._remote_stream_chat(payload, before):
                yield chunk
            return
        async for chunk in self._client.stream_chat({**payload, "timings_per_token": True}):
            timings = chunk.get("timings")
            if timings:
                self._prompt(int(timings.get("prompt_n") or 0) + int(timings.get("cache_n") or 0))
                self._tally.completion[self._index] = before + int(timings.get("predicted_n") or 0)
            yield chunk

    async def _remote_stream_chat(self, payload: dict, before: int) -> AsyncIterator[dict]:
        counts, seen = self._tally.completion, 0
        async for chunk in self._client.stream_chat(payload):
            usage = chunk.get("usage")
            if usage:  # exact, from the server
                self._prompt(int(usage.get("prompt_tokens") or 0))
                counts[self._index] = before + int(usage.get("completion_tokens") or 0)
            elif any(_generated(c.get("delta") or {}) for c in chunk.get("choices") or ()):
                seen += 1  # a lower bound: at least one token per chunk with generated text
                counts[self._index] = before + seen
            yield chunk

    async def stream_completion(self, payload: dict) -> AsyncIterator[dict]:
        self._prompt(len(payload.get("prompt") or ()))
        counts = self._tally.completion
        async for chunk in self._client.stream_completion(payload):
            counts[self._index] = counts.get(self._index, 0) + len(chunk.get("tokens") or ())
            yield chunk

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        result = await self._client.chat(payload, timeout)
        usage = result.get("usage") or {}
        self._prompt(int(usage.get("prompt_tokens") or 0))
        counts = self._tally.completion
        counts[self._index] = counts.get(self._index, 0) + int(usage.get("completion_tokens") or 0)
        return result

    async def count_chat_prompt_tokens(self, messages: list[dict]) -> int:
        return await self._client.count_chat_prompt_tokens(messages)

    async def tokenize(self, text: str) -> list[int]:
        return await self._client.tokenize(text)


def _generated(delta: dict) -> bool:
    return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"))
