"""Admin API request shapes: workspaces and their limits, users, API keys.

Every integer is bounded by the range of the column it is stored in (422 beyond it, never a
database error), and every time is normalised to UTC.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plateforme.storage.int_range import int_max
from plateforme.storage.tables import ApiKey, Workspace
from plateforme.tenancy.ids import as_utc


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests_per_minute: int | None = Field(default=None, ge=1, le=int_max(Workspace.requests_per_minute))
    tokens_per_minute: int | None = Field(default=None, ge=1, le=int_max(Workspace.tokens_per_minute))
    token_budget: int | None = Field(default=None, ge=0, le=int_max(Workspace.token_budget))
    budget_period: Literal["day", "month"] | None = None
    # Not a limit, but set the same way: capture the workspace's chat completions as traces (opt-in).
    capture_traces: bool = False


class WorkspaceIn(Limits):
    name: str


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    role: Literal["admin", "member"] = "member"


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str
    name: str = Field(default="default", max_length=100)
    # Any ISO 8601 offset is accepted and converted to UTC; a time without an offset is UTC.
    expires_at: datetime | None = None
    requests_per_minute: int | None = Field(default=None, ge=1, le=int_max(ApiKey.requests_per_minute))
    tokens_per_minute: int | None = Field(default=None, ge=1, le=int_max(ApiKey.tokens_per_minute))

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)
