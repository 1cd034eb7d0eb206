"""Turn a ChatRequest into the plain OpenAI-protocol request of a remote server (engine `openai`).

Tools and structured outputs go through the server's own features (`tools`, `tool_choice`,
`response_format`), never the gateway's grammar paths: the server has no llama.cpp grammar to
take. What the server cannot be asked to do is refused with EngineUnsupported (HTTP 400 naming
the engine and the feature), never silently dropped.
"""

from plateforme.chat.engine_payload import sampling_fields, tool_mode
from plateforme.chat.types import ChatRequest
from plateforme.engines.engine import EngineCapabilities
from plateforme.engines.errors import EngineUnsupported
from plateforme.models.spec import ModelSpec


def check_remote_request(req: ChatRequest, spec: ModelSpec, caps: EngineCapabilities) -> None:
    def refuse(feature: str, param: str) -> None:
        raise EngineUnsupported(spec.name, spec.engine, feature, param=param)

    if spec.tokenizer and not caps.token_prompts:
        refuse("Mistral-tokenizer prompts (generation from token ids)", "model")
    if req.min_tokens:
        refuse("min_tokens (generation with end-of-sequence banned)", "min_tokens")
    if req.prefix:
        refuse("prefix (continuing an assistant message)", "messages")
    if req.tools and req.tool_choice != "none" and not caps.server_tools:
        refuse("function calling (tools)", "tools")
    if req.json_schema is not None and not caps.server_structured_outputs:
        refuse("structured outputs (response_format json_schema / json_object)", "response_format")


def _tool_choice(choice: str | dict) -> str | dict:
    if isinstance(choice, dict):
        return {"type": "function", "function": {"name": choice.get("function", {}).get("name")}}
    return "required" if choice == "any" else choice  # Mistral's `any` is OpenAI's `required`


def remote_payload(req: ChatRequest, spec: ModelSpec) -> dict:
    """One server request (choice 0; the caller varies the seed per choice)."""
    payload = {"messages": req.messages, **sampling_fields(req, spec.default_temperature, req.max_tokens)}
    if req.tools:
        tool_mode(req)  # the same checks as elsewhere: schema depth, a named tool_choice that exists
        payload["tools"] = req.tools
        payload["tool_choice"] = _tool_choice(req.tool_choice)
        payload["parallel_tool_calls"] = req.parallel_tool_calls
    if req.prediction:  # the OpenAI protocol's predicted outputs: the server speculates if it can
        payload["prediction"] = {"type": "content", "content": req.prediction}
    if req.reasoning_effort is not None:  # reasoning models only (chat/reasoning.py)
        payload["reasoning_effort"] = req.reasoning_effort
    if req.json_schema is not None:
        payload["response_format"] = (
            {"type": "json_schema", "json_schema": {"name": "answer", "schema": req.json_schema}}
            if req.json_schema else {"type": "json_object"})
    return payload
