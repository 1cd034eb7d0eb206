"""Admin API shapes of database connectors: a database registered for a workspace.

    {"name": "company", "description": "Orders and customers",
     "url": "postgresql://reader:${COMPANY_DB_PASSWORD}@db.internal/company",
     "tables": {"orders": "*", "customers": ["id", "name", "city"]},
     "row_cap": 100, "timeout_s": 3}

The fields beside name and description are the connector's configuration, checked by
connectors/database_config.py (400 naming the field: a literal password, a bound above the
server's, a table list that is not one).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DatabaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    url: str = Field(min_length=1, max_length=2000)
    tables: dict[str, list[str] | Literal["*"]]
    row_cap: int | None = None
    timeout_s: float | None = None

    def config(self) -> dict:
        """The connector's configuration as given (parse_database_config checks and completes it)."""
        return self.model_dump(exclude={"name", "description"})
