"""POST /v1/agents/completions: an agent answering as a chat completion, streamed or not.

The agent's current version gives the model, its instructions (a system message before the
request's messages), its function tools, completion_args and guardrails; the request's own
fields override the completion arguments and add tools and guardrails. Then it is a chat
completion like any other (api/completions.serve_completion: limits, usage, traces, guardrails).
An agent with tools the platform runs (document_library, connector) needs the conversation loop:
it is answered through /v1/conversations, not here (a 400 that says so).
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from plateforme.agents.definition import PLATFORM, check_guardrails, check_tools
from plateforme.agents.errors import BadInput
from plateforme.agents.registry import AgentRecord
from plateforme.api.completions import serve_completion
from plateforme.api.errors import APIError
from plateforme.api.schemas.agent_tools import tools_as_dicts
from plateforme.api.schemas.agents import AgentsCompletionRequest
from plateforme.api.schemas.chat import ChatCompletionRequest, ChatCompletionResponse

router = APIRouter()

# CompletionArgs of an agent that are fields of a chat completion request, under the same name.
_ARGS = ("stop", "presence_penalty", "frequency_penalty", "temperature", "top_p", "max_tokens", "random_seed",
         "prediction", "response_format", "tool_choice", "reasoning_effort")
# Fields of the request passed on as they are (the request's value wins over the agent's).
_PASSED = ("max_tokens", "stream", "stop", "random_seed", "metadata", "response_format", "tool_choice",
           "presence_penalty", "frequency_penalty", "n", "prediction", "parallel_tool_calls", "reasoning_effort",
           "prompt_mode", "prompt_cache_key", "service_tier")


def _no_platform_tools(tools: list[dict], param: str, agent_id: str) -> None:
    for i, tool in enumerate(tools):
        if tool.get("type") in PLATFORM:
            where = f"agent {agent_id!r} has" if param == "agent_id" else f"{param}.{i} is"
            raise BadInput(f"{param}: {where} a {tool['type']} tool, which the platform runs in a conversation "
                           "loop; ask this agent through POST /v1/conversations (agent_id) instead of "
                           "/v1/agents/completions", param if param == "agent_id" else f"{param}.{i}.type")


def chat_request_of(agent: AgentRecord, body: AgentsCompletionRequest) -> ChatCompletionRequest:
    """The chat completion request that `body` asks of `agent`."""
    definition = agent.body
    agent_tools = definition.get("tools") or []
    _no_platform_tools(agent_tools, "agent_id", agent.id)
    request_tools = tools_as_dicts(body.tools) or []
    check_tools(request_tools)
    _no_platform_tools(request_tools, "tools", agent.id)
    check_guardrails(body.guardrails)
    fields = {key: value for key, value in (definition.get("completion_args") or {}).items()
              if key in _ARGS and value is not None}
    fields.update({key: getattr(body, key) for key in _PASSED
                   if key in body.model_fields_set and getattr(body, key) is not None})
    fields = {key: value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value
              for key, value in fields.items()}
    messages = [m.model_dump(exclude_unset=True, by_alias=True) for m in body.messages]
    if definition.get("instructions"):
        messages.insert(0, {"role": "system", "content": definition["instructions"]})
    tools = [t for t in agent_tools if t.get("type") == "function"]
    names = {t["function"]["name"] for t in tools}
    for i, tool in enumerate(request_tools):
        if tool["function"]["name"] in names:
            raise BadInput(f"tools.{i}.function.name: {tool['function']['name']!r} is already a tool of agent "
                           f"{agent.id!r}; give the request's function another name", f"tools.{i}.function.name")
    tools += request_tools
    guardrails = [*(definition.get("guardrails") or []), *(body.guardrails or [])]
    try:
        return ChatCompletionRequest.model_validate({
            **fields, "model": definition["model"], "messages": messages, "tools": tools or None,
            "guardrails": guardrails or None})
    except ValidationError as exc:  # an agent's arguments the chat request does not take (max_tokens 0...)
        raise RequestValidationError(exc.errors()) from None


@router.post("/v1/agents/completions", response_model=ChatCompletionResponse, response_model_exclude_none=True)
async def agents_completions(body: AgentsCompletionRequest, request: Request):
    agent = await asyncio.to_thread(request.app.state.agents.get, request.state.principal.workspace_id,
                                    body.agent_id)
    chat = chat_request_of(agent, body)
    unsupported = chat.unsupported_fields()
    if unsupported:
        raise APIError(400, f"{', '.join(unsupported)}: not supported by this server yet; "
                       "remove the field(s) from the request.", param=unsupported[0])
    return await serve_completion(request, "chat", chat.to_chat_request(), bool(chat.stream), traced=body)
