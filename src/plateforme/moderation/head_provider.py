"""The default moderation provider: a classifier head over the default embeddings.

    provider = HeadProvider("default", ClassifierHead.load(DEFAULT_HEAD_PATH), embeddings)
    await provider.score(who, [ModerationInput("some text")])   # ProviderScores, 2603 categories

The head (classifiers/head.py) has one multi_class target, `moderation`, whose labels are
categories of the 2603 set; it reads the vectors of one embedding model, embedded through the
EmbeddingService (so concurrent requests share batches). Its probabilities are calibrated so that
each category's threshold, chosen on held-out data when the head was trained (the head's
`metadata["thresholds"]`), maps to 0.5: the common decision point of every provider, which the
service's combination (a maximum) relies on. The map is monotone and piecewise linear, so the
head's ranking, and its precision and recall at any threshold, are unchanged.

A conversation's last turn is judged in its context: the few turns before it are rendered before
it (`judged_text`), as conversation examples are rendered for training.
"""

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from plateforme.classifiers.conversation_text import ConversationInvalid, conversation_text
from plateforme.classifiers.head import ClassifierHead
from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.moderation.provider import ModerationInput, ModerationProviderError, ProviderScores

DEFAULT_HEAD_PATH = Path(__file__).parent / "data" / "default_head.npz"
MODERATION_TARGET = "moderation"
# Turns of context rendered before the judged one, and the characters each may keep (its end).
CONTEXT_TURNS = 3
CONTEXT_CHARS = 600


def calibrated(p: np.ndarray, threshold: float) -> np.ndarray:
    """Probabilities mapped so that `threshold` becomes 0.5 (0 and 1 stay where they are)."""
    t = min(max(float(threshold), 1e-6), 1 - 1e-6)
    p = np.asarray(p, dtype=np.float64)
    return np.where(p < t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1 - t))


def judged_text(item: ModerationInput) -> str:
    """The text the head reads: the input, or a conversation's last turns ending with it,
    rendered as conversation examples are for training (classifiers/conversation_text.py)."""
    if not item.context:
        return item.text
    turns = [{"role": t.get("role", "user"), "content": _tail(t.get("content"))}
             for t in item.context[-CONTEXT_TURNS:]]
    try:
        return conversation_text([*turns, {"role": item.role, "content": item.text}])
    except ConversationInvalid:
        return item.text


def _tail(content) -> str:
    text = content if isinstance(content, str) else str(content or "")
    return text[-CONTEXT_CHARS:]


def moderation_target(head: ClassifierHead):
    """The head's target whose labels are moderation categories."""
    named = [t for t in head.targets if t.name == MODERATION_TARGET]
    target = named[0] if named else (head.targets[0] if len(head.targets) == 1 else None)
    if target is None or target.loss_function != "multi_class":
        raise ValueError(f"a moderation head needs one multi_class target named {MODERATION_TARGET!r} whose labels "
                         f"are moderation categories; this one has targets {[t.name for t in head.targets]}")
    known = [label for label in target.labels if label in CATEGORIES_2603]
    if not known:
        raise ValueError(f"target {target.name!r} has no label among the moderation categories "
                         f"({', '.join(CATEGORIES_2603)}): labels {list(target.labels)}")
    return target


class HeadProvider:
    def __init__(self, name: str, head: ClassifierHead | None, embeddings,
                 categories: frozenset[str] | None = None,
                 load: Callable[[], ClassifierHead | Awaitable[ClassifierHead]] | None = None):
        """`head`, or `load` (a classifier fine-tune's head, fetched at first use); `categories`:
        the ones to score (default: every moderation label of the head; for a head not loaded
        yet, every category)."""
        if head is None and load is None:
            raise ValueError("a HeadProvider needs a head or a way to load one")
        self.name = name
        self._embeddings = embeddings
        self._load = load
        self._head: ClassifierHead | None = None
        self._labels: list[str] = []
        self._thresholds: dict[str, float] = {}
        self._wanted = frozenset(categories) if categories is not None else None
        self.categories: frozenset[str] = self._wanted or frozenset(CATEGORIES_2603)
        if head is not None:
            self._use(head)

    def _use(self, head: ClassifierHead) -> None:
        target = moderation_target(head)
        labels = [label for label in target.labels if label in CATEGORIES_2603]
        if self._wanted is not None and not self._wanted <= set(labels):
            missing = sorted(self._wanted - set(labels))
            raise ValueError(f"provider {self.name!r}: its head has no label for {', '.join(missing)}")
        self._head, self._target = head, target
        self._columns = [target.labels.index(label) for label in labels]
        self._labels = labels
        thresholds = head.metadata.get("thresholds") or {}
        self._thresholds = {label: float(thresholds.get(label, 0.5)) for label in labels}
        self.categories = self._wanted or frozenset(labels)

    @property
    def head(self) -> ClassifierHead | None:
        return self._head

    async def _ready(self) -> ClassifierHead:
        if self._head is None:
            try:
                loaded = self._load()
                head = await loaded if inspect.isawaitable(loaded) else loaded
                self._use(head)
            except ModerationProviderError:
                raise
            except Exception as exc:  # the fine-tune was deleted, its file unreadable...
                raise ModerationProviderError(self.name, f"cannot load its classifier head: {exc}") from exc
        return self._head

    def check_embeddings(self) -> None:
        """ValueError when the served embedding model is not the one the head reads."""
        head = self._head
        try:
            info = self._embeddings.info(head.embedding_model)
        except LookupError as exc:
            raise ValueError(f"provider {self.name!r}: its head reads vectors of {head.embedding_model!r}, which "
                             f"this server does not serve ({exc})") from exc
        if info.dimension != head.dimension:
            raise ValueError(f"provider {self.name!r}: its head reads {head.dimension}-dimension vectors, model "
                             f"{info.name!r} makes {info.dimension}")

    async def score(self, who, items: list[ModerationInput]) -> ProviderScores:
        head = await self._ready()
        texts = [judged_text(item) for item in items]
        embedded = await self._embeddings.embed(head.embedding_model, texts, head.input_type)
        probabilities = head.probabilities(embedded.vectors)[self._target.name]
        columns = {label: calibrated(probabilities[:, i], self._thresholds[label])
                   for label, i in zip(self._labels, self._columns) if label in self.categories}
        scores = [{label: float(values[row]) for label, values in columns.items()} for row in range(len(items))]
        return ProviderScores(scores, embedded.prompt_tokens)
