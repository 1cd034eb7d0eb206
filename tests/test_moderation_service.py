"""Fast unit tests of moderation's logic: the operator's config, the combination of providers per
category, the category sets and thresholds, the head provider's calibration, the assembly's
choices, and the cards. The providers here are small real classes implementing the provider
protocol with fixed scores (what is under test is how the service combines them); the head
provider reads vectors from a stand-in for the embedding service (the embeddings themselves are
tested in test_embeddings.py; the shipped head end to end in test_moderation_api.py)."""

import asyncio
import hashlib
import textwrap

import numpy as np
import pytest

from plateforme.api.schemas.models import BaseModelCard
from plateforme.classifiers.head import ClassifierHead, ClassifierTarget
from plateforme.embeddings.service import Embedded, EmbeddingService
from plateforme.models.registry import ModelRegistry
from plateforme.moderation.assembly import build_moderation
from plateforme.moderation.categories import CATEGORIES_2411, CATEGORIES_2603
from plateforme.moderation.config import ModerationConfig, ModerationConfigError, default_config, load_config
from plateforme.moderation.head_provider import DEFAULT_HEAD_PATH, HeadProvider, calibrated, judged_text
from plateforme.moderation.provider import ModerationInput, ModerationProviderError, ProviderScores
from plateforme.moderation.service import (ModerationInputInvalid, ModerationModelNotFound, ModerationService,
                                           ModerationUnavailable)
from plateforme.pipeline.request_pipeline import RequestPipeline
from plateforme.settings import Settings
from plateforme.tenancy.principal import DEV_PRINCIPAL
from plateforme.usage.rate_scopes import RateLimited


class FixedProvider:
    """Scores every input with the same scores; counts its calls."""

    def __init__(self, name: str, scores: dict[str, float], tokens: int = 0, fail: bool = False):
        self.name, self.fixed, self.tokens, self.fail = name, scores, tokens, fail
        self.categories = frozenset(scores)
        self.calls = 0

    async def score(self, who, items):
        self.calls += 1
        if self.fail:
            raise ModerationProviderError(self.name, "its server is down")
        return ProviderScores([dict(self.fixed) for _ in items], self.tokens)


def run(coro):
    return asyncio.run(coro)


def config(**raw) -> ModerationConfig:
    return ModerationConfig.model_validate(raw)


def low(value: float = 0.1) -> dict[str, float]:
    return dict.fromkeys(CATEGORIES_2603, value)


def service(cfg: ModerationConfig, providers: dict) -> ModerationService:
    return ModerationService(cfg, providers, pipeline=None)


# -- config


def test_default_config_is_the_head_for_everything_and_pii_rules_too():
    cfg = default_config()
    assert cfg.providers_of("violence_and_threats") == ["default"]
    assert cfg.providers_of("pii") == ["default", "pii"]
    assert cfg.used_providers() == ["default", "pii"]
    assert all(cfg.threshold(c) == 0.5 for c in CATEGORIES_2603)


def test_config_file_is_read(tmp_path):
    path = tmp_path / "moderation.yaml"
    path.write_text(textwrap.dedent("""
        providers:
          default: {type: head}
          judge: {type: llm_judge, model: smollm2-135m-instruct, categories: [jailbreaking]}
          unused: {type: pii}
        categories:
          "*": [default]
          jailbreaking: [default, judge]
        thresholds: {law: 0.7}
    """))
    cfg = load_config(path)
    assert cfg.providers_of("jailbreaking") == ["default", "judge"]
    assert cfg.providers_of("pii") == ["default"]
    assert cfg.used_providers() == ["default", "judge"]  # "unused" is built by nobody
    assert cfg.threshold("law") == 0.7 and cfg.threshold("health") == 0.5


@pytest.mark.parametrize("body, names", [
    ("providers: {a: {type: head}}\ncategories: {'*': [a], violence: [a]}", ["violence", "unknown category"]),
    ("providers: {a: {type: head}}\ncategories: {'*': [b]}", ["provider 'b' is not declared"]),
    ("providers: {a: {type: head}}\ncategories: {law: [a]}", ["no provider scores", "sexual"]),
    ("providers: {a: {type: head}}\ncategories: {'*': [a]}\nthresholds: {law: 1.5}", ["thresholds.law", "1.5"]),
    ("providers: {j: {type: llm_judge}}\ncategories: {'*': [j]}", ["needs `model`"]),
    ("providers: {g: {type: guard, model: m}}\ncategories: {'*': [g]}", ["base_url"]),
    ("providers: {g: {type: guard, base_url: 'http://x/v1', model: m, category_map: {S1: gore}}}\n"
     "categories: {'*': [g]}", ["S1", "gore"]),
    ("providers: {a: {type: head, colour: red}}\ncategories: {'*': [a]}", ["colour"]),
    ("providers: [", ["not valid YAML"]),
])
def test_bad_config_names_the_cause(tmp_path, body, names):
    path = tmp_path / "moderation.yaml"
    path.write_text(body)
    with pytest.raises(ModerationConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message, message


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ModerationConfigError, match="PLATEFORME_MODERATION_CONFIG"):
        load_config(tmp_path / "absent.yaml")


# -- combination


def test_a_category_takes_the_largest_score_of_its_own_providers_only():
    head = FixedProvider("head", {**low(0.1), "pii": 0.2, "law": 0.3}, tokens=7)
    rules = FixedProvider("rules", {"pii": 1.0})
    judge = FixedProvider("judge", {**low(0.9)}, tokens=30)  # declared for jailbreaking only
    cfg = config(providers={"head": {"type": "head"}, "rules": {"type": "pii"},
                            "judge": {"type": "llm_judge", "model": "m"}},
                 categories={"*": ["head"], "pii": ["head", "rules"], "jailbreaking": ["head", "judge"]})
    svc = service(cfg, {"head": head, "rules": rules, "judge": judge})
    scores, tokens = run(svc.scores(DEV_PRINCIPAL, [ModerationInput("a"), ModerationInput("b")], metered=False))
    assert len(scores) == 2 and set(scores[0]) == set(CATEGORIES_2603)
    assert scores[0]["pii"] == 1.0                     # the rules' alarm wins over the head's 0.2
    assert scores[0]["jailbreaking"] == 0.9            # the judge where it is named
    assert scores[0]["violence_and_threats"] == 0.1    # not the judge's 0.9: it is not named there
    assert scores[0]["law"] == 0.3
    assert tokens == 37                                # what every provider read
    assert (head.calls, rules.calls, judge.calls) == (1, 1, 1)  # each provider once for all inputs


def test_moderate_flags_at_the_thresholds_and_derives_2411():
    head = FixedProvider("head", {**low(0.1), "dangerous": 0.2, "criminal": 0.7, "law": 0.65})
    cfg = config(providers={"head": {"type": "head"}}, categories={"*": ["head"]},
                 thresholds={"law": 0.6, "dangerous": 0.3})
    svc = service(cfg, {"head": head})
    result = run(svc.moderate(DEV_PRINCIPAL, "mistral-moderation-latest", [ModerationInput("x")], metered=False))
    assert result.model == "mistral-moderation-latest"
    one = result.results[0]
    assert list(one.category_scores) == list(CATEGORIES_2603)
    assert one.categories["criminal"] and one.categories["law"] and not one.categories["dangerous"]
    assert not one.categories["health"]
    old = run(svc.moderate(DEV_PRINCIPAL, "mistral-moderation-2411", [ModerationInput("x")], metered=False)).results[0]
    assert list(old.category_scores) == list(CATEGORIES_2411)
    assert old.category_scores["dangerous_and_criminal_content"] == 0.7
    assert old.categories["dangerous_and_criminal_content"]
    assert svc.thresholds("mistral-moderation-2411")["dangerous_and_criminal_content"] == 0.3  # min of the two
    # A score at its threshold is not flagged, one above it is (as guardrails decide: "above the threshold").
    at = service(cfg, {"head": FixedProvider("head", {**low(0.1), "law": 0.6, "dangerous": 0.31})})
    edge = run(at.moderate(DEV_PRINCIPAL, "mistral-moderation-2603", [ModerationInput("x")], metered=False)).results[0]
    assert not edge.categories["law"] and edge.categories["dangerous"]


def test_unknown_model_bad_input_and_failing_provider():
    ok = FixedProvider("head", low())
    svc = service(config(providers={"head": {"type": "head"}}, categories={"*": ["head"]}), {"head": ok})
    with pytest.raises(ModerationModelNotFound, match="mistral-moderation-2411"):
        svc.category_set("mistral-moderation-9999")
    with pytest.raises(ModerationInputInvalid, match="at least one"):
        run(svc.scores(DEV_PRINCIPAL, [], metered=False))
    with pytest.raises(ModerationInputInvalid, match="input 1 is empty"):
        run(svc.scores(DEV_PRINCIPAL, [ModerationInput("a"), ModerationInput(" ")], metered=False))
    broken = service(config(providers={"head": {"type": "head"}, "guard": {"type": "guard", "base_url": "http://x/v1",
                                                                           "model": "g"}},
                            categories={"*": ["head"], "violence_and_threats": ["head", "guard"]}),
                     {"head": ok, "guard": FixedProvider("guard", {"violence_and_threats": 0.0}, fail=True)})
    with pytest.raises(ModerationProviderError, match="'guard' failed: its server is down"):
        run(broken.scores(DEV_PRINCIPAL, [ModerationInput("a")], metered=False))


def test_a_category_no_built_provider_scores_is_refused():
    only_pii = FixedProvider("rules", {"pii": 1.0})
    with pytest.raises(ValueError, match="no provider that scores sexual"):
        service(config(providers={"rules": {"type": "pii"}}, categories={"*": ["rules"]}), {"rules": only_pii})


def test_an_unavailable_service_says_why():
    svc = ModerationService(default_config(), {}, None, unavailable="moderation is not available: no e5")
    assert svc.models() == [] and svc.cards() == [] and svc.card("mistral-moderation-2603") is None
    with pytest.raises(ModerationUnavailable, match="no e5"):
        svc.category_set("mistral-moderation-latest")
    with pytest.raises(ModerationUnavailable, match="no e5"):
        run(svc.scores(DEV_PRINCIPAL, [ModerationInput("a")]))


# -- head provider


class StandInEmbeddings:
    """Returns the vector registered for each text (and 3 tokens a text)."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors, self.asked = vectors, []

    async def embed(self, model, texts, input_type):
        self.asked.append((model, list(texts), input_type))
        return Embedded(np.stack([self.vectors[t] for t in texts]).astype(np.float32), 3 * len(texts))


def two_label_head(thresholds: dict) -> ClassifierHead:
    target = ClassifierTarget("moderation", ("violence_and_threats", "pii", "not_a_category"), 1.0, "multi_class")
    weights = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]], dtype=np.float32)
    return ClassifierHead((target,), "e5", 2, {"moderation": weights},
                          {"moderation": np.zeros(3, dtype=np.float32)}, "query", metadata={"thresholds": thresholds})


def test_calibration_maps_the_threshold_to_one_half_and_keeps_the_order():
    p = np.linspace(0, 1, 101)
    out = calibrated(p, 0.2)
    assert out[0] == 0 and out[-1] == 1 and abs(calibrated(np.array([0.2]), 0.2)[0] - 0.5) < 1e-12
    assert np.all(np.diff(out) > 0)
    assert np.array_equal(out >= 0.5, p >= 0.2)


def test_head_provider_scores_its_labels_calibrated():
    embeddings = StandInEmbeddings({"threat": np.array([1.0, 0.0]), "email": np.array([0.0, 1.0])})
    provider = HeadProvider("default", two_label_head({"violence_and_threats": 0.9}), embeddings)
    assert provider.categories == {"violence_and_threats", "pii"}  # labels outside the 2603 set are not scores
    answer = run(provider.score(DEV_PRINCIPAL, [ModerationInput("threat"), ModerationInput("email")]))
    assert answer.prompt_tokens == 6
    assert embeddings.asked == [("e5", ["threat", "email"], "query")]
    sigmoid4 = 1 / (1 + np.exp(-4.0))  # 0.982
    assert answer.scores[0]["violence_and_threats"] == pytest.approx(0.5 + 0.5 * (sigmoid4 - 0.9) / 0.1)
    assert answer.scores[1]["violence_and_threats"] == pytest.approx(0.5 * 0.5 / 0.9)  # p 0.5 below its 0.9
    assert answer.scores[1]["pii"] == pytest.approx(sigmoid4)  # no threshold in the head: 0.5, identity


def test_a_conversation_turn_is_judged_with_its_context():
    item = ModerationInput("Sure, here is how.", ({"role": "user", "content": "How do I make a bomb?"},), "assistant")
    assert judged_text(item) == "user: How do I make a bomb?\nassistant: Sure, here is how."
    assert judged_text(ModerationInput("alone")) == "alone"


def test_a_fine_tunes_head_is_loaded_at_first_use_and_a_failed_load_is_a_provider_error():
    embeddings = StandInEmbeddings({"threat": np.array([1.0, 0.0])})
    loads = []

    async def load():
        loads.append(1)
        return two_label_head({})

    provider = HeadProvider("tuned", None, embeddings, load=load)
    assert provider.categories == set(CATEGORIES_2603)  # unknown until loaded
    run(provider.score(DEV_PRINCIPAL, [ModerationInput("threat")]))
    run(provider.score(DEV_PRINCIPAL, [ModerationInput("threat")]))
    assert loads == [1] and provider.categories == {"violence_and_threats", "pii"}

    def gone():
        raise LookupError("no classifier fine-tune 'ft:x' on this platform")

    with pytest.raises(ModerationProviderError, match="cannot load its classifier head: no classifier fine-tune"):
        run(HeadProvider("tuned", None, embeddings, load=gone).score(DEV_PRINCIPAL, [ModerationInput("threat")]))


def test_a_head_missing_wanted_categories_is_refused():
    with pytest.raises(ValueError, match="no label for selfharm"):
        HeadProvider("mine", two_label_head({}), None, frozenset({"pii", "selfharm"}))


def test_the_shipped_head_is_a_moderation_head_over_the_default_embeddings():
    head = ClassifierHead.load(DEFAULT_HEAD_PATH)
    assert head.embedding_model == "multilingual-e5-small" and head.dimension == 384
    provider = HeadProvider("default", head, None)
    assert provider.categories == set(CATEGORIES_2603)
    thresholds = head.metadata["thresholds"]
    assert set(thresholds) == set(CATEGORIES_2603) and all(0 < t < 1 for t in thresholds.values())
    # Trained on the seed set as it is: a changed seed file needs scripts/train_moderation_head.py again.
    seed = DEFAULT_HEAD_PATH.parent.parent / "seed"
    trained_on = {name: f["sha256"] for name, f in head.metadata["seed_set"]["files"].items()}
    assert trained_on == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(seed.glob("*.jsonl"))}


# -- assembly and cards


def _chat_only_registry() -> ModelRegistry:
    spec = ModelRegistry.from_file(None).get("smollm2-135m-instruct")
    return ModelRegistry([spec])


def test_default_config_without_the_embedding_model_leaves_moderation_unavailable(tmp_path):
    registry = _chat_only_registry()
    pipeline = RequestPipeline(None, None, None, {})
    svc = build_moderation(Settings(data_dir=tmp_path), registry, EmbeddingService(registry, None, 8, 0), pipeline)
    assert svc.unavailable and "multilingual-e5-small" in svc.unavailable and "PLATEFORME_MODERATION_CONFIG" in \
        svc.unavailable
    assert pipeline.services["moderations"] is svc


def test_an_explicit_config_that_cannot_be_served_stops_the_server(tmp_path):
    path = tmp_path / "moderation.yaml"
    path.write_text("providers: {j: {type: llm_judge, model: nowhere}}\ncategories: {'*': [j]}\n")
    registry = _chat_only_registry()
    with pytest.raises(ModerationConfigError, match="'nowhere' is not served"):
        build_moderation(Settings(data_dir=tmp_path, moderation_config=path), registry,
                         EmbeddingService(registry, None, 8, 0), RequestPipeline(None, None, None, {}))


def test_a_rules_only_config_needs_no_embedding_model(tmp_path):
    path = tmp_path / "moderation.yaml"
    path.write_text("providers: {rules: {type: pii}, h: {type: head}}\ncategories: {'*': [h], pii: [rules]}\n")
    registry = _chat_only_registry()
    with pytest.raises(ModerationConfigError, match="multilingual-e5-small"):  # h needs it
        build_moderation(Settings(data_dir=tmp_path, moderation_config=path), registry,
                         EmbeddingService(registry, None, 8, 0), RequestPipeline(None, None, None, {}))


def test_cards_have_the_card_shape_categories_and_thresholds():
    head = FixedProvider("head", low())
    svc = service(config(providers={"head": {"type": "head"}}, categories={"*": ["head"]}, thresholds={"law": 0.7}),
                  {"head": head})
    cards = svc.cards()
    assert [c["id"] for c in cards] == ["mistral-moderation-2603", "mistral-moderation-2411"]
    for card in cards:  # the live API test validates them against Mistral's spec, through GET /v1/models
        assert BaseModelCard.model_validate(card).model_dump().items() <= {**card, "dimension": None, "window": None,
                                                                            "windowed": None}.items()
        assert card["capabilities"]["moderation"] and not card["capabilities"]["completion_chat"]
    assert cards[0]["aliases"] == ["mistral-moderation-latest"]
    assert cards[0]["categories"] == list(CATEGORIES_2603) and cards[1]["categories"] == list(CATEGORIES_2411)
    assert cards[0]["default_thresholds"]["law"] == 0.7 and cards[1]["default_thresholds"]["health"] == 0.5
    assert svc.card("mistral-moderation-latest")["id"] == "mistral-moderation-2603"
    assert svc.card("smollm2-135m-instruct") is None


def test_judge_and_guard_are_built_from_the_config(tmp_path, monkeypatch):
    from plateforme.moderation.guard_model import GuardModelProvider
    from plateforme.moderation.llm_judge import LlmJudgeProvider

    path = tmp_path / "moderation.yaml"
    path.write_text(textwrap.dedent("""
        providers:
          judge: {type: llm_judge, model: smollm2-135m-instruct}
          guard: {type: guard, base_url: "http://127.0.0.1:9/v1", model: llama-guard, api_key_env: TEST_GUARD_KEY,
                  category_map: {S1: violence_and_threats, S2: [criminal, dangerous]}, timeout_s: 2,
                  categories: [violence_and_threats, criminal]}
          rules: {type: pii}
        categories:
          "*": [judge]
          violence_and_threats: [judge, guard]
          criminal: [guard, judge]
          pii: [judge, rules]
    """))
    settings = Settings(data_dir=tmp_path, moderation_config=path)
    registry = _chat_only_registry()
    build = lambda: build_moderation(settings, registry, EmbeddingService(registry, None, 8, 0),  # noqa: E731
                                     RequestPipeline(None, None, None, {"chat": object()}))
    with pytest.raises(ModerationConfigError, match="TEST_GUARD_KEY"):
        build()
    monkeypatch.setenv("TEST_GUARD_KEY", "secret")
    svc = build()
    assert isinstance(svc.providers["judge"], LlmJudgeProvider)
    assert isinstance(svc.providers["guard"], GuardModelProvider)
    assert svc.providers["guard"].categories == {"violence_and_threats", "criminal"}
    assert svc.routing["criminal"] == ["guard", "judge"] and svc.routing["pii"] == ["judge", "rules"]
    assert svc.routing["law"] == ["judge"]
    assert "judge (llm_judge), guard (guard), rules (pii)" in svc.cards()[0]["description"]


class CountingBilling:
    """The two calls the pipeline makes of billing (usage/billing.py): admit, then record; refuses
    once `limit` requests were admitted, as a workspace over its requests-per-minute would be."""

    def __init__(self, limit: int):
        self.limit, self.admitted, self.records = limit, 0, []

    async def admit(self, who):
        if self.admitted >= self.limit:
            raise RateLimited("requests per minute", 7)
        self.admitted += 1

    async def record(self, who, model, route, request_id, prompt_tokens, completion_tokens, **extra):
        self.records.append((who.workspace_id, model, route, prompt_tokens, completion_tokens))


def test_a_moderation_is_limited_and_metered_through_the_pipeline():
    billing = CountingBilling(limit=1)
    head = FixedProvider("head", low(), tokens=5)
    svc = service(config(providers={"head": {"type": "head"}}, categories={"*": ["head"]}), {"head": head})
    svc.pipeline = RequestPipeline(billing, None, None, {"moderations": svc})
    items = [ModerationInput("a"), ModerationInput("b")]
    outcome = run(svc.moderate(DEV_PRINCIPAL, "mistral-moderation-latest", items))
    assert outcome.prompt_tokens == 5 and len(outcome.results) == 2
    assert billing.records == [(DEV_PRINCIPAL.workspace_id, "mistral-moderation-2603", "moderations", 5, 0)]
    with pytest.raises(RateLimited):
        run(svc.moderate(DEV_PRINCIPAL, "mistral-moderation-2411", [ModerationInput("a")]))
    assert head.calls == 1  # refused before any provider ran
    run(svc.scores(DEV_PRINCIPAL, [ModerationInput("a")], metered=False))  # a caller already metered
    assert len(billing.records) == 1 and billing.admitted == 1
