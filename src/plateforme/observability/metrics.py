"""Prometheus metrics of one app: requests, latencies, tokens, time to first token, workers.

Each app owns its own `CollectorRegistry` (never prometheus_client's global one), so several
apps in one process (tests) do not clash. Request metrics are recorded by the request
middleware; the request pipeline (pipeline/request_pipeline.py) reports tokens, time to first
token, how generations end and its own cost; queue depth and worker state are read from the worker pool at scrape time, so
they cost nothing between scrapes. Every update is O(1) per request, never per token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from plateforme.observability.context import current_request

if TYPE_CHECKING:
    from plateforme.engines.pool import WorkerPool
    from plateforme.models.registry import ModelRegistry

# Seconds: from a cached model list (milliseconds) to a long generation (minutes).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
PIPELINE_BUCKETS = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# A guardrail check: a classifier head over embeddings (milliseconds) to an LLM judge (seconds).
GUARDRAIL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Label of a request that matched no route (404 on an unknown path): raw paths never become labels.
UNMATCHED_ROUTE = "<unmatched>"
# Label of a model name the registry does not know (bounded cardinality).
OTHER_MODEL = "<other>"
WORKER_STATES = ("starting", "ready", "down", "stopped")


class PoolCollector:
    """Gauges read from the worker pool when Prometheus scrapes: every base model's worker and
    every adapter host of fine-tunes (labelled `ft:<base model>`)."""

    def __init__(self, pool: WorkerPool):
        self.pool = pool

    def collect(self):
        queue = GaugeMetricFamily("plateforme_queue_depth", "Requests waiting for a slot, per model.",
                                  labels=["model"])
        running = GaugeMetricFamily("plateforme_requests_running", "Requests running on the worker, per model.",
                                    labels=["model"])
        slots = GaugeMetricFamily("plateforme_slots", "Requests the worker decodes together (parallel).",
                                  labels=["model"])
        up = GaugeMetricFamily("plateforme_worker_up", "1 when the model's worker is ready, else 0.",
                               labels=["model"])
        state = GaugeMetricFamily("plateforme_worker_state", "1 for the worker's current state.",
                                  labels=["model", "state"])
        restarts = CounterMetricFamily("plateforme_worker_restarts", "Times the model's worker went down "
                                       "and was restarted.", labels=["model"])
        probes = CounterMetricFamily("plateforme_health_probes", "Generations run on the worker by /health "
                                     "probes.", labels=["model"])
        endpoint_up = GaugeMetricFamily("plateforme_endpoint_up", "1 when the endpoint of a remote model is "
                                        "in rotation, 0 while it is out and probed.", labels=["model", "endpoint"])
        endpoint_running = GaugeMetricFamily("plateforme_endpoint_in_flight", "Requests in flight on the "
                                             "endpoint of a remote model.", labels=["model", "endpoint"])
        endpoint_failures = CounterMetricFamily("plateforme_endpoint_failures", "Server failures that took "
                                                "the endpoint out of rotation.", labels=["model", "endpoint"])
        for worker in self.pool.every_worker():
            name, admission, status = worker.name, worker.admission, worker.status()
            for e in getattr(worker, "endpoint_reports", list)():
                endpoint_up.add_metric([name, e["url"]], 1.0 if e["healthy"] else 0.0)
                endpoint_running.add_metric([name, e["url"]], e["in_flight"])
                endpoint_failures.add_metric([name, e["url"]], e["failures"])
            if status is None:
                continue
            queue.add_metric([name], admission.queued)
            running.add_metric([name], admission.running)
            slots.add_metric([name], admission.slots)
            current = getattr(status.state, "value", str(status.state))
            up.add_metric([name], 1.0 if current == "ready" else 0.0)
            for s in WORKER_STATES:
                state.add_metric([name, s], 1.0 if current == s else 0.0)
            restarts.add_metric([name], status.restarts)
            probes.add_metric([name], worker.probe.generations)
        return [queue, running, slots, up, state, restarts, probes, endpoint_up, endpoint_running, endpoint_failures]


class Metrics:
    def __init__(self, pool: WorkerPool | None = None, models: ModelRegistry | None = None):
        self.registry = CollectorRegistry()
        self._models = models
        self._labels: dict[str, str] = {}
        self._request_children: dict[tuple, tuple] = {}
        r = self.registry
        self.requests = Counter("plateforme_requests", "HTTP requests answered, by route template, method "
                                "and status.", ["route", "method", "status"], registry=r)
        self.duration = Histogram("plateforme_request_duration_seconds", "Time from request to the end of "
                                  "the response (whole stream included).", ["route", "method"],
                                  buckets=DURATION_BUCKETS, registry=r)
        self.tokens = Counter("plateforme_tokens", "Tokens processed, by model and direction "
                              "(input: prompt, output: completion).", ["model", "direction"], registry=r)
        self.ttft = Histogram("plateforme_time_to_first_token_seconds", "Time from request to the first "
                              "generated token sent (streaming).", ["model"], buckets=TTFT_BUCKETS, registry=r)
        self.generation_ends = Counter("plateforme_generations_ended", "Billable generations by how they "
                                       "ended: completed, client_gone, engine_failed, failed (an internal "
                                       "error), blocked (an output guardrail withheld the answer), refused "
                                       "(a guard refused it before generation).", ["model", "outcome"],
                                       registry=r)
        self.pipeline = Histogram("plateforme_pipeline_seconds", "The request pipeline's own time per "
                                  "generation, by stage (admit: limits, guards, capture switch; record: "
                                  "usage write).", ["stage"], buckets=PIPELINE_BUCKETS, registry=r)
        self.guardrail = Histogram("plateforme_guardrail_seconds", "Time the guardrails of a chat request "
                                   "take, by stage (input: before generation; output: each check of the "
                                   "answer).", ["stage"], buckets=GUARDRAIL_BUCKETS, registry=r)
        if pool is not None:
            r.register(PoolCollector(pool))

    def model_label(self, model: str) -> str:
        """The canonical model name for an alias; names the registry does not know share one label."""
        label = self._labels.get(model)
        if label is None:
            if self._models is None:
                label = model
            else:
                spec = self._models.get(model)
                label = spec.name if spec is not None else OTHER_MODEL
            if len(self._labels) < 1000:
                self._labels[model] = label
        return label

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:  # label lookups once per (route, method, status), not per request
            children = (self.requests.labels(route, method, str(status)), self.duration.labels(route, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_tokens(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        label = self.model_label(model)
        if prompt_tokens:
            self.tokens.labels(label, "input").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(label, "output").inc(completion_tokens)

    def observe_ttft(self, model: str, seconds: float) -> None:
        self.ttft.labels(self.model_label(model)).observe(seconds)

    def observe_generation_end(self, model: str, outcome: str) -> None:
        self.generation_ends.labels(self.model_label(model), outcome).inc()

    def observe_pipeline(self, stage: str, seconds: float) -> None:
        self.pipeline.labels(stage).observe(seconds)

    def observe_guardrail(self, stage: str, seconds: float) -> None:
        self.guardrail.labels(stage).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_of(where: Any = None) -> Metrics | None:
    """The Metrics of a Request, an app, an app's `state`, or (None) of the request being served."""
    if where is None:
        ctx = current_request()
        return ctx.metrics if ctx is not None else None
    if isinstance(where, Metrics):
        return where
    app = where.scope.get("app") if hasattr(where, "scope") else where  # a Request or WebSocket
    state = getattr(app, "state", app)
    return getattr(state, "metrics", None)


def observe_tokens(where: Any, model: str, prompt_tokens: int, completion_tokens: int) -> None:
    """Count one request's tokens: `where` is the Request (or app, app.state, None: current request)."""
    metrics = metrics_of(where)
    if metrics is not None:
        metrics.observe_tokens(model, prompt_tokens, completion_tokens)
