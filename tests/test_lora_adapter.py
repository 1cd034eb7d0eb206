"""LoRA adapters written by `write_lora_gguf` compute in llama.cpp what peft computes.

A tiny random Llama checkpoint (Hugging Face layout) is imported to an f32 GGUF; two random
LoRA adapters (all attention and MLP projections, non-zero A and B) are made with peft and
exported; one llama.cpp worker loads both, and each request switches one on with the `lora`
field. Next-token log-probabilities match peft within 1e-3 (the base alone matches to 1e-4,
test_import_parity.py), and with every scale at 0 the worker computes the base model.
"""

import subprocess
import sys

import httpx
import peft
import pytest
import torch
from server_process import free_port
from server_process import wait_http_healthy
from test_import_parity import EXACT_WORKER, TOKENIZER, TOP, _prompts
from tiny_checkpoints import make_checkpoint, reference_model, tokenizer_vocab_size

from plateforme.models.importer import import_checkpoint
from plateforme.training.adapter_gguf import AdapterExportError, write_lora_gguf

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA = 4, 8
WORKER_WITH_ADAPTERS = EXACT_WORKER.replace(
    "server = xllamacpp.Server(params)",
    "params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(p, 0.0) for p in sys.argv[3:]]\n"
    "params.lora_init_without_apply = True\nserver = xllamacpp.Server(params)")


ARCH_SEED = 2


def random_lora(seed: int) -> peft.PeftModel:
    model = reference_model("llama", tokenizer_vocab_size(TOKENIZER), seed=ARCH_SEED)
    tuned = peft.get_peft_model(model, peft.LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.15)
    return tuned.eval()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    make_checkpoint(root / "ckpt", "llama", "hf", TOKENIZER, seed=ARCH_SEED)
    spec = import_checkpoint(root / "ckpt", root / "data", name="tiny-llama", quant="f32", progress=False)
    tuned = [random_lora(seed) for seed in (11, 12)]
    adapters = []
    for i, model in enumerate(tuned):
        adapters.append(root / f"adapter-{i}.gguf")
        write_lora_gguf(peft.get_peft_model_state_dict(model), base_gguf=spec.path, alpha=ALPHA, out=adapters[-1])
    port = free_port()
    log = open(root / "worker.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER_WITH_ADAPTERS, spec.path, str(port), *map(str, adapters)],
        stdout=log, stderr=log)
    proc.log = root / "worker.log"
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_healthy(url, proc, 90, proc.log)
        yield url, tuned, spec.path
    finally:
        proc.terminate()
        proc.wait(10)


def _top_with(url: str, prompt: list[int], scales: list[float]) -> dict[int, float]:
    """Top next-token log-probabilities with adapter i at scales[i] (see _llamacpp_top)."""
    body = {"prompt": prompt, "n_predict": 1, "n_probs": TOP, "temperature": 0, "post_sampling_probs": False,
            "cache_prompt": False, "logit_bias": [[1000 + ord("a"), 1000]],
            "lora": [{"id": i, "scale": s} for i, s in enumerate(scales)]}
    r = httpx.post(f"{url}/completion", json=body, timeout=60)
    r.raise_for_status()
    return {t["id"]: t["logprob"] for t in r.json()["completion_probabilities"][0]["top_logprobs"]}


@pytest.mark.parametrize("chosen", [0, 1])
def test_each_request_gets_its_adapter(served, chosen):
    url, tuned, _ = served
    worst = 0.0
    for prompt in _prompts():
        with torch.no_grad():
            ref = torch.log_softmax(tuned[chosen](torch.tensor([prompt])).logits[0, -1].double(), -1)
        got = _top_with(url, prompt, [1.0 if i == chosen else 0.0 for i in range(2)])
        assert max(got, key=got.get) == int(ref.argmax())
        worst = max(worst, max(abs(lp - float(ref[t])) for t, lp in got.items()))
    print(f"adapter {chosen}: max |logprob diff| {worst:.2e}")
    assert worst < 1e-3


def test_scale_zero_is_the_base_and_adapters_change_the_answer(served):
    url, tuned, _ = served
    prompt = _prompts()[2]
    with torch.no_grad(), tuned[0].disable_adapter():
        base = torch.log_softmax(tuned[0](torch.tensor([prompt])).logits[0, -1].double(), -1)
    off = _top_with(url, prompt, [0.0, 0.0])
    assert max(abs(lp - float(base[t])) for t, lp in off.items()) < 1e-4
    on = [_top_with(url, prompt, [1.0, 0.0]), _top_with(url, prompt, [0.0, 1.0])]
    assert on[0] != off and on[1] != off and on[0] != on[1]


def test_export_refuses_what_it_cannot_map(served, tmp_path):
    _, tuned, base = served
    state = peft.get_peft_model_state_dict(tuned[0])
    with pytest.raises(AdapterExportError, match="only LoRA"):
        write_lora_gguf({"base_model.model.lm_head.weight": torch.zeros(2, 2)}, base_gguf=base, alpha=1,
                        out=tmp_path / "x.gguf")
    renamed = {k.replace("layers.0.", "layers.99."): v for k, v in state.items()}
    with pytest.raises(AdapterExportError, match="matches no weight"):
        write_lora_gguf(renamed, base_gguf=base, alpha=1, out=tmp_path / "y.gguf")
    assert not (tmp_path / "y.gguf").exists() and not (tmp_path / "y.gguf.part").exists()
