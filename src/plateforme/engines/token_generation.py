"""Generate from a prompt given as token ids, with llama.cpp's native `POST /completion`.

Used where the gateway builds the prompt tokens itself (Mistral tokenizers, fill-in-the-middle):
no chat template is involved, the engine sees exactly these ids. Yields text pieces (with the
token ids behind them, for control-token detection) and one `Finished` at the end.

`min_tokens` is done as with chat: first `min_tokens` tokens with end-of-sequence banned, then a
second request continuing from prompt + those tokens (exact, since both are token ids).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from plateforme.engines.openai_client import OpenAIEngineClient

# llama.cpp stop_type -> Mistral finish_reason
_FINISH = {"eos": "stop", "word": "stop", "limit": "length", "none": "stop"}


@dataclass
class Piece:
    text: str
    tokens: list[int] = field(default_factory=list)
    # OpenAI-protocol logprobs entries ({token, logprob, bytes, top_logprobs}) when asked for.
    logprobs: list[dict] | None = None


@dataclass
class Finished:
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


def sampling_params(temperature: float, top_p: float | None, seed: int | None, stop: list[str] | None,
                    presence_penalty: float | None = None, frequency_penalty: float | None = None,
                    top_logprobs: int | None = None) -> dict:
    """/completion sampling fields with Mistral's semantics (temperature and top_p only)."""
    params: dict = {"temperature": temperature, "top_p": 1.0 if top_p is None else top_p,
                    "top_k": 0, "min_p": 0.0}
    optional = {"seed": seed, "stop": stop or None, "presence_penalty": presence_penalty,
                "frequency_penalty": frequency_penalty}
    params.update({k: v for k, v in optional.items() if v is not None})
    if top_logprobs is not None:
        # n_probs 0 would return no probabilities at all, not even the chosen token's.
        params["n_probs"] = max(1, top_logprobs)
        params["x_top_logprobs"] = top_logprobs
    return params


def _logprobs(chunk: dict, top: int) -> list[dict] | None:
    entries = chunk.get("completion_probabilities")
    if not entries:
        return None
    out = []
    for e in entries:
        tops = [{"token": t["token"], "logprob": t["logprob"], "bytes": t.get("bytes")}
                for t in (e.get("top_logprobs") or [])[:top]]
        out.append({"token": e["token"], "logprob": e["logprob"], "bytes": e.get("bytes"), "top_logprobs": tops})
    return out


async def generate(client: OpenAIEngineClient, prompt: list[int], params: dict,
                   max_tokens: int | None = None, min_tokens: int | None = None) -> AsyncIterator[Piece | Finished]:
    """Pieces of the answer as the engine streams them, then one Finished."""
    params = dict(params)
    top = params.pop("x_top_logprobs", None)
    constrained = "grammar" in params or "json_schema" in params
    phases = [max_tokens]
    if min_tokens and not constrained and (max_tokens is None or max_tokens > min_tokens):
        phases = [min_tokens, max_tokens]
    generated: list[int] = []
    prompt_tokens = completion_tokens = 0
    finish = "stop"
    for number, limit in enumerate(phases):
        if number == 1:
            if finish != "length":
                break
            limit = None if max_tokens is None else max_tokens - completion_tokens
        body = {**params, "prompt": prompt + generated, "n_predict": -1 if limit is None else limit,
                "return_tokens": True, "cache_prompt": True}
        if number == 0 and (len(phases) == 2 or (min_tokens and not constrained)):
            body["ignore_eos"] = True  # min_tokens >= max_tokens: every token is a required one
        async for chunk in client.stream_completion(body):
            tokens = chunk.get("tokens") or []
            generated += tokens
            text = chunk.get("content") or ""
            logprobs = _logprobs(chunk, top) if top is not None else None
            if text or tokens or logprobs:
                yield Piece(text, tokens, logprobs)
            if chunk.get("stop"):
                prompt_tokens = prompt_tokens or chunk.get("tokens_evaluated") or len(prompt)
                completion_tokens += chunk.get("tokens_predicted") or 0
                finish = _FINISH.get(chunk.get("stop_type") or "none", "stop")
    yield Finished(finish, prompt_tokens, completion_tokens)


async def generate_text(client: OpenAIEngineClient, prompt: list[int], params: dict,
                        max_tokens: int | None = None) -> tuple[str, Finished]:
    """The whole answer at once (constrained sub-steps such as a tool call's arguments)."""
    text, finished = "", Finished("stop", len(prompt), 0)
    async for item in generate(client, prompt, params, max_tokens):
        if isinstance(item, Piece):
            text += item.text
        else:
            finished = item
    return text, finished
