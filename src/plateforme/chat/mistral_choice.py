"""One choice of a chat completion on a Mistral-format model: prompt tokens in, deltas out.

The prompt is mistral-common's encoding (chat/mistral_prompt.py), sent as token ids to the
engine's `/completion`. Text streams as the engine writes it; once the model writes the
[TOOL_CALLS] control token the rest is collected and parsed into tool calls (sent whole, as
Mistral does). Calls the request requires are generated under constraints instead
(chat/mistral_tool_calls.py). A reasoning model's [THINK]...[/THINK] is streamed apart from the
answer, as thinking deltas (chat/answer_parts.py).
"""

from collections.abc import AsyncIterator, Callable

from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from plateforme.chat.answer_parts import AnswerParts
from plateforme.chat.choice_stream import ChoiceStream
from plateforme.chat.engine_payload import tool_mode
from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.json_bounds import json_object_grammar
from plateforme.chat.mistral_prompt import encode_chat, load_tokenizer
from plateforme.chat.json_bounds import compact_schema
from plateforme.chat.mistral_tool_calls import forced_tool_calls, parse_tool_calls, tool_calls_token
from plateforme.chat.types import ChatRequest, Delta, Usage
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.token_generation import Finished, generate, sampling_params
from plateforme.generation.sampling import choice_seed, temperature_of
from plateforme.models.spec import ModelSpec


class MistralChoiceStream(ChoiceStream):
    def __init__(self, client: OpenAIEngineClient, index: int, req: ChatRequest, tokenizer: MistralTokenizer,
                 prompt: list[int], tools: list[dict], must_call: bool, params: dict):
        self.client, self.index, self.req = client, index, req
        self.tokenizer, self.prompt, self.tools, self.must_call = tokenizer, prompt, tools, must_call
        self.params = dict(params)
        if req.seed is not None:
            self.params["seed"] = choice_seed(req.seed, index)

    async def count_prompt_tokens(self) -> int:
        return len(self.prompt)

    def prompt_token_bound(self) -> int:
        return len(self.prompt)  # exact: the gateway tokenized it

    async def stream(self) -> AsyncIterator[Delta | Usage]:
        if self.must_call:
            # Generated before the first delta, so a failure is still an HTTP error.
            calls, used = await forced_tool_calls(self.client, self.tokenizer, self.prompt, self.tools,
                                                  self.params, self.req.max_tokens, self.req.parallel_tool_calls)
            yield Delta(self.index, role="assistant", content="")
            yield Delta(self.index, tool_calls=calls)
            yield Delta(self.index, finish_reason="tool_calls")
            yield Usage(len(self.prompt), used)
            return
        # Nothing is sent before the engine's first piece: a refusal is still an HTTP error.
        opening = [Delta(self.index, role="assistant", content="")]
        if self.req.prefix:
            opening.append(Delta(self.index, content=self.req.messages[-1]["content"]))
        marker = tool_calls_token(self.tokenizer) if self.tools else None
        parts = AnswerParts(self.index, self.req.reasoning)
        call_tokens: list[int] | None = None
        finished = Finished("stop", len(self.prompt), 0)
        async for item in generate(self.client, self.prompt, self.params, self.req.max_tokens, self.req.min_tokens):
            for delta in opening:
                yield delta
            opening = []
            if isinstance(item, Finished):
                finished = item
            elif call_tokens is not None:
                call_tokens += item.tokens
            elif marker is not None and marker in item.tokens:
                at = item.tokens.index(marker)
                for piece in parts.deltas(self._text(item.tokens[:at], None)) if at else ():
                    yield piece
                call_tokens = item.tokens[at:]
            else:
                for piece in parts.deltas(self._text(item.tokens, item.text), None, item.logprobs):
                    yield piece
        for piece in parts.finish():
            yield piece
        finish = finished.finish_reason
        if call_tokens is not None:
            calls = parse_tool_calls(self.tokenizer, call_tokens)
            if calls:
                finish = "tool_calls"
                yield Delta(self.index, tool_calls=calls)
            else:  # not a well-formed call: the text is the answer
                yield Delta(self.index, content=self._decode(call_tokens))
        yield Delta(self.index, finish_reason=finish)
        yield Usage(finished.prompt_tokens or len(self.prompt), finished.completion_tokens)

    def _text(self, tokens: list[int], text: str | None) -> str:
        """The text of `tokens` (`text`: the engine's own decoding of them), with Magistral's
        [THINK] / [/THINK] control tokens written out for the thinking splitter, which decoding
        would otherwise drop, when the model reasons."""
        think = {t: mark for t, mark in ((getattr(self.tokenizer.instruct_tokenizer, "BEGIN_THINK", None), "[THINK]"),
                                          (getattr(self.tokenizer.instruct_tokenizer, "END_THINK", None), "[/THINK]"))
                 if t is not None} if self.req.reasoning else {}
        if not any(t in think for t in tokens):
            return self._decode(tokens) if text is None else text
        out, run = [], []
        for token in tokens:
            if token in think:
                out += [self._decode(run), think[token]]
                run = []
            else:
                run.append(token)
        return "".join(out) + self._decode(run)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, special_token_policy=SpecialTokenPolicy.IGNORE)


def mistral_choices(client_for: Callable[[int], OpenAIEngineClient], spec: ModelSpec,
                    req: ChatRequest) -> list[MistralChoiceStream]:
    """The n choices of `req` on a model with a Mistral tokenizer; choice i calls `client_for(i)`."""
    tokenizer = load_tokenizer(spec.tokenizer)
    tools, must_call = tool_mode(req)
    if tools and tool_calls_token(tokenizer) is None:
        raise InvalidChatRequest(f"model {req.model!r} ({tokenizer.version.value} tokenizer) has no tool calling",
                                 param="tools")
    prompt = encode_chat(tokenizer, req, tools)
    temperature = temperature_of(req.temperature, spec.default_temperature)
    params = sampling_params(temperature, req.top_p, req.seed, req.stop, req.presence_penalty,
                             req.frequency_penalty, (req.top_logprobs or 0) if req.logprobs else None)
    if req.json_schema is not None:
        if tools:
            raise InvalidChatRequest("response_format json cannot be combined with tools in one request",
                                     param="response_format")
        if req.json_schema:
            params["json_schema"] = compact_schema(req.json_schema)
        else:  # JSON mode: any JSON object
            params["grammar"] = json_object_grammar()
    return [MistralChoiceStream(client_for(i), i, req, tokenizer, prompt, tools, must_call, params)
            for i in range(req.n)]
