"""Classification by classifier fine-tunes: POST /v1/classifications and /v1/chat/classifications.

    service = ClassifierService(fine_tuned_models, embeddings)   # then service.pipeline = pipeline
    outcome = await service.classify(who, "ft:multilingual-e5-small:abcd1234", ["a text", "another"])
    outcome.results  # [{"sentiment": {"positive": 0.93, "negative": 0.07}}, ...]

A classifier fine-tune is a head (classifiers/head.py) over a served embedding model: the texts
are embedded by the EmbeddingService (batched with every other caller of that model), then the
head scores them, with numpy. Each call goes through the request pipeline (route
"classifications": the workspace's limits, budgets, usage and metrics, as /v1/embeddings), with
the embedding tokens as its prompt tokens. A workspace classifies only with its own fine-tunes:
another workspace's is answered as unknown, as for any model it cannot see.

Heads are read once (off the event loop), from the data dir or, on a replica that did not train
them, from the blob store, and kept in memory (a few KB to a few MB each).
"""

import asyncio
import threading
from dataclasses import dataclass

from plateforme.chat.types import Usage
from plateforme.classifiers.conversation_text import conversation_text
from plateforme.classifiers.head import ClassifierHead
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, ServedAdapter
from plateforme.pipeline.call import GenerationCall
from plateforme.tenancy.principal import Principal

ROUTE = "classifications"


class ClassifierNotFound(LookupError):
    """No classifier of that id in the caller's workspace (HTTP 404)."""


class NotAClassifier(ValueError):
    """The model exists but is not a classifier fine-tune, or cannot classify now (HTTP 400)."""


class ClassificationInputInvalid(ValueError):
    """Nothing to classify, or an empty text; the message names which (HTTP 400)."""


@dataclass
class ClassificationRequest:
    """One classification as the request pipeline runs it (route "classifications")."""
    model: str  # the classifier fine-tune's id
    texts: list[str]
    served: ServedAdapter
    tenant: str | None = None  # set by the pipeline


@dataclass
class ClassificationResult:
    results: list[dict[str, dict[str, float]]]
    usage: Usage  # the embedding tokens; completion_tokens 0


@dataclass
class ClassificationOutcome:
    model: str
    results: list[dict[str, dict[str, float]]]  # per input: {target: {label: probability}}
    prompt_tokens: int


class ClassifierService:
    def __init__(self, models: FineTunedModels, embeddings, pipeline=None):
        """`embeddings`: the EmbeddingService; `pipeline`: the RequestPipeline, whose route
        "classifications" is this service (set once both exist)."""
        self.models, self.embeddings, self.pipeline = models, embeddings, pipeline
        self._heads: dict[str, tuple[str, ClassifierHead]] = {}  # model id -> (its file's key, head)
        self._lock = threading.Lock()

    # Heads

    def _head_of(self, served: ServedAdapter) -> ClassifierHead:
        """The head of `served` (blocking the first time: read from disk or the blob store)."""
        with self._lock:
            cached = self._heads.get(served.model_id)
        if cached is not None and cached[0] == served.blob_key:
            return cached[1]
        head = ClassifierHead.load(self.models.local_file(served))
        with self._lock:
            self._heads[served.model_id] = (served.blob_key, head)
        return head

    def load_head(self, model_id: str) -> ClassifierHead:
        """The head of classifier fine-tune `model_id`, whatever its workspace (an operator's
        configuration naming one). Blocking: call it off the event loop. ClassifierNotFound when
        there is no such classifier."""
        served = self.models.find(model_id)
        if served is None or not served.is_classifier:
            raise ClassifierNotFound(f"no classifier fine-tune {model_id!r} on this platform")
        return self._head_of(served)

    async def head(self, served: ServedAdapter) -> ClassifierHead:
        with self._lock:
            cached = self._heads.get(served.model_id)
        if cached is not None and cached[0] == served.blob_key:
            return cached[1]
        try:
            return await asyncio.to_thread(self._head_of, served)
        except FileNotFoundError as exc:
            raise NotAClassifier(f"classifier {served.model_id!r} cannot be served here: its head is neither in "
                                 f"this data dir nor in the blob store ({exc})") from exc

    # Resolution

    async def resolve(self, who: Principal, model: str) -> ServedAdapter:
        """The caller's classifier fine-tune `model`; ClassifierNotFound or NotAClassifier saying why not."""
        if not isinstance(model, str) or not model:
            raise ClassifierNotFound("model is missing: give the id of one of your classifier fine-tunes")
        known, served = self.models.cached(who.workspace_id, model)
        if not known:
            served = await asyncio.to_thread(self.models.lookup, who.workspace_id, model)
        if served is None:
            with self._lock:
                self._heads.pop(model, None)  # deleted meanwhile: its head leaves memory
            raise ClassifierNotFound(f"no classifier {model!r} in this workspace; classifiers are fine-tuned with "
                                     "POST /v1/fine_tuning/jobs (job_type 'classifier'), and GET /v1/models "
                                     "lists yours")
        if not served.is_classifier:
            raise NotAClassifier(f"model {model!r} is a completion fine-tune, not a classifier; use it with "
                                 "POST /v1/chat/completions")
        if served.archived:
            raise NotAClassifier(f"classifier {model!r} is archived; unarchive it with "
                                 f"DELETE /v1/fine_tuning/models/{model}/archive to use it")
        return served

    # Classification

    async def complete(self, request: ClassificationRequest, tally=None) -> ClassificationResult:
        """The pipeline's service of route "classifications": embed, then score with the head."""
        head = await self.head(request.served)
        try:
            self.embeddings.info(head.embedding_model)
        except LookupError as exc:
            raise NotAClassifier(f"classifier {request.model!r} reads the vectors of {head.embedding_model!r}, "
                                 "which this server does not serve; add it to the models config") from exc
        embedded = await self.embeddings.embed(head.embedding_model, request.texts, head.input_type)
        if len(request.texts) > 64:  # scoring many vectors is CPU work: off the event loop
            results = await asyncio.to_thread(head.scores, embedded.vectors)
        else:
            results = head.scores(embedded.vectors)
        return ClassificationResult(results, Usage(embedded.prompt_tokens, 0))

    async def classify(self, who: Principal, model: str, texts: list[str]) -> ClassificationOutcome:
        """Scores of `texts` by the caller's classifier `model`, through the request pipeline."""
        if not texts:
            raise ClassificationInputInvalid("input is empty: give at least one text")
        empty = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
        if empty is not None:
            raise ClassificationInputInvalid(f"input[{empty}] is empty: every text must have some content")
        served = await self.resolve(who, model)
        if self.pipeline is None:
            raise RuntimeError("the classifier service has no request pipeline")
        result = await self.pipeline.complete(GenerationCall(who, ROUTE, ClassificationRequest(served.model_id,
                                                                                               texts, served)))
        return ClassificationOutcome(served.model_id, result.results, result.usage.prompt_tokens)

    async def classify_chat(self, who: Principal, model: str, conversations: list[list[dict]]) -> ClassificationOutcome:
        """Scores of each conversation ([{"role", "content"}...]), rendered as its training examples are."""
        if not conversations:
            raise ClassificationInputInvalid("input is empty: give at least one conversation")
        return await self.classify(who, model, [conversation_text(messages) for messages in conversations])
