"""Turn a ChatRequest into the OpenAI-protocol request a llama.cpp (or vLLM) worker executes.

Tools go through the gateway's grammar-constrained format (chat/generic_tools.py) for every
GGUF-template model: llama.cpp's own template-specific tool parsing (xllamacpp 2026.10) did not
constrain `tool_choice: required` on a Hermes-style template in our tests, so it is not relied on.
"""

from plateforme.chat import generic_tools
from plateforme.chat.json_bounds import compact_schema, json_object_grammar
from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.json_schema_support import check_depth
from plateforme.chat.reasoning import NO_THINKING_TEMPLATE_KWARGS, thinking_switched_off
from plateforme.chat.types import ChatRequest
from plateforme.generation.sampling import temperature_of


def tool_mode(req: ChatRequest) -> tuple[list[dict], bool]:
    """(tools offered to the model, whether it must call one) after `tool_choice`."""
    tools = req.tools or []
    for i, tool in enumerate(tools):
        check_depth(tool["function"].get("parameters") or {}, f"tools.{i}.function.parameters")
    choice = req.tool_choice
    if not tools or choice == "none":
        return [], False
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        chosen = [t for t in tools if t["function"]["name"] == name]
        if not chosen:
            raise InvalidChatRequest(f"tool_choice names function {name!r}, which is not in tools",
                                     param="tool_choice")
        return chosen, True
    return tools, choice in ("any", "required")


def sampling_fields(req: ChatRequest, default_temperature: float, max_tokens: int | None) -> dict:
    """The OpenAI-protocol sampling fields of `req` (temperature, top_p, limits, penalties,
    seed, log probabilities), as every engine takes them."""
    payload: dict = {
        "temperature": temperature_of(req.temperature, default_temperature),
        "top_p": req.top_p if req.top_p is not None else 1.0,
    }
    optional = {
        "max_tokens": max_tokens,
        "stop": req.stop or None,
        "presence_penalty": req.presence_penalty,
        "frequency_penalty": req.frequency_penalty,
        "seed": req.seed,
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    if req.logprobs:
        payload["logprobs"] = True
        payload["top_logprobs"] = req.top_logprobs or 0
    return payload


def engine_payload(req: ChatRequest, default_temperature: float, max_tokens: int | None) -> dict:
    """One engine request (choice 0; the caller varies the seed per choice).

    Sampling follows Mistral's semantics: only temperature and top_p, so llama.cpp's own
    extra samplers (top_k, min_p) are switched off.
    """
    payload = {**sampling_fields(req, default_temperature, max_tokens), "top_k": 0, "min_p": 0.0}
    tools, must_call = tool_mode(req)
    messages = req.messages
    if tools:
        messages = generic_tools.with_tool_prompt(messages, tools, must_call)
        payload["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": compact_schema(
                generic_tools.answer_schema(tools, must_call, req.parallel_tool_calls))}}
    else:
        # No tools offered now (tool_choice none): earlier tool traffic is rendered as text.
        messages = generic_tools.as_plain_messages(messages)
    if req.json_schema is not None:
        if tools:
            raise InvalidChatRequest("response_format json cannot be combined with tools in one request",
                                     param="response_format")
        if req.json_schema:
            payload["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": compact_schema(req.json_schema)}}
        else:  # JSON mode: any JSON object
            payload["grammar"] = json_object_grammar()
    if thinking_switched_off(req):  # templates that can switch thinking off read this
        payload["chat_template_kwargs"] = dict(NO_THINKING_TEMPLATE_KWARGS)
    # `prediction` adds nothing here: this llama.cpp build speculates (when its worker is started
    # with n-gram speculation) from the slot's own tokens only, and an edit request's original
    # text is already in the prompt; it takes no per-request lookup text (benchmarks/bench_prediction.py).
    payload["messages"] = messages
    return payload


def uses_generic_tools(req: ChatRequest) -> bool:
    return bool(tool_mode(req)[0])
