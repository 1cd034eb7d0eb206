"""Model cards, as in Mistral's spec (BaseModelCard, FTModelCard, ModelCapabilities, ModelList).

Beyond the spec's fields, a moderation model's card carries its `categories` and
`default_thresholds`, and a classifier fine-tune's card its `model_type` ("classifier") and
`classifier_targets` (cards keep such extra fields: `extra="allow"`).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_serializer

from plateforme.engines.engine import capabilities_of
from plateforme.models.spec import ModelSpec
from plateforme.storage.fine_tuning_tables import FineTunedModel


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
    # plateforme's own (Mistral's card of mistral-embed has every capability false): the model
    # makes embeddings (POST /v1/embeddings), and nothing else.
    embedding: bool = False


# Card fields of embedding models only (left out of chat models' cards).
EMBEDDING_FIELDS = ("dimension", "window", "windowed")


class BaseModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")  # a moderation model's categories and default thresholds
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
    # Embedding models: the vectors' native dimension, the tokens one input may have, and whether
    # longer inputs are embedded in windows (true) or refused (false).
    dimension: int | None = None
    window: int | None = None
    windowed: bool | None = None

    @model_serializer(mode="wrap")
    def _without_embedding_fields(self, handler):
        data = handler(self)
        if self.dimension is None:
            for key in EMBEDDING_FIELDS:
                data.pop(key, None)
        return data

    @classmethod
    def for_embedding(cls, spec: ModelSpec, dimension: int) -> "BaseModelCard":
        """An embedding model's card: no chat capability, its dimension and window."""
        return cls(id=spec.name, created=spec.created, capabilities=ModelCapabilities(completion_chat=False,
                                                                                      embedding=True),
                   name=spec.name, description=spec.description, max_context_length=spec.window,
                   aliases=spec.aliases, dimension=dimension, window=spec.window, windowed=spec.windowed)

    @classmethod
    def from_spec(cls, spec: ModelSpec, fim: bool, reasoning: bool = False) -> "BaseModelCard":
        # The card follows what the model's engine declares (engines/engine.py). On llama.cpp every
        # model calls tools: through mistral-common's format, or grammar-constrained JSON; a remote
        # server calls them itself, as its operator states. Fine-tuning trains LoRA adapters on the
        # GGUF chat template's rendering (not on mistral-common's), served by a llama.cpp host.
        engine = capabilities_of(spec)
        capabilities = ModelCapabilities(completion_chat=engine.chat,
                                         function_calling=engine.grammar or engine.server_tools,
                                         completion_fim=fim and engine.token_prompts, reasoning=reasoning,
                                         fine_tuning=engine.lora and spec.tokenizer is None)
        return cls(
            id=spec.name, created=spec.created, capabilities=capabilities, name=spec.name,
            description=spec.description, max_context_length=spec.context_length,
            aliases=spec.aliases, default_model_temperature=spec.default_temperature,
        )


class FTModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")  # a classifier's model_type and classifier_targets
    id: str
    object: str = "model"
    created: int
    owned_by: str
    capabilities: ModelCapabilities
    name: str | None = None
    description: str | None = None
    max_context_length: int
    aliases: list[str] = []
    deprecation: str | None = None
    deprecation_replacement_model: str | None = None
    default_model_temperature: float | None = None
    type: Literal["fine-tuned"] = "fine-tuned"
    job: str
    root: str
    archived: bool = False

    @classmethod
    def of(cls, row: FineTunedModel, base: ModelSpec | None) -> "FTModelCard":
        if row.model_type == "classifier":  # a head over an embedding model: it classifies, nothing else
            return cls(id=row.id, created=int(row.created_at.timestamp()), owned_by=row.workspace_id,
                       capabilities=ModelCapabilities(completion_chat=False, classification=True),
                       name=row.name, description=row.description,
                       max_context_length=(base.window or base.context_length) if base else 0,
                       job=row.job_id, root=row.root, archived=row.archived, model_type="classifier",
                       classifier_targets=list(row.classifier_targets or []))
        return cls(id=row.id, created=int(row.created_at.timestamp()), owned_by=row.workspace_id,
                   capabilities=ModelCapabilities(completion_chat=True, function_calling=True),
                   name=row.name, description=row.description,
                   max_context_length=base.context_length if base else 0,
                   default_model_temperature=base.default_temperature if base else None,
                   job=row.job_id, root=row.root, archived=row.archived)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BaseModelCard | FTModelCard]
