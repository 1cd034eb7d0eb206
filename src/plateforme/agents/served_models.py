"""Whether a model an agent names is a chat model this server serves (configured, or a fine-tune
of the workspace), checked when the agent is created or updated: a 400 naming `model` then, not
a failure at its first conversation."""

from plateforme.agents.errors import BadInput
from plateforme.fine_tuning.errors import FineTuningError


async def require_chat_model(engines, workspace_id: str, model: str, param: str = "model") -> None:
    """`engines`: the app's generation.engine_resolution.EngineResolver."""
    spec = engines.registry.get(model)
    if spec is not None:
        if spec.task != "chat":
            raise BadInput(f"{param}: {model!r} is an {spec.task} model; an agent needs a chat model "
                           f"(GET /v1/models lists them)", param)
        return
    if engines.fine_tunes is not None:
        try:
            if await engines.fine_tunes.resolve(workspace_id, model) is not None:
                return
        except FineTuningError as exc:
            raise BadInput(f"{param}: {exc}", param) from None
    chat = [s.name for s in engines.registry.specs if s.task == "chat"]
    raise BadInput(f"{param}: {model!r} is not a model this server serves; use one of "
                   f"{', '.join(chat) or 'its chat models'} (GET /v1/models lists them)", param)
