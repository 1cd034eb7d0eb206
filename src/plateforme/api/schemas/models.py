"""Model cards, as in Mistral's spec (BaseModelCard, ModelCapabilities, ModelList)."""

from typing import Literal

from pydantic import BaseModel

from plateforme.models.spec import ModelSpec


class ModelCapabilities(BaseModel):
    completion_chat: bool = True
    function_calling: bool = False
    reasoning: bool = False
    completion_fim: bool = False
    fine_tuning: bool = False
    vision: bool = False
    ocr: bool = False
    classification: bool = False
    moderation: bool = False
    audio: bool = False


class BaseModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "plateforme"
    capabilities: ModelCapabilities
    name: str | None = None
    description: str | None = None
    max_context_length: int
    aliases: list[str] = []
    deprecation: str | None = None
    default_model_temperature: float | None = None
    type: Literal["base"] = "base"

    @classmethod
    def from_spec(cls, spec: ModelSpec, fim: bool) -> "BaseModelCard":
        # Every model calls tools: through mistral-common's format, or grammar-constrained JSON.
        capabilities = ModelCapabilities(function_calling=True, completion_fim=fim)
        return cls(
            id=spec.name, created=spec.created, capabilities=capabilities, name=spec.name,
            description=spec.description, max_context_length=spec.context_length,
            aliases=spec.aliases, default_model_temperature=spec.default_temperature,
        )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BaseModelCard]
