"""Chat throughput and time to first token: plateforme's API against the engine alone.

Both sides run the same GGUF with the same llama.cpp settings (slots, context) on this
machine: (a) `plateforme serve` (gateway + supervised worker), (b) the bare xllamacpp
server, started through the same worker module. For 1, 4 and 16 concurrent streams we
measure aggregate output tokens/s and median time to first token, alternating the two
sides round by round so machine noise hits both alike. Prints a table with ratios and
writes JSON to benchmarks/results/.

    python benchmarks/bench_chat.py [--concurrency 1 4 16] [--rounds 3] [--max-tokens 128]
"""

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry

RESULTS = Path(__file__).parent / "results"
PROMPTS = [
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a bicycle works.",
    "Describe a walk through a busy city market.",
    "Write a letter to a friend about your summer holidays.",
]


BENCH_KEY = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {BENCH_KEY}"}  # the engine alone ignores it


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: process exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", headers=AUTH, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url}: not healthy after {timeout}s")


async def one_stream(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> tuple[float, int]:
    payload = {
        "model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
        "messages": [{"role": "user", "content": prompt}],
        # The engine alone needs this to report usage; plateforme always sends it on the last chunk.
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft, tokens = None, 0
    async with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    if ttft is None or tokens == 0:
        raise RuntimeError("stream produced no tokens")
    return ttft, tokens


async def measure(url: str, model: str, concurrency: int, max_tokens: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits, headers=AUTH) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(
            one_stream(client, model, PROMPTS[i % len(PROMPTS)], max_tokens) for i in range(concurrency)
        ))
        wall = time.perf_counter() - started
    tokens = sum(t for _, t in results)
    return {"tokens": tokens, "wall_s": wall, "tok_s": tokens / wall,
            "ttft_p50_ms": statistics.median(t for t, _ in results) * 1000}


def summarise(runs: list[dict]) -> dict:
    return {"tok_s": statistics.median(r["tok_s"] for r in runs),
            "ttft_p50_ms": statistics.median(r["ttft_p50_ms"] for r in runs),
            "tokens": runs[0]["tokens"], "runs": runs}


def compare(sides: dict[str, tuple[str, str]], reference: str, levels: list[int], rounds: int,
            max_tokens: int) -> list[dict]:
    """Measure each side ({name: (url, model)}) at each concurrency level, alternating the sides
    round by round so machine noise hits both alike; `reference` is the side plateforme is
    compared with (ratio of tokens/s, added TTFT p50)."""
    for url, model in sides.values():  # warm-up: first requests pay one-off costs
        asyncio.run(measure(url, model, 2, 16))
    rows = []
    for concurrency in levels:
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for round_ in range(rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                runs[side].append(asyncio.run(measure(*sides[side], concurrency, max_tokens)))
        row = {"concurrency": concurrency, **{side: summarise(r) for side, r in runs.items()}}
        row["tok_s_ratio"] = row["plateforme"]["tok_s"] / row[reference]["tok_s"]
        row["ttft_added_ms"] = row["plateforme"]["ttft_p50_ms"] - row[reference]["ttft_p50_ms"]
        rows.append(row)
        print(f"  {concurrency:>2} streams: {reference} {row[reference]['tok_s']:.1f} tok/s, "
              f"plateforme {row['plateforme']['tok_s']:.1f} tok/s", flush=True)
    return rows


def print_table(rows: list[dict], reference: str) -> None:
    ref = f"{reference} tok/s"
    ref_ttft = f"{reference} TTFT p50"
    print(f"\n{'streams':>7} | {ref:>12} {'plateforme tok/s':>16} {'ratio':>6} | "
          f"{ref_ttft:>15} {'plateforme TTFT p50':>19} {'added':>8}")
    for row in rows:
        e, p = row[reference], row["plateforme"]
        print(f"{row['concurrency']:>7} | {e['tok_s']:>12.1f} {p['tok_s']:>16.1f} {row['tok_s_ratio']:>5.2f}x | "
              f"{e['ttft_p50_ms']:>12.1f} ms {p['ttft_p50_ms']:>16.1f} ms {row['ttft_added_ms']:>+5.1f} ms")


def bench_args(doc: str) -> argparse.Namespace:
    """The options of the side-by-side throughput benchmarks."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    return parser.parse_args()


def engine_command(spec, port: int, *extra: str) -> list[str]:
    """The bare llama.cpp server of the default model, through the same worker module plateforme runs."""
    return [sys.executable, "-m", "plateforme.engines.llamacpp_worker", "--model", str(spec.weights_path()),
            "--port", str(port), "--context-length", str(spec.context_length), "--parallel", str(spec.parallel),
            *extra]


def main() -> None:
    args = bench_args(__doc__)
    spec = ModelRegistry.from_file(None).specs[0]
    weights = str(spec.weights_path())
    engine_port, platform_port = free_loopback_port(), free_loopback_port()
    engine_url, platform_url = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{platform_port}"
    print(f"model {spec.name}: {spec.parallel} slots x {spec.context_length} tokens, "
          f"{os.cpu_count()} CPUs; starting the engine alone and plateforme...", flush=True)
    engine = start(engine_command(spec, engine_port))
    # A throwaway data dir and static key: the gateway authenticates like in production.
    gateway = start([sys.executable, "-m", "plateforme.cli", "serve", "--port", str(platform_port)],
                    env={"PLATEFORME_LOG_LEVEL": "warning", "PLATEFORME_API_KEY": BENCH_KEY,
                         "PLATEFORME_DATA_DIR": tempfile.mkdtemp(prefix="plateforme-bench-")})
    sides = {"engine": (engine_url, spec.name), "plateforme": (platform_url, spec.name)}
    try:
        wait_healthy(engine_url, engine)
        wait_healthy(platform_url, gateway)
        rows = compare(sides, "engine", args.concurrency, args.rounds, args.max_tokens)
    finally:
        for proc in (gateway, engine):
            proc.terminate()
            proc.wait(30)

    print_table(rows, "engine")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_chat-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "model": spec.name, "weights": weights, "slots": spec.parallel, "context_length": spec.context_length,
        "max_tokens": args.max_tokens, "rounds": args.rounds, "cpus": os.cpu_count(),
        "machine": platform.platform(), "rows": rows,
    }, indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
