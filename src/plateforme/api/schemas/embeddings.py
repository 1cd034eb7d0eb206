"""POST /v1/embeddings bodies: Mistral's EmbeddingRequest / EmbeddingResponse, and OpenAI's
fields (`dimensions`, `user`, base64 `encoding_format`) so both SDKs work unchanged."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plateforme.embeddings.output_format import EncodingFormat, OutputDtype

# Inputs one request may carry (OpenAI's limit).
MAX_INPUTS = 2048


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # A string or a list of strings (checked by the route, for errors that say what is wrong).
    input: Any
    metadata: dict | None = None
    output_dimension: int | None = Field(default=None, gt=0)
    output_dtype: OutputDtype = "float"
    encoding_format: EncodingFormat = "float"
    # OpenAI's name for output_dimension.
    dimensions: int | None = Field(default=None, gt=0)
    # OpenAI's end-user id: accepted, not used.
    user: str | None = None
    # plateforme's own: how the texts are embedded (e5: "query: " or "passage: "); default: the
    # model's `input_type` in the models config (document unless the operator says otherwise).
    input_type: Literal["query", "document"] | None = None

    def texts(self) -> list[str]:
        """The inputs as a list of strings; ValueError saying what is wrong otherwise."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise ValueError("input must be a string or a list of strings")
        if not value:
            raise ValueError("input is empty: give at least one text")
        if any(isinstance(item, int) or isinstance(item, list) for item in value):
            raise ValueError("input as token ids is not supported by this server: send the texts themselves")
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str)), None)
        if bad is not None:
            raise ValueError(f"input[{bad}] is not a string: input must be a string or a list of strings")
        if len(value) > MAX_INPUTS:
            raise ValueError(f"input has {len(value)} texts, more than the {MAX_INPUTS} one request may carry; "
                             "send them in several requests")
        return value

    def dimension(self) -> int | None:
        return self.output_dimension or self.dimensions


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | list[int] | str  # str: base64
    index: int


class PromptUsage(BaseModel):
    """The usage of a request that reads and generates nothing (embeddings, classifications, moderations)."""

    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class EmbeddingResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: PromptUsage
