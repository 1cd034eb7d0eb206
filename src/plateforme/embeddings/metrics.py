"""Embedding counters in /metrics, read from the batchers when Prometheus scrapes.

Every embedding call counts, POST /v1/embeddings and internal callers (ingestion, search) alike;
the API's tokens are also in plateforme_tokens{direction="input"} through the request pipeline.
"""

from prometheus_client.core import CounterMetricFamily


class EmbeddingCollector:
    def __init__(self, service):
        self.service = service

    def collect(self):
        inputs = CounterMetricFamily("plateforme_embedding_inputs", "Texts embedded, per model.", labels=["model"])
        tokens = CounterMetricFamily("plateforme_embedding_tokens", "Tokens read by embedding models, per model.",
                                     labels=["model"])
        batches = CounterMetricFamily("plateforme_embedding_batches", "Engine calls of embedding models (each "
                                      "embeds a batch of texts from concurrent callers), per model.", labels=["model"])
        for name, batcher in self.service.batchers.items():
            inputs.add_metric([name], batcher.texts)
            tokens.add_metric([name], batcher.tokens)
            batches.add_metric([name], batcher.batches)
        return [inputs, tokens, batches]


def install_embedding_metrics(metrics, service) -> None:
    """Register the counters of `service` (an EmbeddingService) on `metrics` (observability Metrics)."""
    if metrics is not None:
        metrics.registry.register(EmbeddingCollector(service))
