"""Engine `vllm` without vLLM: the server's command line from the models config, the config's
checks, the engine's capabilities, and the error when vLLM is missing from the configured Python."""

import asyncio
import sys

import pytest
from pydantic import ValidationError

from plateforme.engines.engine import capabilities_of
from plateforme.engines.vllm_command import LAUNCHER, is_mistral_format, launch_command, serve_arguments, vllm_import_error
from plateforme.models.spec import ModelFileMissing, ModelSpec


def vllm_spec(model_dir, **vllm) -> ModelSpec:
    return ModelSpec(name="big", engine="vllm", context_length=4096, parallel=8, vllm={"model": str(model_dir), **vllm})


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.fixture
def hf_dir(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    return tmp_path / "hf"


@pytest.fixture
def mistral_dir(tmp_path):
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "params.json").write_text("{}")
    return tmp_path / "native"


def test_arguments_carry_the_models_config(hf_dir):
    spec = vllm_spec(hf_dir, tensor_parallel_size=4, pipeline_parallel_size=2, gpu_memory_utilization=0.75,
                     extra_args=["--enforce-eager", "--dtype", "float16"])
    args = serve_arguments(spec, 18000)
    assert flag(args, "--model") == str(hf_dir)
    assert flag(args, "--served-model-name") == "big"
    assert (flag(args, "--host"), flag(args, "--port")) == ("127.0.0.1", "18000")
    assert flag(args, "--max-model-len") == "4096"
    assert flag(args, "--max-num-seqs") == "8"
    assert flag(args, "--tensor-parallel-size") == "4"
    assert flag(args, "--pipeline-parallel-size") == "2"
    assert flag(args, "--gpu-memory-utilization") == "0.75"
    assert args[-3:] == ["--enforce-eager", "--dtype", "float16"]
    for absent in ("--tokenizer-mode", "--enable-lora", "--enable-auto-tool-choice", "--tokenizer", "--api-key"):
        assert absent not in args


def test_upstream_model_is_the_served_name_and_a_tokenizer_dir_is_passed(hf_dir, tmp_path):
    spec = ModelSpec(name="big", engine="vllm", upstream_model="org/Big-1", vllm={"model": str(hf_dir),
                                                                                 "tokenizer": str(tmp_path)})
    args = serve_arguments(spec, 1)
    assert flag(args, "--served-model-name") == "org/Big-1"
    assert flag(args, "--tokenizer") == str(tmp_path)


def test_mistral_format_is_detected_from_params_json_or_stated(hf_dir, mistral_dir):
    mistral_flags = ["--tokenizer-mode", "mistral", "--config-format", "mistral", "--load-format", "mistral"]
    native = serve_arguments(vllm_spec(mistral_dir), 1)
    assert is_mistral_format(vllm_spec(mistral_dir).vllm)
    assert " ".join(mistral_flags) in " ".join(native)
    assert "--tokenizer-mode" not in serve_arguments(vllm_spec(hf_dir), 1)
    assert " ".join(mistral_flags) in " ".join(serve_arguments(vllm_spec(hf_dir, mistral_format=True), 1))
    assert "--tokenizer-mode" not in serve_arguments(vllm_spec(mistral_dir, mistral_format=False), 1)


def test_lora_and_tool_parser_flags(hf_dir):
    args = serve_arguments(vllm_spec(hf_dir, enable_lora=True, max_loras=2, max_lora_rank=64,
                                     tool_call_parser="mistral"), 1)
    assert "--enable-lora" in args
    assert (flag(args, "--max-loras"), flag(args, "--max-lora-rank")) == ("2", "64")
    assert "--enable-auto-tool-choice" in args
    assert flag(args, "--tool-call-parser") == "mistral"


def test_launch_command_runs_the_launcher_in_the_configured_python(hf_dir, tmp_path):
    command = launch_command(vllm_spec(hf_dir, python="/opt/vllm/bin/python"), 5, tmp_path / "key")
    assert command[:4] == ["/opt/vllm/bin/python", "-c", LAUNCHER, str(tmp_path / "key")]
    assert launch_command(vllm_spec(hf_dir), 5, tmp_path / "key")[0] == sys.executable
    compile(LAUNCHER, "<launcher>", "exec")  # the launcher is valid Python


def test_a_missing_checkpoint_dir_is_named(tmp_path):
    with pytest.raises(ModelFileMissing, match="vllm.model .*nowhere is not a directory"):
        serve_arguments(vllm_spec(tmp_path / "nowhere"), 1)


def test_config_checks():
    with pytest.raises(ValidationError, match="engine vllm needs `vllm`"):
        ModelSpec(name="m", engine="vllm")
    with pytest.raises(ValidationError, match="base_url apply to engine openai only"):
        ModelSpec(name="m", engine="vllm", base_url="http://a/v1", vllm={"model": "/m"})
    with pytest.raises(ValidationError, match="path apply to engine llamacpp"):
        ModelSpec(name="m", engine="vllm", path="/m.gguf", vllm={"model": "/m"})
    with pytest.raises(ValidationError, match="`vllm` applies to engine vllm only"):
        ModelSpec(name="m", path="/m.gguf", vllm={"model": "/m"})
    with pytest.raises(ValidationError, match="gpu_memory_utilization"):
        ModelSpec(name="m", engine="vllm", vllm={"model": "/m", "gpu_memory_utilization": 1.5})


def test_capabilities_follow_the_tool_parser():
    plain = capabilities_of(ModelSpec(name="m", engine="vllm", vllm={"model": "/m"}))
    assert plain.server_structured_outputs and plain.exact_prompt_count
    assert not (plain.server_tools or plain.grammar or plain.token_prompts or plain.lora)
    assert capabilities_of(ModelSpec(name="m", engine="vllm", vllm={"model": "/m", "tool_call_parser": "hermes"})
                           ).server_tools


def test_missing_vllm_is_a_clear_error(hf_dir, tmp_path):
    # This test environment has no vLLM: its own Python is the one that lacks it.
    error = asyncio.run(vllm_import_error(vllm_spec(hf_dir, python=sys.executable)))
    if error is None:
        pytest.skip(f"vLLM is importable in {sys.executable}: nothing missing to report")
    assert error.startswith(f"engine vllm of model 'big': `{sys.executable} -c 'import vllm'` failed with ")
    assert "No module named 'vllm'" in error
    assert error.endswith("install vllm in that environment or set vllm.python to a Python that has it")
    missing = asyncio.run(vllm_import_error(vllm_spec(hf_dir, python=str(tmp_path / "no-python"))))
    assert missing.startswith(f"engine vllm of model 'big': cannot run {tmp_path / 'no-python'}")
