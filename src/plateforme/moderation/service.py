"""The moderation service (`app.state.moderation`): the served moderation models, their
category sets, and the combination of the operator's providers.

    outcome = await moderation.moderate(who, "mistral-moderation-latest", [ModerationInput("text")])
    outcome.results[0].category_scores, outcome.results[0].categories, outcome.prompt_tokens
    scores, tokens = await moderation.scores(who, items)   # the eleven 2603 scores (guardrails)

Every provider some category uses scores every input (concurrently); a category's score is the
largest of its providers' scores (config.py says why the maximum). A request is metered and
limited through the request pipeline (route "moderations", as /v1/embeddings is): its tokens are
what the providers read. A provider that fails fails the request (ModerationProviderError: the
caller answers 503 naming it), never a silent partial answer.
"""

import asyncio
from dataclasses import dataclass

from plateforme.chat.types import Usage
from plateforme.moderation.cards import moderation_card
from plateforme.moderation.categories import CATEGORIES_2411, CATEGORIES_2603, CategorySet
from plateforme.moderation.config import ModerationConfig
from plateforme.moderation.provider import ModerationInput, ModerationProvider
from plateforme.pipeline.call import GenerationCall

MODEL_2411, MODEL_2603, MODEL_LATEST = "mistral-moderation-2411", "mistral-moderation-2603", "mistral-moderation-latest"
ALIASES = {MODEL_LATEST: MODEL_2603}
ROUTE = "moderations"  # the pipeline's route of moderation requests


class ModerationModelNotFound(LookupError):
    """Not a moderation model served here (HTTP 404); the message lists the served ones."""


class ModerationUnavailable(RuntimeError):
    """Moderation cannot run on this server's set-up (HTTP 503); the message says why and the fix."""


class ModerationInputInvalid(ValueError):
    """Nothing to judge, or an empty text (HTTP 400); the message names the input."""


@dataclass
class ModerationResult:
    category_scores: dict[str, float]
    categories: dict[str, bool]


@dataclass
class ModerationOutcome:
    model: str
    results: list[ModerationResult]
    prompt_tokens: int


@dataclass
class ModerationRequest:
    """One moderation as the request pipeline runs it (route "moderations")."""
    model: str        # the served model name (usage is recorded under it)
    who: object       # the Principal (providers such as the LLM judge act for it)
    items: list[ModerationInput]
    tenant: str | None = None  # set by the pipeline


@dataclass
class ModerationScores:
    scores: list[dict[str, float]]  # over CATEGORIES_2603
    usage: Usage


def thresholds_2411(thresholds: dict[str, float]) -> dict[str, float]:
    """The 2411 set's thresholds from the 2603 ones: its merged category (scored as the larger of
    dangerous and criminal) is flagged when either would be."""
    merged = dict(thresholds)
    merged["dangerous_and_criminal_content"] = min(thresholds["dangerous"], thresholds["criminal"])
    return {c: merged[c] for c in CATEGORIES_2411}


class ModerationService:
    def __init__(self, config: ModerationConfig, providers: dict[str, ModerationProvider], pipeline,
                 window: int = 512, unavailable: str | None = None):
        """`providers`: the config's used providers, built (assembly.py); `window`: the tokens one
        input may have (the embedding model's, shown on the cards); `unavailable`: why this
        server cannot moderate (every request then answers 503 with it), or None."""
        self.config, self.providers, self.pipeline = config, providers, pipeline
        self.window, self.unavailable = window, unavailable
        self.routing = {c: [n for n in config.providers_of(c) if c in providers[n].categories]
                        for c in CATEGORIES_2603} if unavailable is None else {}
        empty = [c for c, names in self.routing.items() if not names]
        if empty:
            raise ValueError(f"the moderation config names no provider that scores {', '.join(empty)}")
        thresholds = {c: config.threshold(c) for c in CATEGORIES_2603}
        self._sets = {MODEL_2603: CategorySet(MODEL_2603, CATEGORIES_2603, thresholds),
                      MODEL_2411: CategorySet(MODEL_2411, CATEGORIES_2411, thresholds_2411(thresholds))}

    def models(self) -> list[str]:
        return [] if self.unavailable else [MODEL_2411, MODEL_2603, MODEL_LATEST]

    def resolve(self, model: str) -> str:
        name = ALIASES.get(model, model)
        if name not in self._sets:
            raise ModerationModelNotFound(f"model {model!r} is not a moderation model; the moderation models are "
                                          f"{', '.join([MODEL_2411, MODEL_2603, MODEL_LATEST])}")
        if self.unavailable:
            raise ModerationUnavailable(self.unavailable)
        return name

    def category_set(self, model: str) -> CategorySet:
        return self._sets[self.resolve(model)]

    async def moderate(self, who, model: str, items: list[ModerationInput], metered: bool = True) -> ModerationOutcome:
        """Scores and flags of `model`'s category set with its default thresholds."""
        category_set = self.category_set(model)
        scores, tokens = await self.scores(who, items, metered, category_set.model)
        results = []
        for row in scores:
            mine = category_set.from_2603(row)
            results.append(ModerationResult(mine, {c: mine[c] > category_set.thresholds[c] for c in mine}))
        return ModerationOutcome(model, results, tokens)

    async def scores(self, who, items: list[ModerationInput], metered: bool = True,
                     model: str = MODEL_2603) -> tuple[list[dict[str, float]], int]:
        """Scores over the eleven 2603 categories, one dict per input, and the tokens read.
        `metered`: through the request pipeline (limits, usage recorded under `model`); False for
        a caller already inside a metered request (it accounts for the tokens itself)."""
        if self.unavailable:
            raise ModerationUnavailable(self.unavailable)
        self._check(items)
        request = ModerationRequest(model, who, list(items))
        if metered:
            result = await self.pipeline.complete(GenerationCall(who, ROUTE, request))
        else:
            result = await self.complete(request)
        return result.scores, result.usage.prompt_tokens

    @staticmethod
    def _check(items: list[ModerationInput]) -> None:
        if not items:
            raise ModerationInputInvalid("nothing to moderate: give at least one input")
        empty = next((i for i, item in enumerate(items) if not item.text.strip()), None)
        if empty is not None:
            raise ModerationInputInvalid(f"input {empty} is empty: every input must have some text")

    async def complete(self, request: ModerationRequest, tally=None) -> ModerationScores:
        """The pipeline's service of route "moderations": every used provider, combined."""
        names = list(dict.fromkeys(n for c in CATEGORIES_2603 for n in self.routing[c]))
        answers = await asyncio.gather(*(self.providers[n].score(request.who, request.items) for n in names))
        by_name = dict(zip(names, answers))
        rows = []
        for i in range(len(request.items)):
            row = {}
            for category in CATEGORIES_2603:
                values = [by_name[n].scores[i][category] for n in self.routing[category]
                          if category in by_name[n].scores[i]]
                row[category] = min(1.0, max(0.0, max(values, default=0.0)))
            rows.append(row)
        tokens = sum(answer.prompt_tokens for answer in answers)
        return ModerationScores(rows, Usage(tokens, sum(answer.completion_tokens for answer in answers)))

    def thresholds(self, model: str) -> dict[str, float]:
        return dict(self.category_set(model).thresholds)

    def cards(self) -> list[dict]:
        """The moderation models' cards (BaseModelCard's shape), for GET /v1/models."""
        if self.unavailable:
            return []
        return [moderation_card(s, [a for a, m in ALIASES.items() if m == name], self.window, self.describe())
                for name, s in self._sets.items()]

    def card(self, model_id: str) -> dict | None:
        """The card of `model_id` (a moderation model or its alias), or None."""
        name = ALIASES.get(model_id, model_id)
        return next((c for c in self.cards() if c["id"] == name), None)

    def describe(self) -> str:
        """Which providers score the categories, in words (the cards' description)."""
        used = ", ".join(f"{n} ({self.config.providers[n].type})" for n in self.config.used_providers())
        return f"moderation by {used}; per category, the largest provider score"

    async def close(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                await close()
