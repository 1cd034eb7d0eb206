"""Agents over company data, end to end through the API: the share of tasks answered correctly with
the right citation or the right query result, and steps and latency per task.

The script starts `plateforme serve` (no auth, a temporary data directory; the packaged default
models, or the operator's models config), then, through the API only:
  - registers the shipped company database (data/agents/company.sql, built into an SQLite file by
    company_db.py) as a database connector of the workspace (admin API), with the tables
    tasks.yaml lists (not `employees`);
  - creates a library and uploads the shipped documents (data/agents/documents/, English and
    French), waiting until they are ingested;
  - creates three agents with the model under test: one with the document_library tool, one with
    the database connector, one with both;
  - runs every task of data/agents/tasks.yaml as a new conversation
    (mistralai SDK, beta.conversations.start) with the agent of its kind, and scores the response
    (agents_scoring.py): the fact in the answer and its document cited (library), the reference
    query's values in the answer or in a query result (sql; computed from the database by this
    script, never written down), both (mixed), and for guards that the database is unchanged or
    that the unlisted table's columns were never shown. A response that ends in an API error (a
    bound of the loop, the model's context) fails its task; a guard is judged on the database and
    the tool results whatever the response's end.

It prints one line per task (pass, model steps, tool executions, latency, tokens, the checks)
and a summary; writes JSON to benchmarks/results/. Exits 1 when the server fails or set-up is
refused (bugs), not when tasks fail (that is the measurement).

The default model, SmolLM2-135M-Instruct, is far too small for this and is expected to score
low: the number is reported as measured, and the tasks are not tuned to it. To measure a larger
model, declare it in a models config (with an embedding model for the library) and name it:

    python benchmarks/bench_agents.py [--models-config models.yaml --model NAME]
        [--tool-choice any|auto] [--max-tokens 160] [--concurrency 1] [--tasks ID,ID] [--limit N]

--tool-choice any (the default) forces a tool call on each response's first model step (the loop
lets the model choose after it): without it a small model seldom calls a tool at all.
--max-tokens bounds each model step: the agents are asked for one or two sentences, and a tool
call's arguments (a search query, an SQL statement) fit well within it; it keeps a model that
does not stop from filling its context. --concurrency N runs N conversations at once (a shorter
run on a slow machine; the latencies are then measured under that load, and the summary says so).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # the embedding model's threads must not spin on shared cores

import yaml  # noqa: E402
from agents_scoring import Response, score  # noqa: E402
from agents_setup import AgentStack  # noqa: E402
from agents_tasks import (DOCUMENTS, TASKS_PATH, build_database, database_fingerprint,  # noqa: E402
                          load_tasks, sql_expectations)
from moderation_gateway import BenchError, default_models  # noqa: E402

RESULTS = Path(__file__).parent / "results"
AGENT_OF_KIND = {"library": "library", "sql": "database", "guard": "database", "mixed": "mixed"}
DEFAULT_NOTE = ("SmolLM2-135M-Instruct has 135 million parameters: it is far too small to choose the right tool, "
                "write SQL over a schema it has just read, or answer from retrieved excerpts, and a low score is "
                "what it gets. The tasks were written before any run and are not tuned to it; measure a larger "
                "model with --models-config FILE --model NAME.")


def models_and_model(args) -> tuple[list[dict] | None, str]:
    """The models the server serves (None: the packaged defaults) and the chat model under test."""
    config = args.models_config or os.environ.get("PLATEFORME_CONFIG")
    if config is None:
        models, chat = None, default_models()[0]["name"]
    else:
        models = (yaml.safe_load(Path(config).read_text()) or {}).get("models") or []
        chats = [m["name"] for m in models if not m.get("embedding")]
        if not chats:
            raise BenchError(f"{config} declares no chat model")
        chat = chats[0]
    return models, args.model or chat


def stored_outputs(stack: AgentStack, metadata: dict) -> list[dict]:
    """The output entries a failed response left in its conversation (found by its metadata), so
    that what its tools did is still scored for the report (the task itself fails)."""
    try:
        found = stack.client.beta.conversations.list(metadata=metadata, page_size=2)
        if len(found) != 1:
            return []
        history = stack.client.beta.conversations.get_history(conversation_id=found[0].id)
    except Exception:  # nothing recoverable: the error is what is reported
        return []
    entries = [entry.model_dump(mode="json", by_alias=True) for entry in history.entries]
    return [e for e in entries if e.get("type") not in ("message.input", "function.result")]


def run_task(stack: AgentStack, task, agent_id: str, expected, names: dict[str, str], db_path: Path,
             run_id: str) -> dict:
    before = database_fingerprint(db_path) if task.guard == "read_only" else None
    began, error, outputs, usage = time.perf_counter(), None, [], {}
    metadata = {"bench_run": run_id, "bench_task": task.id}
    try:
        answer = stack.client.beta.conversations.start(agent_id=agent_id, inputs=task.question, metadata=metadata)
        outputs = [entry.model_dump(mode="json", by_alias=True) for entry in answer.outputs]
        usage = answer.usage.model_dump(mode="json") if answer.usage else {}
    except Exception as exc:  # an error answer of the API is a failed task, reported with its reason
        seconds = time.perf_counter() - began
        error = f"{type(exc).__name__}: {str(exc)[:400]}"
        if not stack.alive():
            raise BenchError(f"the server died during {task.id}:\n{stack.gateway.log_tail()}") from exc
        outputs = stored_outputs(stack, metadata)
    else:
        seconds = time.perf_counter() - began
    unchanged = None if before is None else database_fingerprint(db_path) == before
    response = Response.of(outputs)
    document_ids = {i for i, name in names.items() if name == task.document}
    result = score(task, response, expected, document_ids, unchanged)
    passed = result.passed and (error is None or task.kind == "guard")
    return {"id": task.id, "kind": task.kind, "question": task.question, "passed": passed,
            "checks": result.checks, "error": error, "seconds": seconds, "steps": response.steps,
            "entries": response.entries,
            "tools": [e.get("name") for e in response.executions], "refusals": response.refusals,
            "arguments": [str(e.get("arguments"))[:300] for e in response.executions],
            "total_tokens": usage.get("total_tokens"), "expected": expected, "answer": response.answer,
            "citations": [r.get("title") for r in response.references]}


def line(r: dict) -> str:
    checks = " ".join(f"{name}{'+' if ok else '-'}" for name, ok in r["checks"].items())
    tools = ",".join(sorted(set(t or "?" for t in r["tools"]))) or "no tool"
    tokens = r["total_tokens"] if r["total_tokens"] is not None else "-"
    text = (f"  {r['id']:<28} {r['kind']:<7} {'PASS' if r['passed'] else 'fail'}  steps {r['steps']}  "
            f"tools {len(r['tools'])} ({tools})  {r['seconds']:6.1f} s  tokens {tokens}  {checks}")
    return text + (f"\n      error: {r['error']}" if r["error"] else "")


def summarize(results: list[dict]) -> dict:
    by_kind = {}
    for kind in ("library", "sql", "mixed", "guard"):
        of_kind = [r for r in results if r["kind"] == kind]
        by_kind[kind] = {"passed": sum(r["passed"] for r in of_kind), "tasks": len(of_kind)}
    model_tasks = [r for r in results if r["kind"] != "guard"]

    def count(check: str) -> dict:
        having = [r for r in results if check in r["checks"]]
        return {"true": sum(r["checks"][check] for r in having), "of": len(having)}

    seconds = sorted(r["seconds"] for r in results)
    return {"by_kind": by_kind, "model_tasks_passed": sum(r["passed"] for r in model_tasks),
            "model_tasks": len(model_tasks),
            "share": sum(r["passed"] for r in model_tasks) / len(model_tasks) if model_tasks else None,
            "checks": {c: count(c) for c in ("answer", "cited", "retrieved", "result_in_answer", "result_in_tool",
                                             "unchanged", "write_tried", "not_shown",
                                             "refused")},
            "with_a_tool_call": sum(bool(r["tools"]) for r in results),
            "errors": sum(bool(r["error"]) for r in results),
            "latency_p50_s": statistics.median(seconds) if seconds else None,
            "latency_max_s": seconds[-1] if seconds else None,
            "steps_mean": statistics.fmean(r["steps"] for r in results) if results else None,
            "steps_max": max((r["steps"] for r in results), default=None),
            "tool_executions_mean": statistics.fmean(len(r["tools"]) for r in results) if results else None}


def print_summary(s: dict, model: str, tool_choice: str) -> None:
    print(f"\nSummary ({model}, tool_choice {tool_choice} on each response's first step):")
    for kind, v in s["by_kind"].items():
        print(f"  {kind:<8} {v['passed']:>3} / {v['tasks']}")
    if s["share"] is not None:
        print(f"  answered correctly with the right citation or query result: {s['model_tasks_passed']} / "
              f"{s['model_tasks']} = {100 * s['share']:.0f} % of the library, sql and mixed tasks")
    print("  guards are the platform's refusals (read-only database, unlisted table), not the model's work")
    for check, v in s["checks"].items():
        if v["of"]:
            print(f"  check {check:<17} {v['true']:>3} / {v['of']}")
    print(f"  tasks with a tool call {s['with_a_tool_call']}, API errors {s['errors']}, "
          f"latency p50 {s['latency_p50_s']:.1f} s (max {s['latency_max_s']:.1f} s), "
          f"model steps mean {s['steps_mean']:.1f} (max {s['steps_max']}), "
          f"tool executions mean {s['tool_executions_mean']:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-config", help="models YAML the server serves (default: the packaged models)")
    parser.add_argument("--model", help="the chat model under test (default: the config's first chat model)")
    parser.add_argument("--tool-choice", default="any", choices=("any", "auto"),
                        help="the agents' tool_choice (forced applies to a response's first step only)")
    parser.add_argument("--max-tokens", type=int, default=160, help="max_tokens of each model step")
    parser.add_argument("--tasks", help="comma-separated task ids (default: all)")
    parser.add_argument("--limit", type=int, help="only the first N tasks (a quick check)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="conversations run at once (1: each task's latency alone; more: a shorter run, "
                             "latencies under that load)")
    args = parser.parse_args()

    tasks = load_tasks()
    if args.tasks:
        wanted = set(args.tasks.split(","))
        tasks = [t for t in tasks if t.id in wanted]
    tasks = tasks[:args.limit] if args.limit else tasks
    models, model = models_and_model(args)
    connector = yaml.safe_load(TASKS_PATH.read_text(encoding="utf-8"))["connector"]
    db_path = build_database(Path(tempfile.mkdtemp(prefix="plateforme-bench-agents-db-")) / "company.db")
    expectations = sql_expectations(tasks, db_path)
    fingerprint = database_fingerprint(db_path)
    print(f"{len(tasks)} tasks, model {model}, tool_choice {args.tool_choice}; starting the server", flush=True)
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    stack = AgentStack.start(models, model)
    try:
        stack.register_database(db_path, connector)
        library_id, names = stack.create_library(DOCUMENTS)
        completion_args = {"temperature": 0, "max_tokens": args.max_tokens, "tool_choice": args.tool_choice}
        agents = stack.create_agents(library_id, connector["name"], completion_args)
        print(f"  set up in {time.perf_counter() - began:.0f} s: connector {connector['name']}, "
              f"library of {len(names)} documents, agents {', '.join(agents)}", flush=True)
        run_id = uuid.uuid4().hex[:12]

        def one(task):
            return run_task(stack, task, agents[AGENT_OF_KIND[task.kind]], expectations.get(task.id), names, db_path,
                            run_id)

        results, ran_began = [], time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            for result in pool.map(one, tasks):
                results.append(result)
                print(line(result), flush=True)
        ran_seconds = time.perf_counter() - ran_began
    finally:
        stack.stop()
    summary = summarize(results)
    summary["database_unchanged"] = database_fingerprint(db_path) == fingerprint
    summary.update(concurrency=args.concurrency, run_seconds=ran_seconds, load_start=load_start,
                   load_end=os.getloadavg()[0])
    print(f"\n{len(results)} tasks in {ran_seconds:.0f} s, {args.concurrency} at a time; load average "
          f"{load_start:.1f} at the start, {summary['load_end']:.1f} at the end ({os.cpu_count()} CPUs)")
    print_summary(summary, model, args.tool_choice)
    if model == default_models()[0]["name"]:
        print(f"\n{DEFAULT_NOTE}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_agents-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"model": model, "tool_choice": args.tool_choice, "max_tokens": args.max_tokens,
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                               "load": os.getloadavg()[0], "summary": summary, "tasks": results},
                              indent=2, ensure_ascii=False, default=str))
    print(f"wrote {out}")
    shutil.rmtree(db_path.parent, ignore_errors=True)
    shutil.rmtree(stack.dir, ignore_errors=True)  # kept when the run fails: its gateway.log says why
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench_agents: {exc}", file=sys.stderr)
        sys.exit(1)
