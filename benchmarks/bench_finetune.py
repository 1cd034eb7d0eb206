"""Fine-tuning proof: the default model learns a fictional company through the platform's API.

In one run: starts `plateforme serve` (throwaway data dir, a static key), uploads the dataset of
benchmarks/finetune_dataset.py (64 training lines about Quorvane Instruments), asks the 32
held-out paraphrased questions to the base model, fine-tunes it with POST /v1/fine_tuning/jobs,
asks them again to the fine-tuned model (served by llama.cpp as a LoRA adapter on the Q4_1
base), then trains a plain transformers + peft loop (benchmarks/finetune_reference_loop.py) on
the same data and settings. Prints accuracy before/after, the job's wall time, and trained
tokens/s of both (steps only, model loading excluded) with their ratio; JSON in benchmarks/results/.

Targets: accuracy from near 0 to >= 70%, job wall time < 10 min on 2 CPU cores, tokens/s >= 1.0x.

    python benchmarks/bench_finetune.py [--epochs 10 --learning-rate 1e-3 --lora-rank 16]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_chat import AUTH as HEADERS  # noqa: E402
from bench_chat import BENCH_KEY, start, wait_healthy  # noqa: E402
from finetune_dataset import heldout_questions, is_correct, write_files  # noqa: E402

from plateforme.engines.supervisor import free_loopback_port
MODEL = "smollm2-135m-instruct"


def accuracy(url: str, model: str) -> tuple[float, list[dict]]:
    rows = []
    for item in heldout_questions():
        reply = httpx.post(f"{url}/v1/chat/completions", headers=HEADERS, timeout=300, json={
            "model": model, "messages": [{"role": "user", "content": item["question"]}],
            "max_tokens": 32, "temperature": 0}).json()["choices"][0]["message"]["content"]
        rows.append({**item, "answer": reply, "correct": is_correct(reply, item["key"])})
    return sum(r["correct"] for r in rows) / len(rows), rows


def fine_tune(url: str, train: Path, hyper: dict) -> tuple[dict, float, float | None]:
    """Run the job to its end; (job, wall seconds, trainer tokens/s)."""
    with open(train, "rb") as f:
        file_id = httpx.post(f"{url}/v1/files", headers=HEADERS, files={"file": (train.name, f)},
                             data={"purpose": "fine-tune"}, timeout=60).json()["id"]
    started = time.monotonic()
    job = httpx.post(f"{url}/v1/fine_tuning/jobs", headers=HEADERS, timeout=60, json={
        "model": MODEL, "training_files": [{"file_id": file_id}], "suffix": "quorvane",
        "hyperparameters": hyper}).json()
    seen, speed = 0, None
    while True:
        job = httpx.get(f"{url}/v1/fine_tuning/jobs/{job['id']}", headers=HEADERS, timeout=60).json()
        for event in job["events"][seen:]:
            data = event.get("data") or {}
            speed = data.get("tokens_per_s") or speed
            print(f"  [{time.monotonic() - started:5.0f}s] {event['name']}: {json.dumps(data)[:160]}", flush=True)
        seen = len(job["events"])
        if job["status"] in ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"):
            return job, time.monotonic() - started, speed
        time.sleep(2)


def reference(train_settings: dict) -> dict:
    out = Path(tempfile.mkdtemp()) / "reference.json"
    args = [sys.executable, str(Path(__file__).parent / "finetune_reference_loop.py"), "--json", str(out)]
    for name, value in train_settings.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    subprocess.run(args, check=True)
    return json.loads(out.read_text())["training"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lora-rank", type=int, default=16)
    args = parser.parse_args()
    train, _ = write_files()
    hyper = {"epochs": args.epochs, "learning_rate": args.learning_rate, "lora_rank": args.lora_rank,
             "warmup_fraction": 0.1, "weight_decay": 0.0, "seq_len": 256}
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    server = start([sys.executable, "-m", "plateforme.cli", "serve", "--port", str(port)],
                   env={"PLATEFORME_LOG_LEVEL": "warning", "PLATEFORME_API_KEY": BENCH_KEY,
                        "PLATEFORME_DATA_DIR": tempfile.mkdtemp(prefix="plateforme-bench-")})
    try:
        wait_healthy(url, server)
        before, _ = accuracy(url, MODEL)
        print(f"accuracy before: {before:.0%}", flush=True)
        job, wall_s, speed = fine_tune(url, train, hyper)
        if job["status"] != "SUCCESS":
            raise SystemExit(f"job ended {job['status']}: {job['events'][-1]}")
        after, rows = accuracy(url, job["fine_tuned_model"])
        for row in rows:
            print(f"  [{'x' if row['correct'] else ' '}] {row['question']} -> {row['answer']!r}")
    finally:
        server.terminate()
        server.wait(30)
    ref = reference({"epochs": args.epochs, "learning_rate": args.learning_rate, "lora_rank": args.lora_rank,
                     "warmup_fraction": 0.1, "weight_decay": 0.0})
    ratio = (speed or 0) / ref["tokens_per_s"]
    checks = [("accuracy after >= 70%", after >= 0.7), ("job wall time < 600 s", wall_s < 600),
              ("tokens/s vs plain transformers+peft >= 1.0x", ratio >= 1.0)]
    print(f"\nheld-out accuracy: {before:.0%} before -> {after:.0%} after ({len(rows)} questions)")
    print(f"job wall time (create -> SUCCESS, model served): {wall_s:.0f} s on {os.cpu_count()} CPU cores")
    print(f"trained tokens/s: plateforme {speed or 0:.0f}, plain transformers+peft {ref['tokens_per_s']:.0f} "
          f"-> {ratio:.2f}x")
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "finetune.json").write_text(json.dumps({
        "hyperparameters": hyper, "accuracy_before": before, "accuracy_after": after, "job_wall_s": wall_s,
        "tokens_per_s": speed, "reference_tokens_per_s": ref["tokens_per_s"], "ratio": ratio, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
