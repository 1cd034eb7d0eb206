"""Fill-in-the-middle completions on a served model: checks, prompt tokens, generation, streaming.

Results use the chat types (one choice, assistant deltas), as Mistral's FIM endpoint answers
with chat-completion shapes.
"""

import asyncio
from collections.abc import AsyncIterator

from plateforme.chat.errors import ContextLengthExceeded
from plateforme.chat.types import Choice, Completion, Delta, Usage
from plateforme.engines.engine import Engine
from plateforme.engines.errors import EngineContextExceeded, EngineUnsupported
from plateforme.engines.pool import WorkerPool
from plateforme.engines.token_tally import TokenTally
from plateforme.engines.token_generation import Finished, generate, sampling_params
from plateforme.fim.prompt import gguf_fim_prompt, mistral_fim_prompt, model_fim_tokens
from plateforme.fim.types import FIMRequest
from plateforme.models.registry import ModelRegistry


class FIMService:
    def __init__(self, registry: ModelRegistry, pool: WorkerPool):
        self.registry = registry
        self.pool = pool

    def _worker(self, model: str) -> Engine:
        worker = self.pool.get(self.registry.require(model).name)
        if not worker.capabilities.token_prompts:  # FIM prompts are token ids the gateway builds
            raise EngineUnsupported(worker.spec.name, worker.kind,
                                    "fill-in-the-middle (generation from token ids)", param="model")
        return worker

    async def stream(self, req: FIMRequest, tally: TokenTally | None = None) -> AsyncIterator[Delta | Usage]:
        """Deltas of the one choice, then its Usage. Checks (model, FIM support, capacity, context)
        and the engine's acceptance come before the first item, so the caller can still answer
        with an HTTP error. `tally` counts the tokens as they are generated."""
        worker = self._worker(req.model)
        spec = worker.spec
        if spec.tokenizer:  # mistral-common tokenizes, off the event loop
            prompt = await asyncio.to_thread(mistral_fim_prompt, spec, req)
        else:
            fim = await model_fim_tokens(spec)
        async with worker.admission.admit(req.tenant):
            client = worker.client()
            if tally is not None:
                client = tally.client(client, 0)
            if not spec.tokenizer:  # the engine tokenizes the text between the FIM tokens
                prompt = await gguf_fim_prompt(fim, client, req)
            self._check_context(spec.context_length, len(prompt), req)
            temperature = req.temperature if req.temperature is not None else spec.default_temperature
            params = sampling_params(temperature, req.top_p, req.seed, req.stop)
            opening = [Delta(0, role="assistant", content="")]  # sent once the engine answers
            finished = Finished("stop", len(prompt), 0)
            try:
                async for item in generate(client, prompt, params, req.max_tokens, req.min_tokens):
                    if opening:
                        yield opening.pop()
                    if isinstance(item, Finished):
                        finished = item
                    elif item.text:
                        yield Delta(0, content=item.text)
            except EngineContextExceeded as exc:
                raise ContextLengthExceeded(f"Prompt contains {len(prompt)} tokens, too large for model "
                                            f"{req.model!r} with {exc.context} maximum context length.", param="prompt") from exc
            yield Delta(0, finish_reason=finished.finish_reason)
            yield Usage(finished.prompt_tokens or len(prompt), finished.completion_tokens)

    async def complete(self, req: FIMRequest, tally: TokenTally | None = None) -> Completion:
        content, finish, usage = "", "stop", Usage(0, 0)
        async for item in self.stream(req, tally):
            if isinstance(item, Usage):
                usage = item
            else:
                content += item.content or ""
                finish = item.finish_reason or finish
        return Completion([Choice(0, content, finish)], usage)

    @staticmethod
    def _check_context(window: int, prompt_tokens: int, req: FIMRequest) -> None:
        """Refuse a prompt (plus max_tokens) beyond the context window: never truncated."""
        field, asked = max(("max_tokens", req.max_tokens or 0), ("min_tokens", req.min_tokens or 0),
                           key=lambda pair: pair[1])
        if prompt_tokens >= window or prompt_tokens + asked > window:
            raise ContextLengthExceeded(
                f"Prompt and suffix make {prompt_tokens} tokens and {field} is {asked}: together "
                f"they exceed the {window}-token context of model {req.model!r}. Shorten them or lower {field}.",
                param="prompt")
