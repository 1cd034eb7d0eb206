"""Reasoning requests: `reasoning_effort` and `prompt_mode` need a reasoning model.

Once the model is known, `with_reasoning` marks the request so that the choice streams return
the model's thinking apart from its answer (chat/thinking.py), or refuses the reasoning fields
of a model that cannot reason with a 400 naming the model and the field.
"""

import asyncio
from dataclasses import replace

from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.types import ChatRequest
from plateforme.models.reasoning import is_reasoning, known_without_io
from plateforme.models.spec import ModelSpec

# What `reasoning_effort: none` becomes in chat templates that can switch thinking off (Qwen3,
# SmolLM3 read `enable_thinking`); templates without the variable ignore it.
NO_THINKING_TEMPLATE_KWARGS = {"enable_thinking": False}


async def with_reasoning(req: ChatRequest, spec: ModelSpec) -> ChatRequest:
    """`req` marked with whether its model reasons; InvalidChatRequest (400) when it asks a model
    that cannot reason for reasoning. The first look at a model's files runs off the event loop."""
    reasons = is_reasoning(spec) if known_without_io(spec) else await asyncio.to_thread(is_reasoning, spec)
    if not reasons:
        asked = [name for name in ("reasoning_effort", "prompt_mode") if getattr(req, name) is not None]
        if asked:
            raise InvalidChatRequest(
                f"model {req.model!r} is not a reasoning model: {asked[0]} applies to reasoning models "
                f"only. Remove {asked[0]}, or choose a reasoning model (a model whose chat template "
                "thinks, or one declared with `reasoning: true` in the models config).", param=asked[0])
    return req if req.reasoning == reasons else replace(req, reasoning=reasons)


def thinking_switched_off(req: ChatRequest) -> bool:
    return req.reasoning and req.reasoning_effort == "none"
