"""POST /v1/moderations and /v1/chat/moderations on a live server with the default moderation
set-up (the shipped head over multilingual-e5-small, plus the PII rules), through the mistralai
SDK's classifiers.moderate and moderate_chat, both category sets and latest, answers validated
against Mistral's spec; clearly harmful and benign texts in English and French; bad input;
usage. One server for the module, serving only the default embedding model (moderation needs no
chat model)."""

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import MistralError
from spec_schema import validate, validate_response

from plateforme.models.registry import ModelRegistry
from plateforme.moderation.categories import CATEGORIES_2411, CATEGORIES_2603

E5 = "multilingual-e5-small"
SETS = {"mistral-moderation-2411": CATEGORIES_2411, "mistral-moderation-2603": CATEGORIES_2603,
        "mistral-moderation-latest": CATEGORIES_2603}
THREAT_EN = "I'm going to find you tonight and kill you and your whole family."
THREAT_FR = "Je vais te retrouver ce soir et te tuer, toi et toute ta famille."
BENIGN_EN = "What time does your customer service open on Monday morning?"
BENIGN_FR = "À quelle heure ouvre votre service client le lundi matin ?"
IBAN = "Please wire the deposit to my account FR76 3000 6000 0112 3456 7890 189 before Friday."


@pytest.fixture(scope="module")
def server(start_server):
    e5 = ModelRegistry.from_file(None).get(E5).model_dump(exclude_defaults=True)
    return start_server([e5])


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(server):
    with Mistral(api_key="unused", server_url=server.url) as client:
        yield client


def _post(http, path: str, body: dict) -> dict:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    validate_response(path, "post", 200, response.json())
    return response.json()


def _flagged(result) -> set[str]:
    return {c for c, flag in result.categories.items() if flag}


@pytest.mark.parametrize("model", list(SETS))
def test_moderate_through_the_sdk_scores_harm_and_leaves_the_benign(sdk, http, model):
    texts = [THREAT_EN, BENIGN_EN, THREAT_FR, BENIGN_FR]
    answer = sdk.classifiers.moderate(model=model, inputs=texts)
    assert answer.model == model and answer.id.startswith("mod-")
    assert len(answer.results) == 4
    for result in answer.results:
        assert list(result.category_scores) == list(SETS[model]) and set(result.categories) == set(SETS[model])
        assert all(0.0 <= s <= 1.0 for s in result.category_scores.values())
    threat_en, benign_en, threat_fr, benign_fr = answer.results
    for threat in (threat_en, threat_fr):
        assert "violence_and_threats" in _flagged(threat), threat.category_scores
    for benign in (benign_en, benign_fr):
        assert not _flagged(benign), benign.category_scores
    # The same through HTTP, validated against the spec; one text alone scores as in a batch.
    body = _post(http, "/v1/moderations", {"model": model, "input": THREAT_FR})
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]
    assert body["results"][0]["category_scores"]["violence_and_threats"] == \
        pytest.approx(threat_fr.category_scores["violence_and_threats"], abs=1e-3)


def test_pii_rules_flag_a_valid_iban_only(http):
    good, bad = _post(http, "/v1/moderations", {"model": "mistral-moderation-latest",
                                                "input": [IBAN, IBAN.replace("189", "188")]})["results"]
    assert good["category_scores"]["pii"] == 1.0 and good["categories"]["pii"]
    assert bad["category_scores"]["pii"] < 1.0  # a failed checksum is not an IBAN (the head may still suspect)


@pytest.mark.parametrize("model", list(SETS))
def test_moderate_chat_through_the_sdk_judges_the_last_turn(sdk, http, model):
    threatened = [{"role": "user", "content": "Can you help me write a letter to my neighbour?"},
                  {"role": "assistant", "content": "Of course, what would you like to say?"},
                  {"role": "user", "content": THREAT_EN}]
    calm = [{"role": "user", "content": BENIGN_FR},
            {"role": "assistant", "content": "Notre service client ouvre à 9 heures du lundi au vendredi."}]
    one = sdk.classifiers.moderate_chat(model=model, inputs=threatened)
    assert one.model == model and len(one.results) == 1
    assert "violence_and_threats" in _flagged(one.results[0])
    both = sdk.classifiers.moderate_chat(model=model, inputs=[threatened, calm])
    assert len(both.results) == 2 and list(both.results[1].category_scores) == list(SETS[model])
    assert "violence_and_threats" in _flagged(both.results[0]) and not _flagged(both.results[1])
    body = _post(http, "/v1/chat/moderations", {"model": model, "input": [calm]})
    assert len(body["results"]) == 1 and body["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("path, body, status, words", [
    ("/v1/moderations", {"model": "mistral-moderation-9999", "input": "hi"}, 404, ["mistral-moderation-2411"]),
    ("/v1/moderations", {"model": E5, "input": "hi"}, 404, ["not a moderation model"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": []}, 400, ["at least one"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": ["ok", "  "]}, 400, ["input[1] is empty"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": ["ok", 3]}, 400, ["input[1] is not a string"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": {"text": "x"}}, 400, ["string or a list"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest"}, 422, ["input"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": ["x"] * 1025}, 400,
     ["1025 texts", "more than the 1024", "several requests"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest", "input": [[{"role": "user", "content": "x"}]] * 1025},
     400, ["1025 conversations", "more than the 1024"]),
    ("/v1/moderations", {"model": "mistral-moderation-latest", "input": "x", "safe": 1}, 422, ["safe"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest", "input": []}, 400, ["conversation"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest", "input": [[]]}, 400, ["input[0]", "empty"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest", "input": [{"role": "robot", "content": "x"}]},
     400, ["input[0]"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest",
                              "input": [{"role": "user", "content": "hi"}, [{"role": "user", "content": "x"}]]},
     400, ["mixes"]),
    ("/v1/chat/moderations", {"model": "mistral-moderation-latest",
                              "input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
     400, ["input[1]", "last message", "no text"]),
])
def test_bad_input_is_a_clear_4xx(http, path, body, status, words):
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["object"] == "error" and error["code"] == str(status)
    for word in words:
        assert word in error["message"], error["message"]


def test_the_sdk_raises_on_bad_input(sdk):
    with pytest.raises(MistralError) as caught:
        sdk.classifiers.moderate(model="mistral-moderation-latest", inputs=[])
    assert caught.value.status_code == 400


def test_usage_is_recorded_under_the_moderation_model(http):
    def usage() -> dict:
        rows = http.get("/v1/usage", params={"group_by": "model"}).json()["data"]
        return {r["model"]: r for r in rows}

    before = usage().get("mistral-moderation-2603", {"requests": 0, "prompt_tokens": 0})
    answers = [_post(http, "/v1/moderations", {"model": "mistral-moderation-latest", "input": [BENIGN_EN, THREAT_FR]}),
               _post(http, "/v1/chat/moderations", {"model": "mistral-moderation-2603",
                                                    "input": [{"role": "user", "content": BENIGN_FR}]})]
    after = usage()["mistral-moderation-2603"]
    assert after["requests"] - before["requests"] == 2
    assert after["prompt_tokens"] - before["prompt_tokens"] == sum(a["usage"]["prompt_tokens"] for a in answers)
    assert after["completion_tokens"] == 0


def test_moderation_cards_are_listed_with_their_categories_and_thresholds(http):
    cards = {c["id"]: c for c in http.get("/v1/models").json()["data"]}
    for name in ("mistral-moderation-2411", "mistral-moderation-2603"):
        card = cards[name]
        validate(card, "BaseModelCard")
        assert card["capabilities"]["moderation"] and card["categories"] == list(SETS[name])
        assert set(card["default_thresholds"]) == set(SETS[name])
    latest = http.get("/v1/models/mistral-moderation-latest")
    assert latest.status_code == 200 and latest.json()["id"] == "mistral-moderation-2603"
