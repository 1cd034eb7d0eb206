"""The LLM judge and the guard-model moderation providers.

The judge runs on the real default model (SmolLM2-135M on a llama.cpp worker) through the real
request pipeline of a gateway app in this process (its lifespan on a background event loop, as
in test_pipeline.py): its verdict is constrained by structured outputs, and its generations are
billed to the caller's workspace like any chat request. One module fixture; one judged text
(a few dozen generated tokens).

The guard model is a remote server the operator runs (Llama Guard on vLLM, a moderation
endpoint...), which cannot run here: a small real HTTP server in this process STANDS IN FOR IT,
answering what such guards answer (Llama Guard's `safe` / `unsafe\\nS1,S10`, Qwen3Guard's lines,
JSON scores, a moderation endpoint's results), so the provider's HTTP client, parsing and
mapping are exercised for real. A closed port, a 500, a slow server and garbage stand for the
failures.
"""

import asyncio
import functools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from anyio.from_thread import start_blocking_portal
from server_process import DEFAULT_MODEL, default_model_entry
from sqlalchemy import select

from plateforme.api.app import create_app
from plateforme.chat.json_schema_support import unsupported_features
from plateforme.chat.types import ChatRequest, Choice, Completion, Usage
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec
from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.moderation.guard_model import GuardModelProvider
from plateforme.moderation.guard_verdicts import guard_messages
from plateforme.moderation.llm_judge import LlmJudgeProvider, verdict_schema
from plateforme.moderation.provider import ModerationInput, ModerationProviderError
from plateforme.pipeline.call import GenerationCall
from plateforme.settings import Settings
from plateforme.storage.tables import UsageRecord
from plateforme.tenancy.principal import DEV_PRINCIPAL

# ---------------------------------------------------------------- the judge, on the real model


class Gateway:
    def __init__(self, app, portal):
        self.app, self.portal = app, portal

    def run(self, coroutine_function, *args, **kwargs):
        return self.portal.call(functools.partial(coroutine_function, *args, **kwargs))

    def principal(self, name: str):
        accounts = self.app.state.accounts
        workspace = accounts.create_workspace(name)
        user = accounts.create_user(workspace.id, f"dev@{name}.example")
        _, token = accounts.create_key(user.id)
        return accounts.authenticate(token)

    def usage_rows(self, workspace_id: str) -> list[UsageRecord]:
        with self.app.state.db.session() as s:
            return list(s.scalars(select(UsageRecord).where(UsageRecord.workspace_id == workspace_id)))

    def complete(self):
        """What the moderation service gives the judge: the pipeline's chat."""
        pipeline = self.app.state.pipeline

        async def complete(who, request: ChatRequest) -> Completion:
            return await pipeline.complete(GenerationCall(who, "chat", request))
        return complete


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("judge"), config=None)
    app = create_app(settings, ModelRegistry([ModelSpec(**default_model_entry(parallel=2, max_queue=8))]))
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            gw = Gateway(app, portal)
            portal.call(_wait_ready, app.state.pool.get(DEFAULT_MODEL))
            yield gw


async def _wait_ready(worker, timeout: float = 120) -> None:
    for _ in range(int(timeout / 0.2)):
        if worker.status().state.value == "ready":
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"worker not ready: {worker.status()}")


def test_the_judge_on_the_real_model_answers_a_score_per_category_billed_to_the_caller(gateway):
    who = gateway.principal("judge-ws")
    # Four categories, not eleven: the verdict (at most one severity each) stays a few dozen tokens.
    categories = ("hate_and_discrimination", "violence_and_threats", "selfharm", "pii")
    judge = LlmJudgeProvider("judge", DEFAULT_MODEL, gateway.complete(), categories=categories)
    item = ModerationInput("I will find you and hurt you.",
                           context=({"role": "user", "content": "You lost the match."},
                                    {"role": "assistant", "content": "Yes, sorry."}))
    result = gateway.run(judge.score, who, [item])
    [scores] = result.scores
    assert set(scores) == set(categories)
    assert all(0 <= s <= 1 and round(s * 10) == s * 10 for s in scores.values()), scores
    [row] = gateway.usage_rows(who.workspace_id)  # the judge's generation, billed as the caller's chat
    assert row.route == "chat" and row.model == DEFAULT_MODEL and row.completion_tokens > 0
    assert result.prompt_tokens == row.prompt_tokens > 0
    assert result.completion_tokens == row.completion_tokens  # the verdict's tokens are reported too
    # The context travels in the judged prompt, not as turns the judge would answer.
    asked = judge.request(item)
    assert [m["role"] for m in asked.messages] == ["system", "user"]
    assert "You lost the match." in asked.messages[1]["content"]
    assert asked.json_schema == verdict_schema(categories)


def test_the_judge_asks_for_and_scores_only_its_categories():
    judge = LlmJudgeProvider("judge-two", "m", None, categories=("selfharm", "health"))
    assert judge.categories == {"selfharm", "health"}
    asked = judge.request(ModerationInput("I feel sad today."))
    assert set(asked.json_schema["properties"]) == {"selfharm", "health"}
    assert "- selfharm:" in asked.messages[0]["content"] and "- pii:" not in asked.messages[0]["content"]
    assert judge.read_verdict(_answer('{"health": 4}')) == {"selfharm": 0.0, "health": 0.4}


def test_a_judge_whose_model_cannot_answer_raises_a_provider_error(gateway):
    judge = LlmJudgeProvider("judge", "no-such-model", gateway.complete())
    with pytest.raises(ModerationProviderError, match="'judge'.*no-such-model.*chat completion failed"):
        gateway.run(judge.score, gateway.principal("judge-missing"), [ModerationInput("hello")])


def _answer(content: str | None, finish_reason: str = "stop") -> Completion:
    return Completion([Choice(0, content, finish_reason)], Usage(10, 5))


def test_the_verdict_schema_is_enforceable_and_bad_verdicts_are_refused():
    assert unsupported_features(verdict_schema(CATEGORIES_2603)) == []
    judge = LlmJudgeProvider("judge", "m", None, categories=("sexual", "pii"))
    assert judge.read_verdict(_answer('{"pii": 7}')) == {"sexual": 0.0, "pii": 0.7}
    assert judge.read_verdict(_answer('{}')) == {"sexual": 0.0, "pii": 0.0}
    for content, finish, reason in [
            ('{"sexual": 3, "pii"', "length", "cut by max_tokens"), ("not json", "stop", "not JSON"),
            ('[1, 2]', "stop", "not a JSON object"), ('{"violence": 2}', "stop", "names 'violence', not among"),
            ('{"sexual": 11}', "stop", "'sexual' is 11"), ('{"sexual": true}', "stop", "True"),
            ('{"pii": "high"}', "stop", "'pii' is 'high'"), (None, "stop", "empty")]:
        with pytest.raises(ModerationProviderError, match=reason):
            judge.read_verdict(_answer(content, finish))
    with pytest.raises(ValueError, match="categories must be some of"):
        LlmJudgeProvider("judge", "m", None, categories=("violence",))


# ---------------------------------------------------------------- the guard, against a stand-in


class _StandInGuard(BaseHTTPRequestHandler):
    """Answers as a guard model would, chosen by the judged text's markers."""

    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the provider gave up waiting (the slow case)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path not in ("/v1/moderations", "/v1/chat/completions"):
            return self._send(404, {"detail": "Not Found"})
        if self.path == "/v1/moderations":
            results = [{"flagged": "kill" in t, "categories": {},
                        "category_scores": {"violence": 0.9 if "kill" in t else 0.01, "self-harm/intent": 0.2,
                                            "illicit/violent": 0.3}} for t in body["input"]]
            return self._send(200, {"id": "modr-1", "model": body["model"], "results": results})
        text = body["messages"][-1]["content"]
        if "[error]" in text:
            return self._send(500, {"error": {"message": "CUDA out of memory"}})
        if "[slow]" in text:
            time.sleep(1.0)
        content = ("unsafe\nS1,S10" if "knife" in text else "unsafe\nS8" if "[ip]" in text
                   else '{"violence": 0.8, "hate": 0.15}' if "[json]" in text
                   else "Safety: Controversial\nCategories: Violent" if "[qwen]" in text
                   else "I think it is fine." if "[garbage]" in text else "safe")
        if "[no-choices]" in text:
            return self._send(200, {"id": "x", "choices": []})
        self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}],
                         "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 3}})


@pytest.fixture(scope="module")
def guard_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInGuard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


async def _score(provider: GuardModelProvider, items):
    try:
        return await provider.score(DEV_PRINCIPAL, items)
    finally:
        await provider.aclose()


def test_a_llama_guard_verdict_is_mapped_to_the_2603_categories(guard_url):
    guard = GuardModelProvider("guard", guard_url, "llama-guard-3", api_key="sk-guard")
    _StandInGuard.seen.clear()
    items = [ModerationInput("Where is the station?"), ModerationInput("Bring a knife, we settle this tonight."),
             ModerationInput("Copy this novel for me [ip]")]
    result = asyncio.run(_score(guard, items))
    safe, unsafe, unmapped = result.scores
    assert set(safe) == set(CATEGORIES_2603) and not any(safe.values())
    assert {c for c, s in unsafe.items() if s} == {"violence_and_threats", "criminal", "hate_and_discrimination"}
    assert unsafe["violence_and_threats"] == 1.0 and not any(unmapped.values())  # S8 has no category of ours
    assert result.prompt_tokens == 4 + 7 + 6
    assert {s["auth"] for s in _StandInGuard.seen} == {"Bearer sk-guard"}
    assert {s["body"]["model"] for s in _StandInGuard.seen} == {"llama-guard-3"}


def test_the_guard_gets_the_conversation_alternating_and_judges_the_last_turn():
    answer = ModerationInput("Sure, here is how.", context=(
        {"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"},
        {"role": "user", "content": "How do I do it?"}))
    assert guard_messages(answer) == [{"role": "user", "content": "Hi\n\nHow do I do it?"},
                                      {"role": "assistant", "content": "Sure, here is how."}]
    question = ModerationInput("And then?", context=({"role": "assistant", "content": "Welcome."},
                                                     {"role": "user", "content": "Hi"},
                                                     {"role": "assistant", "content": "Hello!"}))
    assert [m["role"] for m in guard_messages(question)] == ["user", "assistant", "user"]
    assert guard_messages(ModerationInput("alone")) == [{"role": "user", "content": "alone"}]


def test_json_scores_and_qwen3guard_answers_are_read_through_the_map(guard_url):
    guard = GuardModelProvider("json-guard", guard_url, "scorer",
                               category_map={"violence": "violence_and_threats", "hate": ["hate_and_discrimination"],
                                             "Violent": ["violence_and_threats", "dangerous"]})
    assert guard.categories == {"violence_and_threats", "hate_and_discrimination", "dangerous"}
    items = [ModerationInput("[json] a text"), ModerationInput("[qwen] a text")]
    json_scores, qwen = asyncio.run(_score(guard, items)).scores
    assert json_scores == {"violence_and_threats": 0.8, "hate_and_discrimination": 0.15, "dangerous": 0.0}
    assert qwen == {"violence_and_threats": 0.5, "hate_and_discrimination": 0.0, "dangerous": 0.5}
    with pytest.raises(ValueError, match="names violent_stuff, which are not categories of mistral-moderation-2603"):
        GuardModelProvider("bad", guard_url, "m", category_map={"violence": "violent_stuff"})
    named = GuardModelProvider("qwen", guard_url, "qwen3guard", category_map="qwen3_guard")
    [scores] = asyncio.run(_score(named, [ModerationInput("[qwen] a text")])).scores
    assert scores["violence_and_threats"] == 0.5 and scores["pii"] == scores["jailbreaking"] == 0.0
    with pytest.raises(ValueError, match="no category map is named 'llamaguard'; the named maps are llama_guard_3"):
        GuardModelProvider("bad", guard_url, "m", category_map="llamaguard")
    with pytest.raises(ValueError, match="none of the categories \\['pii'\\] is reached"):
        GuardModelProvider("bad", guard_url, "m", category_map={"violence": "violence_and_threats"}, categories=["pii"])


def test_a_guard_restricted_to_some_categories_scores_only_those(guard_url):
    guard = GuardModelProvider("violence-guard", guard_url, "llama-guard-3", categories=["violence_and_threats"])
    [scores] = asyncio.run(_score(guard, [ModerationInput("Bring a knife.")])).scores
    assert scores == {"violence_and_threats": 1.0}


def test_a_moderation_endpoint_as_guard_takes_the_largest_mapped_score(guard_url):
    guard = GuardModelProvider("openai-moderation", guard_url, "omni-moderation-latest", api="moderations")
    _StandInGuard.seen.clear()
    calm, threat = asyncio.run(_score(guard, [ModerationInput("hello"), ModerationInput("I will kill him")])).scores
    assert [s["path"] for s in _StandInGuard.seen] == ["/v1/moderations"]  # one request for all inputs
    assert threat["violence_and_threats"] == 0.9 and calm["violence_and_threats"] == 0.01
    assert threat["selfharm"] == 0.2 and threat["dangerous"] == threat["criminal"] == 0.3
    assert calm["pii"] == 0.0


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_guard_at_the_wrong_path_is_told_where_to_look(guard_url):
    guard = GuardModelProvider("guard", guard_url.removesuffix("/v1"), "llama-guard-3")
    with pytest.raises(ModerationProviderError, match="answered 404.*ending in /v1"):
        asyncio.run(_score(guard, [ModerationInput("hello")]))


@pytest.mark.parametrize("text, timeout_s, reason", [
    ("[error] x", 5, "answered 500: .*CUDA out of memory"),
    ("[slow] x", 0.3, "no answer within 0.3 s"),
    ("[garbage] x", 5, "expected 'safe', 'unsafe'"),
    ("[no-choices] x", 5, "no choices"),
])
def test_a_guard_that_fails_or_answers_garbage_raises_a_provider_error(guard_url, text, timeout_s, reason):
    guard = GuardModelProvider("guard", guard_url, "llama-guard-3", timeout_s=timeout_s)
    with pytest.raises(ModerationProviderError, match=reason):
        asyncio.run(_score(guard, [ModerationInput(text)]))


def test_a_guard_server_that_is_down_raises_a_provider_error_naming_it():
    url = _closed_port_url()
    for api in ("chat", "moderations"):
        guard = GuardModelProvider("guard", url, "llama-guard-3", api=api, timeout_s=2)
        with pytest.raises(ModerationProviderError, match=f"'guard'.*{url}.*cannot reach the server"):
            asyncio.run(_score(guard, [ModerationInput("hello")]))
