"""Speculative decoding from n-grams (`speculative: ngram`): llama.cpp drafts from the prompt and the
answer so far, the model checks the drafts; the answer must be the one it gives without."""

import subprocess
import sys

import httpx
import pytest
from server_process import DEFAULT_MODEL, free_port, wait_http_healthy

from plateforme.engines.supervisor import WorkerSupervisor
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

CODE = """def total_price(items):
    total = 0
    for item in items:
        total += item.price * item.quantity
    return total


def average_price(items):
    total = total_price(items)
    return total / len(items)
"""
EDIT = {"messages": [{"role": "system", "content": "You are a code editor. Answer with the whole edited code only."},
                     {"role": "user", "content": f"Rename the variable `total` to `acc` in this code:\n\n{CODE}"}],
        "max_tokens": 64, "temperature": 0, "seed": 7, "top_k": 1}


def test_speculation_is_a_llamacpp_option_passed_to_its_worker():
    weights = str(ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path())
    spec = ModelSpec(name="m", path=weights, speculative="ngram")
    assert WorkerSupervisor(spec, 10).command(1234)[-2:] == ["--speculative", "ngram"]
    assert "--speculative" not in WorkerSupervisor(ModelSpec(name="m", path=weights), 10).command(1234)
    with pytest.raises(ValueError, match="speculative apply to engine llamacpp"):
        ModelSpec(name="r", engine="openai", base_url="http://h/v1", speculative="ngram")


def _answer(tmp_path, *extra: str) -> dict:
    weights = str(ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path())
    port = free_port()
    log = tmp_path / f"worker-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "plateforme.engines.llamacpp_worker", "--model", weights,
                                 "--port", str(port), "--context-length", "1024", "--parallel", "1", *extra],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http_healthy(f"http://127.0.0.1:{port}", proc, log=log)
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=EDIT, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()
    finally:
        proc.terminate()
        proc.wait(30)


def test_ngram_speculation_drafts_and_keeps_the_answer(tmp_path):
    plain = _answer(tmp_path)
    speculated = _answer(tmp_path, "--speculative", "ngram")
    assert speculated["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert speculated["timings"].get("draft_n", 0) > 0, speculated["timings"]  # it did speculate
    assert not plain["timings"].get("draft_n")
