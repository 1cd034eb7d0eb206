"""The configuration of an MCP connector, as an admin registers it and as it is stored.

Two transports, told apart by `transport`:

    {"transport": "stdio", "command": "python", "args": ["server.py"], "env": {"TOKEN": "${SHOP_TOKEN}"},
     "cwd": "/srv/mcp", "requires_confirmation": ["delete_item"], "timeout_s": 10}
    {"transport": "streamable_http", "url": "https://mcp.example.com/mcp",
     "headers": {"Authorization": "Bearer ${SHOP_TOKEN}"}}

Secrets are never stored: `env`, `headers` and `url` may name variables of the server's own
environment as `${NAME}`, replaced when the connection is made (and a missing one is an error
naming it). `requires_confirmation` lists the server's tools (by their MCP name) that pause the
conversation until the client allows or denies the call. `timeout_s` bounds each call (at most
the server's `mcp_timeout_s`, PLATEFORME_MCP_TIMEOUT_S).
"""

import hashlib
import json
import os
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from plateforme.agents.errors import BadInput

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpConfigError(Exception):
    """A stored configuration that cannot be used now (a `${VAR}` the environment lacks)."""


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requires_confirmation: list[str] = Field(default_factory=list)
    timeout_s: float | None = Field(default=None, gt=0)


class StdioServer(_Common):
    transport: Literal["stdio"]
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None

    @field_validator("cwd")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isabs(value):
            raise ValueError(f"{value!r} is relative; give an absolute directory (the server's own working "
                             "directory is not the MCP server's business)")
        return value


class HttpServer(_Common):
    transport: Literal["streamable_http"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL; give the MCP endpoint, e.g. http://host:8000/mcp")
        return value


McpServerConfig = Annotated[StdioServer | HttpServer, Field(discriminator="transport")]
_ADAPTER = TypeAdapter(McpServerConfig)


def parse_config(data: dict, param: str = "config") -> StdioServer | HttpServer:
    """A stored or submitted config, validated; BadInput naming the first wrong field."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in (param, *err["loc"]) if p != "")
        raise BadInput(f"{where}: {err['msg']}", where) from None


def check_timeout(config: StdioServer | HttpServer, limit_s: float, param: str = "timeout_s") -> None:
    if config.timeout_s is not None and config.timeout_s > limit_s:
        raise BadInput(f"{param}: {config.timeout_s} s is above this server's limit of {limit_s} s; lower it or "
                       "raise PLATEFORME_MCP_TIMEOUT_S", param)


def call_timeout(config: StdioServer | HttpServer, limit_s: float) -> float:
    """The bound of one call: the connector's timeout_s, never above the server's limit."""
    return min(config.timeout_s or limit_s, limit_s)


def placeholders(config: StdioServer | HttpServer) -> list[str]:
    """The environment variables the config names, in order of appearance."""
    values = list(config.env.values()) if isinstance(config, StdioServer) else [config.url, *config.headers.values()]
    names: list[str] = []
    for value in values:
        names += [n for n in _PLACEHOLDER.findall(value) if n not in names]
    return names


def resolve(value: str, field: str, environ=os.environ) -> str:
    """`value` with each `${NAME}` replaced by the server's environment variable NAME."""
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise McpConfigError(f"{field} names the environment variable {name}, which the platform's "
                                 f"environment does not have; set {name} where `plateforme serve` runs")
        return environ[name]

    return _PLACEHOLDER.sub(one, value)


def resolved_env(config: StdioServer) -> dict[str, str]:
    return {k: resolve(v, f"env.{k}") for k, v in config.env.items()}


def resolved_url(config: HttpServer) -> str:
    return resolve(config.url, "url")


def resolved_headers(config: HttpServer) -> dict[str, str]:
    return {k: resolve(v, f"headers.{k}") for k, v in config.headers.items()}


def fingerprint(config: StdioServer | HttpServer) -> str:
    """Identifies what a session was opened with: a changed config is a new session."""
    return hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode()).hexdigest()[:16]


def describe(config: StdioServer | HttpServer) -> str:
    """The server in a few words, for errors: the command line or the URL (placeholders, never secrets)."""
    if isinstance(config, StdioServer):
        return " ".join([config.command, *config.args])
    return config.url
