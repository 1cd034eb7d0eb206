"""Fill-in-the-middle completions on a served model: the prompt's token ids, and its one choice.

The generation core (generation/core.py) resolves the engine (fine-tunes included), admits,
checks the context and gates the stream; this module builds the FIM prompt (mistral-common for
Mistral-format models, the GGUF's FIM tokens otherwise) and generates it from token ids. Results
use the chat types (one choice, assistant deltas), as Mistral's FIM endpoint answers with
chat-completion shapes.
"""

import asyncio
from collections.abc import AsyncIterator

from plateforme.chat.types import Completion, Delta, Usage
from plateforme.engines.engine import Engine
from plateforme.engines.errors import EngineUnsupported
from plateforme.engines.model_task import require_generation
from plateforme.engines.token_generation import Finished, generate, sampling_params
from plateforme.engines.token_tally import TokenTally
from plateforme.fim.prompt import gguf_fim_prompt, mistral_fim_prompt, model_fim_tokens
from plateforme.fim.types import FIMRequest
from plateforme.generation.core import GenerationCore
from plateforme.generation.engine_resolution import EngineResolver
from plateforme.generation.sampling import choice_seed, temperature_of

PROMPT, PARAM = "the prompt and suffix", "prompt"  # what to shorten when the context is exceeded


class FIMChoice:
    """The one choice of a FIM request: `prompt` token ids generated as they are."""

    index = 0

    def __init__(self, client, prompt: list[int], req: FIMRequest, default_temperature: float):
        self.client, self.prompt, self.req = client, prompt, req
        self.params = sampling_params(temperature_of(req.temperature, default_temperature), req.top_p,
                                      choice_seed(req.seed, 0), req.stop)

    def prompt_token_bound(self) -> int:
        return len(self.prompt)  # exact: the gateway built it

    async def count_prompt_tokens(self) -> int:
        return len(self.prompt)

    async def stream(self) -> AsyncIterator[Delta | Usage]:
        opening = [Delta(0, role="assistant", content="")]  # sent once the engine answers
        finished = Finished("stop", len(self.prompt), 0)
        async for item in generate(self.client, self.prompt, self.params, self.req.max_tokens, self.req.min_tokens):
            if opening:
                yield opening.pop()
            if isinstance(item, Finished):
                finished = item
            elif item.text:
                yield Delta(0, content=item.text)
        yield Delta(0, finish_reason=finished.finish_reason)
        yield Usage(finished.prompt_tokens or len(self.prompt), finished.completion_tokens)


class FIMService:
    def __init__(self, resolver: EngineResolver):
        self.core = GenerationCore(resolver)

    def _planner(self, req: FIMRequest):
        async def plan(engine: Engine, client_for) -> list[FIMChoice]:
            require_generation(engine, "fill-in-the-middle completions")  # an embedding model: 400
            if not engine.capabilities.token_prompts:  # FIM prompts are token ids the gateway builds
                raise EngineUnsupported(engine.spec.name, engine.kind,
                                        "fill-in-the-middle (generation from token ids)", param="model")
            spec, client = engine.spec, client_for(0)
            if spec.tokenizer:  # mistral-common tokenizes, off the event loop
                prompt = await asyncio.to_thread(mistral_fim_prompt, spec, req)
            else:  # the engine tokenizes the text between the GGUF's FIM tokens
                prompt = await gguf_fim_prompt(await model_fim_tokens(spec), client, req)
            return [FIMChoice(client, prompt, req, spec.default_temperature)]
        return plan

    def stream(self, req: FIMRequest, tally: TokenTally | None = None) -> AsyncIterator[Delta | Usage]:
        """Deltas of the one choice, then its Usage. Checks (model, FIM support, capacity, context)
        and the engine's acceptance come before the first item, so the caller can still answer
        with an HTTP error. `tally` counts the tokens as they are generated."""
        return self.core.stream(req, self._planner(req), tally, PROMPT, PARAM)

    async def complete(self, req: FIMRequest, tally: TokenTally | None = None) -> Completion:
        return await self.core.complete(req, self._planner(req), tally, PROMPT, PARAM)
