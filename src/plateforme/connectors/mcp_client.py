"""Sessions with the MCP servers of connectors: the `mcp` package's ClientSession over its stdio
or streamable HTTP transport, kept open per connector and reused by every call.

Kept, not one per call: starting a server and its MCP handshake costs 1.5-2 s for a Python stdio
server on this machine (measured with tests/mcp_servers/inventory_server.py), a call on an open
session a few milliseconds, and a conversation lists the tools on every turn. A session idle
for IDLE_S is closed; so is every session at shutdown (McpClient.close).

A session is held by a task of its own (the transport and the ClientSession are anyio context
managers, entered and left by the same task); callers use it from theirs. Whatever goes wrong
(the command does not start, the handshake does not come, a call runs past its timeout, the
server dies mid-call) is an McpUnavailable whose message names the cause, with the end of the
server's stderr when it has one. A session that lost its server is dropped and the next call
starts a fresh one; a session is pinged before it is reused, so a server that hangs (or died
between two calls) is replaced before a call is sent to it. Nothing here waits without a bound.
"""

import asyncio
import contextlib
import logging
import tempfile
import time
from contextlib import asynccontextmanager

import httpx2
import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from plateforme.connectors.mcp_config import (HttpServer, McpConfigError, StdioServer, describe, fingerprint,
                                              resolved_env, resolved_headers, resolved_url)
from plateforme.connectors.mcp_errors import McpRefused, McpTimeout, McpUnavailable

log = logging.getLogger("plateforme.connectors.mcp")

IDLE_S = 600.0  # an unused session is closed after this long
CLOSE_S = 8.0  # the stdio transport's own shutdown is bounded by ~6 s (close stdin, SIGTERM, SIGKILL)
PING_S = 2.0  # a reused session must answer a ping within this before a tool call is sent
MAX_PAGES = 50  # tools/list pages read at most
STDERR_TAIL = 600


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _reason(error: BaseException) -> str:
    error = _leaf(error)
    if isinstance(error, FileNotFoundError):
        return f"the command was not found ({error.filename or error}); give its full path or install it"
    if isinstance(error, MCPError):
        return error.message
    if isinstance(error, httpx2.HTTPError):
        return f"{type(error).__name__}: {error}"
    return str(error) or type(error).__name__


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str], timeout: float):
    timeouts = httpx2.Timeout(timeout, read=max(timeout, 300.0))
    async with httpx2.AsyncClient(headers=headers, timeout=timeouts) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            yield streams


class McpSession:
    """One open MCP session with one server."""

    def __init__(self, name: str, config: StdioServer | HttpServer):
        self.name = name
        self.config = config
        self.fingerprint = fingerprint(config)
        self.broken = False
        self.last_used = time.monotonic()
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task | None = None
        self._errlog = None

    def _what(self) -> str:
        return f"the MCP server of connector {self.name!r} ({describe(self.config)})"

    async def _stderr_tail(self) -> str:
        if self._errlog is None:
            return ""

        errlog = self._errlog

        def read() -> str:
            try:
                errlog.flush()
                errlog.seek(0)
                return errlog.read()[-STDERR_TAIL:].strip()
            except (ValueError, OSError):  # closed meanwhile by another caller's retirement
                return ""

        tail = await asyncio.to_thread(read)
        return f"; its stderr ends with: {tail}" if tail else ""

    def _transport(self):
        if isinstance(self.config, StdioServer):
            params = StdioServerParameters(command=self.config.command, args=self.config.args,
                                           env=resolved_env(self.config), cwd=self.config.cwd)
            return stdio_client(params, errlog=self._errlog)
        return _http_transport(resolved_url(self.config), resolved_headers(self.config), 30.0)

    async def _hold(self, transport) -> None:
        try:
            async with transport as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                self._session = session
                self._ready.set()
                await self._closing.wait()
        except BaseException as e:  # noqa: BLE001 - every failure is reported to the callers waiting
            self._failure = e
        finally:
            self.broken = True
            self._session = None
            self._ready.set()

    async def open(self, timeout: float) -> None:
        """Start the server (stdio) or connect (HTTP) and do the MCP handshake, within `timeout`.
        On failure the session is broken: the caller closes it."""
        self.broken = True  # until the handshake is done
        if isinstance(self.config, StdioServer):
            self._errlog = await asyncio.to_thread(tempfile.TemporaryFile, "w+", encoding="utf-8", errors="replace")
        try:
            transport = self._transport()
        except McpConfigError as e:
            raise McpUnavailable(f"{self._what()} cannot be started: {e}") from None
        self._task = asyncio.create_task(self._hold(transport), name=f"mcp:{self.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise McpTimeout(f"{self._what()} did not complete the MCP handshake within {timeout:.1f} s"
                             f"{await self._stderr_tail()}") from None
        if self._session is None:
            reason = _reason(self._failure or RuntimeError("it stopped"))
            raise McpUnavailable(f"{self._what()} did not start: {reason}{await self._stderr_tail()}")
        self.broken = False

    def _live(self) -> ClientSession:
        if self._session is None or self.broken:
            raise McpUnavailable(f"{self._what()} is no longer connected")
        self.last_used = time.monotonic()
        return self._session

    async def _request(self, what: str, call, timeout: float):
        """Run one request; a timeout or a lost connection breaks the session (the next call opens anew)."""
        try:
            # The SDK's own read timeout answers first; wait_for is the bound if it ever did not.
            return await asyncio.wait_for(call(timeout), timeout + 1.0)
        except TimeoutError:
            raise McpTimeout(f"{self._what()} did not answer {what} within {timeout:.1f} s") from None
        except MCPError as e:
            if e.code == types.REQUEST_TIMEOUT or "timed out" in e.message:
                # The session is kept: a server slow on one call may serve others. One that hangs
                # fails the ping before its next call, and is replaced then.
                raise McpTimeout(f"{self._what()} did not answer {what} within {timeout:.1f} s") from None
            if e.code == types.CONNECTION_CLOSED:
                self.broken = True
                tail = await self._stderr_tail()
                raise McpUnavailable(f"{self._what()} closed the connection during {what} (it crashed or "
                                     f"exited){tail}") from None
            raise McpRefused(f"{self._what()} refused {what}: {e.message}") from None
        except (httpx2.HTTPError, OSError, ConnectionError) as e:
            self.broken = True
            raise McpUnavailable(f"{self._what()} failed during {what}: {_reason(e)}") from None

    async def ping(self, timeout: float) -> None:
        session = self._live()
        await self._request("a ping", lambda t: session.send_ping(), timeout)

    async def list_tools(self, timeout: float) -> list[types.Tool]:
        session = self._live()

        async def every_page(t: float) -> list[types.Tool]:
            tools, cursor = [], None
            for _ in range(MAX_PAGES):
                params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        return await self._request("the tool list (tools/list)", every_page, timeout)

    async def call_tool(self, tool: str, arguments: dict, timeout: float) -> types.CallToolResult:
        session = self._live()
        return await self._request(f"the call of tool {tool!r}",
                                   lambda t: session.call_tool(tool, arguments, read_timeout_seconds=t), timeout)

    async def close(self) -> None:
        self.broken = True
        self._closing.set()
        task, self._task = self._task, None
        if task is not None:
            if self._session is None:
                task.cancel()  # still in the handshake: nothing to wind down politely
            try:
                await asyncio.wait_for(asyncio.shield(task), CLOSE_S)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        errlog, self._errlog = self._errlog, None
        if errlog is not None:
            await asyncio.to_thread(errlog.close)


class McpClient:
    """The open sessions, one per connector (by its id), opened on first use."""

    def __init__(self):
        self._sessions: dict[str, McpSession] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task] = set()

    def _retire(self, session: McpSession) -> None:
        """Close `session` in the background: a stdio server's shutdown takes up to a few seconds
        (stdin closed, a grace period, then signals), which the caller's answer does not wait for."""
        session.broken = True
        task = asyncio.create_task(session.close(), name=f"mcp-close:{session.name}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _sweep(self) -> None:
        idle = [k for k, s in self._sessions.items() if time.monotonic() - s.last_used > IDLE_S]
        for key in idle:
            self.forget(key)

    async def session(self, key: str, name: str, config: StdioServer | HttpServer,
                      timeout: float) -> tuple[McpSession, bool]:
        """The connector's open session, or a new one; and whether it is new."""
        self._sweep()
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self._sessions.get(key)
            if found is not None and not found.broken and found.fingerprint == fingerprint(config):
                found.last_used = time.monotonic()
                return found, False
            if found is not None:
                del self._sessions[key]
                self._retire(found)
            fresh = McpSession(name, config)
            try:
                await fresh.open(timeout)
            except BaseException:
                self._retire(fresh)
                raise
            self._sessions[key] = fresh
            return fresh, True

    async def _with_session(self, key, name, config, start_timeout: float, timeout: float, use):
        """`use(session, timeout)` on the connector's session: opened within `start_timeout` if needed
        (a server's start is not a call: it has its own bound), the request itself within `timeout`."""
        session, new = await self.session(key, name, config, start_timeout)
        if not new:
            try:  # a server that died since its last call: found now, and replaced, before anything is sent
                await session.ping(min(PING_S, timeout))
            except McpUnavailable:
                self.forget(key)
                session, _ = await self.session(key, name, config, start_timeout)
        try:
            return await use(session, timeout)
        finally:
            if session.broken:
                self.forget(key, session)

    async def list_tools(self, key: str, name: str, config: StdioServer | HttpServer, start_timeout: float,
                         timeout: float) -> list[types.Tool]:
        return await self._with_session(key, name, config, start_timeout, timeout, lambda s, t: s.list_tools(t))

    async def call_tool(self, key: str, name: str, config: StdioServer | HttpServer, tool: str, arguments: dict,
                        start_timeout: float, timeout: float) -> types.CallToolResult:
        return await self._with_session(key, name, config, start_timeout, timeout,
                                        lambda s, t: s.call_tool(tool, arguments, t))

    def rename(self, key: str, new_key: str) -> None:
        """The session opened under `key` (e.g. an admin's trial of a server) now serves `new_key`."""
        found = self._sessions.pop(key, None)
        self._locks.pop(key, None)
        if found is not None:
            self.forget(new_key)
            self._sessions[new_key] = found

    def forget(self, key: str, session: McpSession | None = None) -> None:
        """Close the connector's session (only `session`, when given and still the current one)."""
        found = self._sessions.get(key)
        if found is not None and (session is None or found is session):
            del self._sessions[key]
            self._retire(found)
        elif session is not None:
            self._retire(session)
        lock = self._locks.get(key)
        if key not in self._sessions and lock is not None and not lock.locked():
            del self._locks[key]

    async def close(self) -> None:
        for key in list(self._sessions):
            self.forget(key)
        await asyncio.gather(*list(self._retiring), return_exceptions=True)
