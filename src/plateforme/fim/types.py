"""A fill-in-the-middle request in the platform's own terms."""

from dataclasses import dataclass, field


@dataclass
class FIMRequest:
    model: str
    prompt: str
    suffix: str = ""
    max_tokens: int | None = None
    min_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # The workspace asking: admission shares the model fairly between workspaces.
    tenant: str | None = None
