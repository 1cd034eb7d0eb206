"""Memory of serving fine-tunes of one base model: 1 vs 3 fine-tunes, as plateforme serves them
(one llama.cpp process with the base once and every LoRA adapter, `engines/adapter_host.py`) and,
for comparison, one process per fine-tune (each with the base and its adapter).

Memory is the sum over the processes of PSS (proportional set size: shared pages split between
the processes that map them) and of RSS, read from /proc/PID/smaps_rollup after each adapter has
answered one request. Adapters are random LoRA weights of rank 16 on every projection (the size a
job writes by default); their values do not matter for memory.

    python benchmarks/bench_finetune_memory.py
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from random_adapters import write_random_adapter  # noqa: E402

RANK = 16


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0])
    return values


def start_worker(spec, adapters: list[Path]) -> tuple[subprocess.Popen, str]:
    port = free_loopback_port()
    cmd = [sys.executable, "-m", "plateforme.engines.llamacpp_worker", "--model", str(spec.weights_path()),
           "--port", str(port), "--context-length", str(spec.context_length), "--parallel", str(spec.parallel)]
    for adapter in adapters:
        cmd += ["--lora", str(adapter)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("worker did not start")


def exercise(url: str, n_adapters: int) -> None:
    for chosen in range(max(1, n_adapters)):
        lora = [{"id": i, "scale": 1.0 if i == chosen else 0.0} for i in range(n_adapters)]
        httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8, "lora": lora}).raise_for_status()


def measure(spec, layout: list[list[Path]]) -> dict[str, float]:
    """Start one worker per adapter list in `layout`, exercise each adapter, sum their memory."""
    procs = []
    try:
        for adapters in layout:
            proc, url = start_worker(spec, adapters)
            procs.append(proc)
            exercise(url, len(adapters))
        time.sleep(1)
        totals = {"Rss": 0, "Pss": 0}
        for proc in procs:
            for key, value in memory_kib(proc.pid).items():
                totals[key] += value
        return {"pss_mib": totals["Pss"] / 1024, "rss_mib": totals["Rss"] / 1024, "processes": len(procs)}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    spec = ModelRegistry.from_file(None).specs[0]
    base = spec.weights_path()
    with tempfile.TemporaryDirectory() as tmp:
        adapters = [Path(tmp) / f"ft-{i}.gguf" for i in range(3)]
        for i, adapter in enumerate(adapters):
            write_random_adapter(base, adapter, seed=i, rank=RANK)
        adapter_mib = adapters[0].stat().st_size / 2**20
        rows = {
            "base model alone": measure(spec, [[]]),
            "1 fine-tune, shared process": measure(spec, [adapters[:1]]),
            "3 fine-tunes, shared process": measure(spec, [adapters]),
            "1 fine-tune, process per fine-tune": measure(spec, [adapters[:1]]),
            "3 fine-tunes, process per fine-tune": measure(spec, [[a] for a in adapters]),
        }
    print(f"{spec.name}: weights {base.stat().st_size / 2**20:.0f} MiB, adapter (rank {RANK}) "
          f"{adapter_mib:.1f} MiB, {spec.parallel} slots x {spec.context_length} tokens of KV cache per process")
    print(f"{'':40s} {'PSS MiB':>9s} {'RSS MiB':>9s} {'procs':>6s}")
    for name, row in rows.items():
        print(f"{name:40s} {row['pss_mib']:9.0f} {row['rss_mib']:9.0f} {row['processes']:6d}")
    shared = rows["3 fine-tunes, shared process"]["pss_mib"] / rows["1 fine-tune, shared process"]["pss_mib"]
    separate = (rows["3 fine-tunes, process per fine-tune"]["pss_mib"]
                / rows["1 fine-tune, process per fine-tune"]["pss_mib"])
    print(f"3 vs 1 fine-tunes (PSS): {shared:.2f}x as plateforme serves them, {separate:.2f}x with a process each")
    out = Path(__file__).parent / "results" / "finetune_memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "ratio_shared": shared, "ratio_separate": separate}, indent=1))


if __name__ == "__main__":
    main()
