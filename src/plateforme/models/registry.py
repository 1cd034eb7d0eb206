"""Load the models config files and look models up by name or alias."""

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from plateforme.models.spec import ModelSpec

IMPORTED_MODELS_FILE = "models.yaml"


class ConfigError(RuntimeError):
    """The models config file is missing or invalid."""


class UnknownModel(LookupError):
    def __init__(self, model: str):
        super().__init__(f"model {model!r} does not exist; list the served models with GET /v1/models")
        self.model = model


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = []


def read_models_file(path: Path | None) -> list[ModelSpec]:
    """Specs declared in `path` (the packaged defaults when None)."""
    if path is None:
        text = resources.files("plateforme").joinpath("default_models.yaml").read_text()
        source = "the packaged default_models.yaml"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read models config {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        return ModelsFile.model_validate(yaml.safe_load(text) or {}).models
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"invalid models config {source}:\n{exc}") from exc


class ModelRegistry:
    def __init__(self, specs: list[ModelSpec]):
        names: dict[str, ModelSpec] = {}
        for spec in specs:
            for key in [spec.name, *spec.aliases]:
                if key in names:
                    raise ConfigError(f"model name or alias {key!r} is declared twice")
                names[key] = spec
        self.specs = specs
        self._by_name = names

    @classmethod
    def from_file(cls, path: Path | None, data_dir: Path | None = None) -> "ModelRegistry":
        """The models of config file `path`; without one, the packaged defaults plus the models
        imported into `data_dir`."""
        specs = read_models_file(path)
        if path is None and data_dir is not None:
            imported = Path(data_dir) / IMPORTED_MODELS_FILE
            if imported.is_file():
                specs += read_models_file(imported)
        return cls(specs)

    def get(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name)

    def require(self, name: str) -> ModelSpec:
        """The spec of `name` (or an alias); UnknownModel when there is none."""
        spec = self._by_name.get(name)
        if spec is None:
            raise UnknownModel(name)
        return spec
