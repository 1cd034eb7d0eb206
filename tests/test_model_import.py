"""`plateforme models import`: end to end through the CLI and a live server, the written GGUF,
the registry file, and clear failures on checkpoints it cannot import."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import httpx
import pytest
import yaml
from server_process import DEFAULT_MODEL
from tiny_checkpoints import make_checkpoint, tokenizer_vocab_size

from plateforme.models.importer import ImportFailed, import_checkpoint
from plateforme.models.registry import IMPORTED_MODELS_FILE, ModelRegistry

TOKENIZER = "tekken-small"


def cli(*args: str, data_dir: Path, wait: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORME_")}
    env["PLATEFORME_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "plateforme.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return finish(proc) if wait else proc


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    make_checkpoint(root / "Tiny_Mistral v0.3", "mistral", "native", TOKENIZER)
    make_checkpoint(root / "mixtral-hf", "mixtral", "hf", TOKENIZER)
    return root


def test_import_list_and_chat(checkpoints, start_server, tmp_path):
    data_dir = tmp_path / "data"
    done = cli("models", "import", str(checkpoints / "Tiny_Mistral v0.3"), "--name", "tiny-mistral",
               data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert "converting to f16" in done.stderr and "tensor" in done.stderr  # tqdm bar on stderr
    model_dir = data_dir / "models" / "tiny-mistral"
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.gguf", "tekken.json"]

    listed = cli("models", "list", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("tiny-mistral"))
    # Context capped to the 64-token sliding window of the tiny Mistral (see importer/writer.py).
    assert row[1:4] == ["llamacpp", "64", "2"] and row[4] == str(model_dir / "model.gguf")
    assert any(line.startswith(DEFAULT_MODEL) for line in listed.stdout.splitlines())

    server = start_server(env={"PLATEFORME_DATA_DIR": str(data_dir)})
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, timeout=120, json={
        "model": "tiny-mistral", "messages": [{"role": "user", "content": "Bonjour !"}],
        "max_tokens": 6, "temperature": 0})
    assert r.status_code == 200, (r.text, server.log())
    body = r.json()
    assert isinstance(body["choices"][0]["message"]["content"], str)
    assert body["usage"]["completion_tokens"] >= 1 and body["usage"]["prompt_tokens"] >= 4


def test_gguf_contents_and_registry(checkpoints, tmp_path):
    spec = import_checkpoint(checkpoints / "mixtral-hf", tmp_path, quant="q8_0", progress=False)
    assert spec.name == "mixtral-hf" and spec.tokenizer is None and spec.context_length == 4096
    reader = gguf.GGUFReader(spec.path)

    def field(key):
        value = reader.fields[key]
        return value.contents() if hasattr(value, "contents") else value.parts[value.data[0]]

    assert field("general.architecture") == "llama"
    assert field("llama.expert_count") == 8 and field("llama.expert_used_count") == 2
    assert field("llama.block_count") == 2 and field("llama.attention.head_count_kv") == 2
    assert field("tokenizer.ggml.model") == "gpt2" and field("tokenizer.ggml.pre") == "tekken"
    assert len(field("tokenizer.ggml.tokens")) == tokenizer_vocab_size(TOKENIZER)
    assert "[INST]" in field("tokenizer.chat_template")  # carried from the HF tokenizer files
    types = {t.name: (t.tensor_type, tuple(t.shape)) for t in reader.tensors}
    Q8, F32 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.F32
    assert types["blk.0.ffn_gate_exps.weight"] == (Q8, (64, 128, 8))  # ggml order: cols, rows, experts
    assert types["blk.1.attn_q.weight"][0] == Q8 and types["token_embd.weight"][0] == Q8
    assert types["blk.0.ffn_gate_inp.weight"][0] == F32 and types["blk.0.attn_norm.weight"][0] == F32
    assert not [p for p in Path(spec.path).parent.iterdir() if p.name.startswith(".")]  # no temp files

    # Importing again under the same name replaces the entry; the registry merges it with defaults.
    import_checkpoint(checkpoints / "mixtral-hf", tmp_path, quant="f16", progress=False)
    entries = yaml.safe_load((tmp_path / IMPORTED_MODELS_FILE).read_text())["models"]
    assert [e["name"] for e in entries] == ["mixtral-hf"] and "f16" in entries[0]["description"]
    registry = ModelRegistry.from_file(None, tmp_path)
    assert registry.get("mixtral-hf").weights_path() == Path(spec.path)
    assert registry.get(DEFAULT_MODEL) is not None

    with pytest.raises(ImportFailed, match="taken by a packaged default model"):
        import_checkpoint(checkpoints / "mixtral-hf", tmp_path, name=DEFAULT_MODEL, progress=False)


def _broken(root: Path, checkpoints: Path) -> dict[str, tuple[Path, str]]:
    """Broken checkpoint directories -> the text their import error must contain."""
    gpt2 = root / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    no_weights_native = root / "no-weights-native"
    no_weights_native.mkdir()
    (no_weights_native / "params.json").write_text(
        (checkpoints / "Tiny_Mistral v0.3" / "params.json").read_text())
    no_weights_hf = root / "no-weights-hf"
    no_weights_hf.mkdir()
    (no_weights_hf / "config.json").write_text((checkpoints / "mixtral-hf" / "config.json").read_text())
    no_tok_native = root / "no-tokenizer-native"
    no_tok_native.mkdir()
    for name in ("params.json", "consolidated.safetensors"):
        os.symlink(checkpoints / "Tiny_Mistral v0.3" / name, no_tok_native / name)
    no_tok_hf = root / "no-tokenizer-hf"
    no_tok_hf.mkdir()
    for name in ("config.json", "model.safetensors"):
        os.symlink(checkpoints / "mixtral-hf" / name, no_tok_hf / name)
    return {
        "gpt2": (gpt2, "unsupported architecture model_type='gpt2'"),
        "no-weights-native": (no_weights_native, "no consolidated.safetensors"),
        "no-weights-hf": (no_weights_hf, "no *.safetensors weights"),
        "no-tokenizer-native": (no_tok_native, "no tokenizer: a Mistral-native checkpoint needs its tekken.json"),
        "no-tokenizer-hf": (no_tok_hf, "no tokenizer: expected tokenizer.json"),
        "not-a-dir": (root / "absent", "is not a directory"),
    }


def test_unimportable_checkpoints_fail_clearly(checkpoints, tmp_path):
    data_dir = tmp_path / "data"
    cases = _broken(tmp_path, checkpoints)
    procs = {name: cli("models", "import", str(src), data_dir=data_dir, wait=False)
             for name, (src, _) in cases.items()}
    for name, proc in procs.items():
        done = finish(proc)
        expected = cases[name][1]
        assert done.returncode != 0 and expected in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
    assert not (data_dir / IMPORTED_MODELS_FILE).exists()
    assert not list((data_dir / "models").rglob("*.gguf")) if (data_dir / "models").exists() else True
