"""Tokens counted as the engine streams them (scripted engine client: the counting logic alone),
and streams that fail for any reason end with an error event."""

import asyncio
import json

from plateforme.api.streaming import chat_sse
from plateforme.chat.types import Delta, Usage
from plateforme.engines.token_tally import TokenTally


class ScriptedClient:
    base_url = "scripted"

    def __init__(self, chat_chunks=(), completion_chunks=()):
        self.chat_chunks, self.completion_chunks = list(chat_chunks), list(completion_chunks)
        self.payloads: list[dict] = []

    async def stream_chat(self, payload):
        self.payloads.append(payload)
        for chunk in self.chat_chunks:
            yield chunk

    async def stream_completion(self, payload):
        self.payloads.append(payload)
        for chunk in self.completion_chunks:
            yield chunk


def _timed(prompt_n: int, cache_n: int, predicted_n: int) -> dict:
    return {"choices": [{"delta": {"content": "x"}}],
            "timings": {"prompt_n": prompt_n, "cache_n": cache_n, "predicted_n": predicted_n}}


def _drain(stream, limit=None):
    async def run():
        seen = 0
        async for _ in stream:
            seen += 1
            if limit is not None and seen >= limit:
                break
    asyncio.run(run())


def test_chat_chunks_are_counted_from_llamacpp_timings():
    tally = TokenTally()
    client = ScriptedClient(chat_chunks=[_timed(3, 30, n) for n in range(1, 11)])
    _drain(tally.client(client, 0, timings=True).stream_chat({"messages": []}), limit=4)  # the client leaves early
    assert client.payloads[0]["timings_per_token"] is True
    assert tally.totals() == (33, 4)  # cached prompt tokens are part of the prompt


def test_several_calls_of_one_choice_add_their_completions_and_keep_the_first_prompt():
    tally = TokenTally()
    metered = tally.client(ScriptedClient(chat_chunks=[_timed(10, 0, 1), _timed(10, 0, 2)]), 0, timings=True)
    _drain(metered.stream_chat({}))
    _drain(metered.stream_chat({}))  # a min_tokens continuation: a longer prompt, not billed again
    other = tally.client(ScriptedClient(completion_chunks=[{"tokens": [5, 6]}, {"tokens": [7], "stop": True}]), 1, timings=True)
    _drain(other.stream_completion({"prompt": [1, 2, 3]}))
    assert tally.totals() == (10, 2 + 2 + 3)


def test_an_engine_without_timings_is_counted_per_content_chunk_until_its_usage():
    tally = TokenTally()
    content = [{"choices": [{"delta": {"content": w}}]} for w in ("a", "b", "c")]
    _drain(tally.client(ScriptedClient(chat_chunks=content), 0, timings=False).stream_chat({}), limit=2)
    assert tally.totals() == (0, 2)  # cut early: a lower bound, the prompt is not known yet
    client = ScriptedClient(chat_chunks=[*content, {"choices": [], "usage": {"prompt_tokens": 9,
                                                                              "completion_tokens": 5}}])
    exact = TokenTally()
    _drain(exact.client(client, 0, timings=False).stream_chat({}))
    assert "timings_per_token" not in client.payloads[0]
    assert exact.totals() == (9, 5)  # the server's own usage replaces the estimate


def test_a_stream_that_fails_for_any_reason_ends_with_an_error_event():
    async def events():
        yield Delta(0, role="assistant", content="")
        yield Delta(0, content="Hel")
        raise KeyError("a parser bug")

    async def run():
        return [part async for part in chat_sse(events(), "cmpl-1", "m", 0)]

    body = asyncio.run(run())
    assert body[-1] != "data: [DONE]\n\n"
    error = json.loads(body[-1].removeprefix("data: "))
    assert error["object"] == "error" and error["code"] == "500" and error["error"]["type"] == "internal_error"


def test_usage_of_a_completed_stream_is_sent_last():
    async def events():
        yield Delta(0, role="assistant", content="")
        yield Delta(0, content="Hi", finish_reason=None)
        yield Delta(0, finish_reason="stop")
        yield Usage(3, 2)

    async def run():
        return [part async for part in chat_sse(events(), "c", "m", 0)]

    body = asyncio.run(run())
    assert body[-1] == "data: [DONE]\n\n"
    last = json.loads(body[-2].removeprefix("data: "))
    assert last["usage"]["total_tokens"] == 5 and last["choices"][0]["finish_reason"] == "stop"
