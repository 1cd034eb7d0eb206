"""Engine `openai`: plateforme in front of a remote llama.cpp server, against that server alone.

One standalone llama.cpp server (the worker module run by hand, requiring an API key, like a
llama-server someone else runs), measured in the same run (a) directly and (b) through
`plateforme serve` whose only model is that server (`engine: openai`). For 1, 4 and 16
concurrent streams: aggregate output tokens/s (ratio, target >= 0.95) and the time to first
token that the gateway adds (p50, target <= 10 ms), the two sides alternating round by round so
machine noise hits both alike. Prints a table and writes JSON to benchmarks/results/.

    python benchmarks/bench_remote_engine.py [--concurrency 1 4 16] [--rounds 3] [--max-tokens 128]
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import yaml
from bench_chat import BENCH_KEY, RESULTS, bench_args, compare, engine_command, print_table, wait_healthy

from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry

REMOTE_MODEL = "remote-bench"


def start(args: list[str], log: str, env: dict | None = None) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def wait_started(url: str, proc: subprocess.Popen, log: str) -> None:
    try:
        wait_healthy(url, proc)
    except SystemExit:
        with open(log) as f:
            print(f.read()[-3000:], file=sys.stderr)
        raise


def main() -> None:
    args = bench_args(__doc__)
    spec = ModelRegistry.from_file(None).specs[0]
    server_port, platform_port = free_loopback_port(), free_loopback_port()
    server_url, platform_url = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{platform_port}"
    print(f"model {spec.name}: {spec.parallel} slots x {spec.context_length} tokens, {os.cpu_count()} CPUs; "
          "starting a standalone llama.cpp server and plateforme in front of it...", flush=True)
    # The same key on both sides: the server requires it, the gateway requires it of its callers
    # (static key) and sends it to the server (api_key_env).
    data_dir = tempfile.mkdtemp(prefix="plateforme-bench-remote-")
    server_log, gateway_log = os.path.join(data_dir, "server.log"), os.path.join(data_dir, "gateway.log")
    server = start(engine_command(spec, server_port, "--api-key", BENCH_KEY), server_log)
    config = os.path.join(data_dir, "models.yaml")
    with open(config, "w") as f:
        yaml.safe_dump({"models": [{
            "name": REMOTE_MODEL, "engine": "openai", "base_url": f"{server_url}/v1", "api_key_env": "BENCH_REMOTE_KEY",
            "upstream_model": spec.name, "context_length": spec.context_length, "parallel": spec.parallel,
            "max_queue": spec.max_queue}]}, f)
    gateway = start([sys.executable, "-m", "plateforme.cli", "serve", "--port", str(platform_port), "--config", config],
                    gateway_log, env={"PLATEFORME_LOG_LEVEL": "warning", "PLATEFORME_API_KEY": BENCH_KEY,
                         "BENCH_REMOTE_KEY": BENCH_KEY, "PLATEFORME_DATA_DIR": data_dir})
    sides = {"server": (server_url, spec.name), "plateforme": (platform_url, REMOTE_MODEL)}
    try:
        wait_started(server_url, server, server_log)
        wait_started(platform_url, gateway, gateway_log)
        rows = compare(sides, "server", args.concurrency, args.rounds, args.max_tokens)
    finally:
        for proc in (gateway, server):
            proc.terminate()
            proc.wait(30)

    print_table(rows, "server")
    targets_met = all(r["tok_s_ratio"] >= 0.95 and r["ttft_added_ms"] <= 10 for r in rows)
    print(f"targets (ratio >= 0.95, added TTFT p50 <= 10 ms): {'met' if targets_met else 'NOT met'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_remote_engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "model": spec.name, "weights": str(spec.weights_path()), "slots": spec.parallel, "context_length": spec.context_length,
        "max_tokens": args.max_tokens, "rounds": args.rounds, "cpus": os.cpu_count(),
        "machine": platform.platform(), "targets": {"tok_s_ratio": 0.95, "ttft_added_ms": 10},
        "targets_met": targets_met, "rows": rows,
    }, indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
