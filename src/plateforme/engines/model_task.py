"""Chat and FIM refuse embedding models, with a 400 that names the model and what it does."""

from plateforme.engines.errors import EngineRejected, EngineUnsupported


class WrongModelTask(EngineUnsupported):
    """A request for what the model does not do (chat on an embedding model)."""

    def __init__(self, model: str, engine: str, feature: str):
        EngineRejected.__init__(
            self, f"model {model!r} is an embedding model: it serves POST /v1/embeddings only, not {feature}; "
                  "use a chat model (GET /v1/models: `capabilities.completion_chat`)")
        self.engine, self.feature, self.param = engine, feature, "model"


def require_generation(engine, feature: str) -> None:
    """Raise WrongModelTask unless `engine` generates text (its capabilities say chat)."""
    if not engine.capabilities.chat:
        raise WrongModelTask(engine.spec.name, engine.kind, feature)
