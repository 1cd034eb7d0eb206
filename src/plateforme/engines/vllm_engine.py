"""Engine `vllm`: a vLLM server that this gateway starts, supervises and restarts itself.

The process is vLLM's OpenAI server (engines/vllm_supervisor.py, engines/vllm_command.py), on
a loopback port with an API key only the gateway knows. Requests speak the OpenAI protocol to it,
as to a remote server (chat/remote_choice.py): tools and structured outputs are vLLM's own
(`tools` need `vllm.tool_call_parser`), and prompts are counted exactly with vLLM's `/tokenize`
(chat template applied), so a prompt beyond the context is refused before it is sent.
Not available on this engine: generation from token ids (FIM, Mistral-tokenizer prompts through
plateforme), `min_tokens`, `prefix`, and fine-tunes served as LoRA adapters by plateforme.
"""

from collections.abc import AsyncIterator

from plateforme.engines.engine import capabilities_of
from plateforme.engines.errors import EngineUnsupported
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.supervised_engine import SupervisedEngine
from plateforme.engines.vllm_command import served_name
from plateforme.engines.vllm_supervisor import VLLMSupervisor
from plateforme.models.spec import ModelSpec


class VLLMEngineClient(OpenAIEngineClient):
    """The OpenAI protocol to one vLLM server, plus its `/tokenize`."""

    def __init__(self, spec: ModelSpec, base_url: str, api_key: str, max_connections: int, timeout_s: float):
        super().__init__(base_url, max_connections, timeout_s, label=f"the vLLM server of model {spec.name!r}",
                         headers={"Authorization": f"Bearer {api_key}"})
        self._spec = spec
        self._model = served_name(spec)

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        return await super().chat({**payload, "model": self._model}, timeout)

    def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        return super().stream_chat({**payload, "model": self._model})

    async def count_chat_prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of `messages` through the model's chat template, generation prompt included."""
        result = await self._post("/tokenize", {"model": self._model, "messages": messages,
                                                "add_generation_prompt": True})
        return int(result["count"])

    async def tokenize(self, text: str) -> list[int]:
        """Token ids of plain `text` (no BOS)."""
        result = await self._post("/tokenize", {"model": self._model, "prompt": text, "add_special_tokens": False})
        return result["tokens"]

    def stream_completion(self, payload: dict) -> AsyncIterator[dict]:
        raise EngineUnsupported(self._spec.name, self._spec.engine, "generation from token ids")


class VLLMEngine(SupervisedEngine):
    kind = "vllm"
    server_label = "vLLM server"

    def __init__(self, spec: ModelSpec, engine_timeout: float):
        super().__init__(spec, VLLMSupervisor(spec), spec.timeout_s or engine_timeout)
        self.capabilities = capabilities_of(spec)

    def _new_client(self, base_url: str) -> "VLLMEngineClient":
        return VLLMEngineClient(self.spec, base_url, self.supervisor.api_key, self.admission.capacity + 4,
                                self._engine_timeout)
