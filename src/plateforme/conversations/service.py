"""Start, append to, restart conversations: the store and the loop together, for the routes.

    response = await service.start(principal, inputs, settings, options)   # every 4xx raised here
    async for item in response.items(): ...     # the loop's items, each entry stored as it comes
    # or: outputs = await response.result()     # ConversationResponse as a dict

Everything a request can get wrong (an unknown agent or version, a bad entry, a tool that cannot
be served, a result answering no call) is raised before anything is stored or run. The response's
claim on the conversation (store.begin) is held with a lease renewed while it runs, and ended idle,
waiting (function calls or confirmations for the client) or failed with the error. `store: false`:
nothing is written (the answer still names a conversation id, which later GETs answer 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field

from plateforme.agents.errors import AgentsError, BadInput, NotFound
from plateforme.agents.served_models import require_chat_model
from plateforme.conversations.entries import input_entries, messages_view
from plateforme.conversations.items import DoneItem, EntryItem
from plateforme.conversations.loop import Turn
from plateforme.conversations.store import FIELDS, LEASE_S

log = logging.getLogger("plateforme.conversations")


@dataclass
class Options:
    """How one response is made: kept or not, who runs handoffs, the request's completion args."""
    store: bool = True
    handoff_execution: str = "server"
    completion_args: dict | None = None
    tool_confirmations: list[dict] | None = None


def new_conversation_id() -> str:
    return f"conv_{secrets.token_hex(16)}"


@dataclass
class Response:
    """One response being made: iterate `items()` once (stream), or await `result()` (JSON)."""
    service: "ConversationService"
    conversation_id: str
    turn: object
    prepared: object
    stored: bool
    restore: tuple[str, str | None] | None = None  # the status to go back to if the response never runs
    outputs: list[dict] = field(default_factory=list)

    async def items(self):
        async for item in self.service._drive(self):
            yield item

    async def result(self) -> dict:
        """ConversationResponse: the output entries, the usage, what the guardrails checked."""
        done = None
        async for item in self.items():
            if isinstance(item, DoneItem):
                done = item
        usage = done.usage if done is not None else {}
        return {"object": "conversation.response", "conversation_id": self.conversation_id,
                "outputs": self.outputs, "usage": usage, "guardrails": done.guardrails if done else None}


class ConversationService:
    def __init__(self, store, loop, agents, engines=None):
        """`store`: conversations.store.ConversationStore; `loop`: conversations.loop.ConversationLoop;
        `agents`: agents.registry.AgentRegistry; `engines`: the app's
        generation.engine_resolution.EngineResolver, to check a bare model before anything runs
        (None: the first model step checks it)."""
        self.store, self.loop, self.agents, self.engines = store, loop, agents, engines

    # -- reading -------------------------------------------------------------------------------

    async def get(self, principal, conversation_id: str):
        return await asyncio.to_thread(self.store.get, principal.workspace_id, conversation_id)

    async def list(self, principal, page: int, page_size: int, metadata: dict | None):
        return await asyncio.to_thread(self.store.list, principal.workspace_id, page, page_size, metadata)

    async def history(self, principal, conversation_id: str) -> list[dict]:
        return await asyncio.to_thread(self.store.entries, principal.workspace_id, conversation_id)

    async def messages(self, principal, conversation_id: str) -> list[dict]:
        return messages_view(await self.history(principal, conversation_id))

    async def delete(self, principal, conversation_id: str) -> None:
        await asyncio.to_thread(self.store.delete, principal.workspace_id, conversation_id)

    # -- responses -----------------------------------------------------------------------------

    async def start(self, principal, inputs, settings: dict, options: Options) -> Response:
        """A new conversation with an agent (`agent_id`, `agent_version`) or a bare model
        (`model`, `instructions`, `tools`, ...): `settings` are store.FIELDS."""
        settings = {k: v for k, v in settings.items() if k in FIELDS}
        if settings.get("agent_id"):
            if settings.get("model"):
                raise BadInput("model: a conversation is with an agent (agent_id) or a model, not both; "
                               "remove one", "model")
            for name in ("instructions", "tools"):
                if settings.get(name) is not None:
                    raise BadInput(f"{name}: set by the agent; with agent_id, send no {name} (update the agent, "
                                   "or start the conversation with a model instead)", name)
        elif not settings.get("model"):
            raise BadInput("model: a conversation needs an agent_id or a model", "model")
        elif settings.get("agent_version") is not None:
            raise BadInput("agent_version: only with agent_id", "agent_version")
        agent = await self._agent(principal, settings.get("agent_id"), settings.get("agent_version"))
        if agent is None and self.engines is not None:  # an agent's model was checked when it was made
            await require_chat_model(self.engines, principal.workspace_id, settings["model"])
        entries = input_entries(inputs)
        conversation_id = new_conversation_id()
        turn = self._turn(principal, conversation_id, agent, settings, [], entries, options)
        prepared = await self.loop.prepare(turn)
        if options.store:
            settings["active_agent_id"] = settings.get("agent_id")
            await asyncio.to_thread(self.store.create, principal.workspace_id, conversation_id, settings, entries)
        return Response(self, conversation_id, turn, prepared, options.store)

    async def append(self, principal, conversation_id: str, inputs, options: Options) -> Response:
        """The next response of a stored conversation (409 while one is being made)."""
        restore = None  # what the conversation goes back to if this response is refused before it runs
        if options.store:
            record, restore = await asyncio.to_thread(self.store.begin, principal.workspace_id, conversation_id)
        else:
            record = await self.get(principal, conversation_id)
        try:
            history = await self.history(principal, conversation_id)
            entries = input_entries(inputs) if inputs is not None else []
            active = record.active_agent_id or record.agent_id
            version = record.agent_version if active == record.agent_id else None
            agent = await self._agent(principal, active, version)
            settings = {name: getattr(record, name) for name in FIELDS}
            turn = self._turn(principal, conversation_id, agent, settings, history, entries, options)
            prepared = await self.loop.prepare(turn)
            if options.store:
                await asyncio.to_thread(self.store.append, conversation_id, entries)
        except BaseException:
            if restore is not None:
                await asyncio.to_thread(self.store.end, conversation_id, *restore)
            raise
        return Response(self, conversation_id, turn, prepared, options.store)

    async def restart(self, principal, conversation_id: str, from_entry_id: str, inputs, options: Options,
                      metadata: dict | None = None, guardrails: list | None = None,
                      agent_version=None) -> Response:
        """A NEW conversation: this one's entries up to and including `from_entry_id`, then `inputs`."""
        source, kept = await asyncio.to_thread(self.store.entries_through, principal.workspace_id,
                                               conversation_id, from_entry_id)
        settings = {name: getattr(source, name) for name in FIELDS}
        if source.agent_id is None and agent_version is not None:
            raise BadInput("agent_version: this conversation is with a model, not an agent", "agent_version")
        settings.update(active_agent_id=source.agent_id, agent_version=agent_version)
        if metadata is not None:
            settings["metadata"] = metadata
        if guardrails is not None:
            settings["guardrails"] = guardrails
        agent = await self._agent(principal, source.agent_id, agent_version)
        entries = input_entries(inputs) if inputs is not None else []
        if not entries and kept and kept[-1]["type"] == "message.input":
            kept, entries = kept[:-1], kept[-1:]  # restarted from a message, with none after it: answer it again
        new_id = new_conversation_id()
        turn = self._turn(principal, new_id, agent, settings, kept, entries, options)
        prepared = await self.loop.prepare(turn)
        if options.store:
            await asyncio.to_thread(self.store.create, principal.workspace_id, new_id, settings, kept + entries)
        return Response(self, new_id, turn, prepared, options.store)

    # -- helpers -------------------------------------------------------------------------------

    async def _agent(self, principal, agent_id: str | None, version):
        if agent_id is None:
            return None
        try:
            return await asyncio.to_thread(self.agents.get, principal.workspace_id, agent_id, version)
        except NotFound as exc:
            param = "agent_version" if version is not None and "version" in str(exc) else "agent_id"
            raise NotFound(str(exc), param) from None

    def _turn(self, principal, conversation_id: str, agent, settings: dict, history: list[dict],
              entries: list[dict], options: Options):
        # The conversation's completion_args (set when it started) under this request's; the agent's
        # under both (the loop's persona lays them over the agent's). Guardrails: the conversation's
        # (the agent's are added by the persona).
        args = {**(settings.get("completion_args") or {}), **(options.completion_args or {})}
        return Turn(principal=principal, conversation_id=conversation_id, agent=agent,
                    model=settings.get("model"), instructions=settings.get("instructions"),
                    tools=settings.get("tools"), completion_args=args, guardrails=settings.get("guardrails"),
                    history=history, inputs=entries, tool_confirmations=options.tool_confirmations or [],
                    handoff_execution=options.handoff_execution)

    async def _renew(self, conversation_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            if not await asyncio.to_thread(self.store.renew, conversation_id):
                log.warning("conversation %s: the response's lease was lost", conversation_id)
                return

    async def _drive(self, response: Response):
        """The loop's items for `response`, its entries stored in order, its end recorded."""
        cid, stored = response.conversation_id, response.stored
        renewer = asyncio.create_task(self._renew(cid)) if stored else None
        status, error, agent_id = "failed", None, None
        try:
            async with contextlib.aclosing(self.loop.run(response.prepared)) as items:
                async for item in items:
                    if isinstance(item, EntryItem):
                        if stored:
                            await asyncio.to_thread(self.store.append, cid, [item.entry])
                        response.outputs.append(item.entry)
                    elif isinstance(item, DoneItem):
                        status, agent_id = item.status, item.agent_id
                    yield item
            if status == "failed":
                error = "the response ended without finishing; append again"
        except AgentsError as exc:
            error = str(exc)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            status, error = "failed", "the client left before the response was complete; append again"
            raise
        except Exception as exc:
            log.exception("conversation %s: the response failed", cid)
            status, error = "failed", f"the response failed: {exc}"
            raise
        finally:
            if renewer is not None:
                renewer.cancel()
            if stored:
                if error is not None:
                    status = "failed"
                await asyncio.shield(asyncio.to_thread(self.store.end, cid, status, error, agent_id))
