"""The operator's moderation config: which providers score which category, and the thresholds.

A YAML file named by `PLATEFORME_MODERATION_CONFIG`; without it, `default_config()`: the shipped
classifier head for every category, plus the rule-based PII provider for `pii`.

    providers:
      default: {type: head}                       # the shipped head (moderation/data/default_head.npz)
      mine: {type: head, path: /etc/plateforme/head.npz}   # an operator's head file
      tuned: {type: head, model: "ft:multilingual-e5-small:ws:abcd1234"}  # a classifier fine-tune
      pii: {type: pii}
      judge: {type: llm_judge, model: smollm2-135m-instruct}
      guard: {type: guard, base_url: "http://guard:8000/v1", model: llama-guard, api: chat,
              api_key_env: GUARD_KEY, category_map: {S1: violence_and_threats}, timeout_s: 10}
    categories:              # the providers of each 2603 category; "*": every category not named
      "*": [default]
      pii: [default, pii]
    thresholds:              # default thresholds (of the 2603 names; shown on the model cards)
      law: 0.6

Per category, the scores of its providers are combined by their maximum: one provider's alarm is
enough. Every provider reports scores calibrated so that 0.5 is its own decision point (the
shipped head maps its per-category thresholds chosen on held-out data to 0.5), which is why the
default threshold of every category is 0.5 and why a maximum over providers is meaningful.
"""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plateforme.moderation.categories import CATEGORIES_2603

EVERY_CATEGORY = "*"
DEFAULT_THRESHOLD = 0.5


class ModerationConfigError(ValueError):
    """The moderation config is not usable; the message names the file, the field and the fix."""


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["head", "pii", "llm_judge", "guard"]
    # head: an operator's head file (`path`) or a classifier fine-tune (`model`); neither: the
    # shipped head. llm_judge: the served chat model asked. guard: the remote server's model.
    path: Path | None = None
    model: str | None = None
    # The categories this provider may score (default: all it knows).
    categories: list[str] | None = None
    # guard: the remote OpenAI-compatible server, the variable holding its key, how its
    # categories (Llama Guard's S1...S14) map to ours, and its time limit.
    base_url: str | None = None
    api_key_env: str | None = None
    # (a name of a shipped map, e.g. llama_guard_3, or {their category: ours or a list of ours})
    category_map: str | dict[str, str | list[str]] | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    # guard: "chat" (a guard model behind /chat/completions, e.g. Llama Guard on vLLM) or
    # "moderations" (a /moderations endpoint: OpenAI's, Mistral's, another plateforme's).
    api: Literal["chat", "moderations"] | None = None

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> "ProviderSpec":
        if self.type == "head" and self.path is not None and self.model is not None:
            raise ValueError("a head provider reads a file (`path`) or a classifier fine-tune (`model`), not both")
        if self.type == "llm_judge" and not self.model:
            raise ValueError("an llm_judge provider needs `model`: the served chat model asked for a verdict")
        if self.type == "guard" and (not self.base_url or not self.model):
            raise ValueError("a guard provider needs `base_url` (its OpenAI-compatible server, /v1 included) "
                             "and `model`")
        if self.type != "guard" and (self.base_url or self.api_key_env or self.category_map or self.api):
            raise ValueError("base_url, api_key_env, category_map and api are fields of guard providers only")
        for name in self.categories or ():
            if name not in CATEGORIES_2603:
                raise ValueError(f"unknown category {name!r}; the categories are {', '.join(CATEGORIES_2603)}")
        for theirs, ours in (self.category_map if isinstance(self.category_map, dict) else {}).items():
            for one in [ours] if isinstance(ours, str) else ours:
                if one not in CATEGORIES_2603:
                    raise ValueError(f"category_map: {theirs!r} maps to unknown category {one!r}; the categories "
                                     f"are {', '.join(CATEGORIES_2603)}")
        return self


class ModerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderSpec]
    categories: dict[str, list[str]]
    thresholds: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "ModerationConfig":
        if not self.providers:
            raise ValueError("providers: name at least one provider")
        for category, names in self.categories.items():
            if category != EVERY_CATEGORY and category not in CATEGORIES_2603:
                raise ValueError(f"categories: unknown category {category!r}; the categories are "
                                 f"{', '.join(CATEGORIES_2603)} (or \"*\" for every category not named)")
            for name in names:
                if name not in self.providers:
                    raise ValueError(f"categories.{category}: provider {name!r} is not declared under providers "
                                     f"(declared: {', '.join(self.providers)})")
        missing = [c for c in CATEGORIES_2603 if not self.providers_of(c)]
        if missing:
            raise ValueError(f"categories: no provider scores {', '.join(missing)}; name providers for them or "
                             "give \"*\" a provider list")
        for category, value in self.thresholds.items():
            if category not in CATEGORIES_2603:
                raise ValueError(f"thresholds: unknown category {category!r}")
            if not 0.0 < value <= 1.0:
                raise ValueError(f"thresholds.{category}: {value} is not in (0, 1]")
        return self

    def providers_of(self, category: str) -> list[str]:
        """The providers the operator named for `category` (its own list, else "*"'s)."""
        names = self.categories.get(category)
        return list(names if names is not None else self.categories.get(EVERY_CATEGORY, ()))

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, DEFAULT_THRESHOLD)

    def used_providers(self) -> list[str]:
        """The declared providers some category uses, in declaration order."""
        used = {name for c in CATEGORIES_2603 for name in self.providers_of(c)}
        return [name for name in self.providers if name in used]


def default_config() -> ModerationConfig:
    return ModerationConfig(providers={"default": ProviderSpec(type="head"), "pii": ProviderSpec(type="pii")},
                            categories={EVERY_CATEGORY: ["default"], "pii": ["default", "pii"]})


def load_config(path: Path | None) -> ModerationConfig:
    """The config in `path` (YAML), or the default one when `path` is None."""
    if path is None:
        return default_config()
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ModerationConfigError(f"cannot read the moderation config {path} (PLATEFORME_MODERATION_CONFIG): "
                                    f"{exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ModerationConfigError(f"the moderation config {path} is not valid YAML: {exc}") from exc
    try:
        return ModerationConfig.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ModerationConfigError(f"the moderation config {path} is not usable: {problems}") from exc
