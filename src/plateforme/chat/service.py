"""Chat completions on a served model: the choices of a request, planned for its engine.

The generation core (generation/core.py) resolves the engine, admits, checks the context,
gates and merges the choices; this module decides how each choice is generated: through the
server's own tools and structured outputs (remote engines), from mistral-common token ids
(Mistral-format models), or through the chat template with the gateway's grammars (llama.cpp).
"""

import asyncio
from collections.abc import AsyncIterator

from plateforme.chat.choice_stream import ChoiceStream
from plateforme.chat.engine_payload import engine_payload, uses_generic_tools
from plateforme.chat.json_schema_support import check_schema
from plateforme.chat.message_checks import check_messages
from plateforme.chat.reasoning import with_reasoning
from plateforme.chat.remote_choice import RemoteChoiceStream
from plateforme.chat.remote_payload import check_remote_request, remote_payload
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.engines.engine import Engine
from plateforme.engines.model_task import require_generation
from plateforme.engines.token_tally import TokenTally
from plateforme.generation.core import GenerationCore
from plateforme.generation.engine_resolution import EngineResolver

PROMPT, PARAM = "the messages", "messages"  # what to shorten when the context is exceeded


class ChatService:
    def __init__(self, resolver: EngineResolver):
        self.core = GenerationCore(resolver)

    @staticmethod
    async def _plan(req: ChatRequest, worker: Engine, client_for) -> list[ChoiceStream]:
        require_generation(worker, "chat completions")  # an embedding model: 400 naming it
        check_messages(req.messages, req.prefix)
        req = await with_reasoning(req, worker.spec)  # whether its model thinks (400 if asked of one that cannot)
        if req.json_schema:
            check_schema(req.json_schema, "response_format.json_schema.schema")
        if not worker.capabilities.grammar:  # the server's own tools and structured outputs
            check_remote_request(req, worker.spec, worker.capabilities)
            payload = remote_payload(req, worker.spec)
            return [RemoteChoiceStream(client_for(i), i, payload, req) for i in range(req.n)]
        if worker.spec.tokenizer:  # Mistral-format model: mistral-common tokenizes (off the event loop)
            return await asyncio.to_thread(_mistral_choices, client_for, worker.spec, req)
        payload = engine_payload(req, worker.spec.default_temperature, req.max_tokens)
        generic = uses_generic_tools(req)
        return [ChoiceStream(client_for(i), i, payload, req, generic) for i in range(req.n)]

    def _planner(self, req: ChatRequest):
        async def plan(worker: Engine, client_for) -> list[ChoiceStream]:
            return await self._plan(req, worker, client_for)
        return plan

    async def complete(self, req: ChatRequest, tally: TokenTally | None = None) -> Completion:
        """The whole answer. `tally` counts the tokens generated as they come (billed even if
        this is cancelled midway)."""
        return await self.core.complete(req, self._planner(req), tally, PROMPT, PARAM, req.n, req.logprobs)

    def stream(self, req: ChatRequest, tally: TokenTally | None = None) -> AsyncIterator[Delta | Usage]:
        """Deltas of every choice as they are generated, then one Usage for the whole request;
        nothing before the checks passed and the engine accepted every choice."""
        return self.core.stream(req, self._planner(req), tally, PROMPT, PARAM, req.n)


def _mistral_choices(client_for, spec, req):
    """chat/mistral_choice.py's choices, imported at the first Mistral-format request, in the
    worker thread: mistral-common takes half a second to import, kept off the event loop and out
    of the start of every gateway serving no such model."""
    from plateforme.chat.mistral_choice import mistral_choices

    return mistral_choices(client_for, spec, req)


__all__ = ["ChatService", "Choice"]
