"""POST /v1/agents/completions: an agent answering as a chat completion, streamed or not.

The agent's current version gives the model, its instructions (a system message before the
request's messages), its function tools, completion_args and guardrails; the request's own
fields override the completion arguments and add tools and guardrails. Then it is a chat
completion like any other (api/completions.serve_completion: limits, usage, traces, guardrails).
An agent with tools the platform runs (document_library, connector) answers through one response
of the conversation loop instead (api/agent_loop_completion.py), nothing stored.
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from plateforme.agents.definition import PLATFORM, check_guardrails, check_tools, has_platform_tools
from plateforme.agents.errors import BadInput
from plateforme.agents.registry import AgentRecord
from plateforme.api.agent_loop_completion import serve_loop_completion
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


def _no_platform_tools(tools: list[dict]) -> None:
    for i, tool in enumerate(tools):
        if tool.get("type") in PLATFORM:
            raise BadInput(f"tools.{i}.type: a {tool['type']} tool runs in the agent's own definition; add it to "
                           "the agent (PATCH /v1/agents/{id}), or converse through POST /v1/conversations",
                           f"tools.{i}.type")


def _merged_args(agent: AgentRecord, body: AgentsCompletionRequest) -> dict:
    """The agent's completion_args with the request's own values laid over them."""
    fields = {key: value for key, value in (agent.body.get("completion_args") or {}).items()
              if key in _ARGS and value is not None}
    fields.update({key: getattr(body, key) for key in _PASSED
                   if key in body.model_fields_set and getattr(body, key) is not None})
    return {key: value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value
            for key, value in fields.items()}


def chat_request_of(agent: AgentRecord, body: AgentsCompletionRequest) -> ChatCompletionRequest:
    """The chat completion request that `body` asks of `agent`."""
    definition = agent.body
    agent_tools = definition.get("tools") or []
    request_tools = tools_as_dicts(body.tools) or []
    check_tools(request_tools)
    _no_platform_tools(request_tools)
    check_guardrails(body.guardrails)
    fields = _merged_args(agent, body)
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
    if has_platform_tools(agent.body.get("tools")):
        return await _through_the_loop(request, agent, body)
    chat = chat_request_of(agent, body)
    unsupported = chat.unsupported_fields()
    if unsupported:
        raise APIError(400, f"{', '.join(unsupported)}: not supported by this server yet; "
                       "remove the field(s) from the request.", param=unsupported[0])
    return await serve_completion(request, "chat", chat.to_chat_request(), bool(chat.stream), traced=body)


# What a response of the conversation loop takes from the request (beside messages and guardrails).
_LOOP_ARGS = ("max_tokens", "stop", "random_seed", "response_format", "tool_choice", "presence_penalty",
              "frequency_penalty", "prediction", "reasoning_effort", "temperature", "top_p")


async def _through_the_loop(request: Request, agent: AgentRecord, body: AgentsCompletionRequest):
    for name in ("tools", "n", "prompt_mode", "service_tier"):
        value = getattr(body, name)
        if value is not None and not (name == "n" and value == 1):
            raise BadInput(f"{name}: not taken by an agent whose tools the platform runs (agent {agent.id!r}); "
                           "remove it from the request, or put tools in the agent's definition", name)
    check_guardrails(body.guardrails)
    args = {k: v for k, v in _merged_args(agent, body).items() if k in _LOOP_ARGS}
    if isinstance(args.get("tool_choice"), dict):
        raise BadInput("tool_choice: a named function is not taken by an agent whose tools the platform runs; "
                       "use auto, none, any or required", "tool_choice")
    messages = [m.model_dump(exclude_unset=True, by_alias=True) for m in body.messages]
    return await serve_loop_completion(request, agent, messages, args, bool(body.stream), body.guardrails)
