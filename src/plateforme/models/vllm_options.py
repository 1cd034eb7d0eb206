"""Engine `vllm`: the options of a vLLM server this gateway starts and supervises (`vllm serve`)."""

from pydantic import BaseModel, ConfigDict, Field


class VLLMOptions(BaseModel):
    """`vllm serve` arguments, as the models config declares them (engines/vllm_engine.py)."""
    model_config = ConfigDict(extra="forbid")

    # A Hugging Face checkpoint directory (config.json + safetensors), or a Mistral-format one
    # (params.json + consolidated.safetensors + tekken.json): vLLM's first argument.
    model: str
    # A tokenizer directory when `model` has none (the trainer's dequantised base models keep
    # theirs apart); default: vLLM reads the tokenizer from `model`.
    tokenizer: str | None = None
    # Mistral-format checkpoints: vLLM's Mistral loaders (`--tokenizer-mode mistral
    # --config-format mistral --load-format mistral`); detected from params.json when unset.
    mistral_format: bool | None = None
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    # Share of each GPU's memory vLLM may take (weights + KV cache).
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    # LoRA adapters served per request (fine-tunes of this base).
    enable_lora: bool = False
    max_loras: int = Field(default=4, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)
    # vLLM's tool-call parser for this model family (`mistral`, `hermes`, `llama3_json`...): with it
    # vLLM runs with `--enable-auto-tool-choice` and the model serves `tools`; without it, requests
    # with tools are refused (400 naming the engine).
    tool_call_parser: str | None = None
    # Seconds vLLM may take to load and warm up (compiling its graphs takes minutes on CPU).
    start_timeout_s: float = Field(default=900, gt=0)
    # The Python that runs vLLM (it may live in its own virtual environment); default: this one.
    python: str | None = None
    # Further `vllm serve` arguments, passed as they are (["--enforce-eager", "--dtype", "float16"]).
    extra_args: list[str] = []
