"""Predicted outputs (`prediction`) on an edit-style request: time with and without, same answer.

The request asks to rewrite a piece of code with a variable renamed; the prediction is the
original code (what Mistral's SDK examples send). Temperature 0 and one seed throughout.

Two measurements in one run:
1. through plateforme (`plateforme serve` with the default model): the same request with and
   without `prediction`, alternated round by round; prints the time ratio and checks that the
   answers are identical (the prediction is a latency hint and must never change the answer);
2. the engine's own n-gram speculation: the same request on a bare llama.cpp server (xllamacpp)
   started plain and started with `ngram-simple` speculation, which drafts from the slot's own
   tokens (the prompt holds the original code, so an edit's answer is mostly found there). This
   llama.cpp build takes no per-request lookup text, so the prediction itself cannot be handed
   to it: (2) is the gain a worker started with n-gram speculation gives such requests, with or
   without the field. Prints the ratio, the draft acceptance, and whether the answers match.

    python benchmarks/bench_prediction.py [--rounds 3] [--max-tokens 200] [--skip-engine]
"""

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry

RESULTS = Path(__file__).parent / "results"
KEY = secrets.token_urlsafe(24)
CODE = '''def total_price(items):
    total = 0
    for item in items:
        total += item.price * item.quantity
    return total


def average_price(items):
    total = total_price(items)
    return total / len(items)
'''
MESSAGES = [{"role": "system", "content": "You are a code editor. Answer with the whole edited code only."},
            {"role": "user", "content": f"Rename the variable `total` to `acc` in this code:\n\n{CODE}"}]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: process exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit(f"{url}: not healthy after {timeout}s")


def timed(client: httpx.Client, body: dict) -> tuple[float, str, dict]:
    started = time.perf_counter()
    r = client.post("/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    if r.status_code != 200:
        sys.exit(f"HTTP {r.status_code}: {r.text[:300]}")
    answer = r.json()
    return elapsed, answer["choices"][0]["message"]["content"], answer


def compare(client: httpx.Client, sides: dict[str, dict], rounds: int) -> dict:
    """Each side's request once to warm up (the prompt cache then serves both alike), then
    `rounds` alternated rounds; the answers of every measured run must be one text."""
    for body in sides.values():
        timed(client, body)
    times: dict[str, list[float]] = {name: [] for name in sides}
    answers: set[str] = set()
    drafts = {}
    for round_ in range(rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            elapsed, text, answer = timed(client, sides[name])
            times[name].append(elapsed)
            answers.add(text)
            timings = answer.get("timings") or {}
            if timings.get("draft_n"):
                drafts[name] = {"draft_n": timings["draft_n"], "draft_n_accepted": timings.get("draft_n_accepted")}
    return {"median_s": {n: statistics.median(t) for n, t in times.items()}, "runs_s": times,
            "identical": len(answers) == 1, "answer": sorted(answers)[0], "drafts": drafts}


def through_plateforme(spec, rounds: int, max_tokens: int) -> dict:
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    gateway = subprocess.Popen([sys.executable, "-m", "plateforme.cli", "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PLATEFORME_LOG_LEVEL": "warning", "PLATEFORME_API_KEY": KEY,
                                    "PLATEFORME_DATA_DIR": tempfile.mkdtemp(prefix="plateforme-bench-")})
    body = {"model": spec.name, "messages": MESSAGES, "temperature": 0, "random_seed": 7, "max_tokens": max_tokens}
    try:
        wait_healthy(url, gateway)
        with httpx.Client(base_url=url, timeout=900, headers={"Authorization": f"Bearer {KEY}"}) as client:
            return compare(client, {"without": body,
                                    "with": {**body, "prediction": {"type": "content", "content": CODE}}}, rounds)
    finally:
        gateway.terminate()
        gateway.wait(30)


def serve_engine(weights: str, port: int, ngram: bool) -> None:
    """(subprocess) A bare llama.cpp server, with or without n-gram speculation."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = weights
    params.hostnames, params.port = ["127.0.0.1"], port
    params.n_parallel, params.n_ctx, params.use_jinja, params.n_predict = 1, 4096, True, -1
    if ngram:
        params.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    server = xllamacpp.Server(params)
    print("ready", flush=True)
    while True:
        time.sleep(3600)
    del server


def engine_speculation(weights: str, rounds: int, max_tokens: int) -> dict:
    body = {"messages": MESSAGES, "temperature": 0, "seed": 7, "max_tokens": max_tokens, "top_k": 0, "min_p": 0.0}
    out = {}
    for name, ngram in (("plain", False), ("ngram-simple", True)):
        port = free_loopback_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve-engine", weights, str(port)]
                                + (["--ngram"] if ngram else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client:
                out[name] = compare(client, {name: body}, rounds)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"median_s": {n: r["median_s"][n] for n, r in out.items()},
            "identical": out["plain"]["answer"] == out["ngram-simple"]["answer"]
            and all(r["identical"] for r in out.values()),
            "drafts": out["ngram-simple"]["drafts"], "answer": out["plain"]["answer"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--skip-engine", action="store_true", help="only measure through plateforme")
    parser.add_argument("--serve-engine", nargs=2, metavar=("WEIGHTS", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--ngram", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_engine:
        serve_engine(args.serve_engine[0], int(args.serve_engine[1]), args.ngram)
        return

    spec = ModelRegistry.from_file(None).specs[0]
    print(f"model {spec.name}, {os.cpu_count()} CPUs, {args.rounds} rounds, max_tokens {args.max_tokens}", flush=True)
    report = {"model": spec.name, "rounds": args.rounds, "max_tokens": args.max_tokens, "cpus": os.cpu_count(),
              "machine": platform.platform()}
    ok = True
    gateway = report["plateforme"] = through_plateforme(spec, args.rounds, args.max_tokens)
    ratio = gateway["median_s"]["with"] / gateway["median_s"]["without"]
    ok &= gateway["identical"]
    print(f"through plateforme: without prediction {gateway['median_s']['without']:.2f} s, with "
          f"{gateway['median_s']['with']:.2f} s: time ratio {ratio:.2f}; identical answers: {gateway['identical']}")
    if not args.skip_engine:
        engine = report["engine"] = engine_speculation(str(spec.weights_path()), args.rounds, args.max_tokens)
        ratio = engine["median_s"]["ngram-simple"] / engine["median_s"]["plain"]
        ok &= engine["identical"]
        print(f"engine alone: plain {engine['median_s']['plain']:.2f} s, ngram-simple speculation "
              f"{engine['median_s']['ngram-simple']:.2f} s: time ratio {ratio:.2f}; drafts {engine['drafts']}; "
              f"identical answers: {engine['identical']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_prediction-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"saved {out}")
    if not ok:
        sys.exit("the answers differ: a latency hint changed the output")


if __name__ == "__main__":
    main()
