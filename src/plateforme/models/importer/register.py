"""Record an imported model in `<data_dir>/models.yaml`, next to the packaged defaults."""

import os
import re
from pathlib import Path

import yaml

from plateforme.models.importer.checkpoint import ImportFailed
from plateforme.models.registry import IMPORTED_MODELS_FILE, ModelRegistry, read_models_file
from plateforme.models.spec import ModelSpec

NAME_PATTERN = re.compile(ModelSpec.model_fields["name"].metadata[0].pattern)


def default_name(src: Path) -> str:
    """A model name from the checkpoint directory's name: lowercased, other characters -> '-'."""
    name = re.sub(r"[^a-z0-9._:-]+", "-", Path(src).expanduser().resolve().name.lower())
    name = name.strip("-._:")
    return name or "imported-model"


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ImportFailed(f"invalid model name {name!r}: use letters, digits and . _ : - "
                           "(starting with a letter or digit)")
    packaged = ModelRegistry.from_file(None)
    if packaged.get(name) is not None:
        raise ImportFailed(f"model name {name!r} is taken by a packaged default model: "
                           "choose another with --name")
    return name


def register(spec: ModelSpec, data_dir: Path) -> Path:
    """Add or replace `spec` in the imported models file (rewritten atomically); return its path."""
    path = Path(data_dir) / IMPORTED_MODELS_FILE
    specs = read_models_file(path) if path.is_file() else []
    specs = [s for s in specs if s.name != spec.name] + [spec]
    ModelRegistry(ModelRegistry.from_file(None).specs + specs)  # alias clashes fail here
    body = {"models": [s.model_dump(exclude_defaults=True, mode="json") | {"name": s.name, "path": s.path}
                       for s in specs]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("# Models added by `plateforme models import`.\n"
                   + yaml.safe_dump(body, sort_keys=False))
    os.replace(tmp, path)
    return path
