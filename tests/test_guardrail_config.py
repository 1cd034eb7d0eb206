"""Guardrails without a server: parsing a request's `guardrails`, thresholds, decisions, the
output stream's holding back, redaction.

Fast unit tests of the logic. The guard tests at the end give the guard a stand-in for the
moderation service (`_Scores`: fixed scores per text, or a failure) because what they test is
what the guard does with scores; the real service, head and PII provider are exercised live in
tests/test_guardrails.py.
"""

import asyncio

import pytest

from plateforme.api.schemas.chat import ChatCompletionRequest
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.guardrails.blocked import GuardrailBlocked
from plateforme.guardrails.config import GuardrailConfigError, parse_guardrails
from plateforme.guardrails.decision import judge, worst
from plateforme.guardrails.guard import GuardrailGuard, judged_turn
from plateforme.guardrails.output_stream import OUTPUT_WINDOW_CHARS, watch_output
from plateforme.guardrails.redaction import redact_messages
from plateforme.moderation.categories import CATEGORIES_2411, CATEGORIES_2603, CategorySet
from plateforme.moderation.provider import ModerationProviderError
from plateforme.pipeline.call import GenerationCall
from plateforme.tenancy.principal import Principal

DEFAULTS = {c: 0.5 for c in CATEGORIES_2603}
SET_2603 = CategorySet("mistral-moderation-2603", CATEGORIES_2603, DEFAULTS)
SET_2411 = CategorySet("mistral-moderation-2411", CATEGORIES_2411,
                       {**{c: 0.5 for c in CATEGORIES_2411}, "dangerous_and_criminal_content": 0.4})


def _scores(**given) -> dict[str, float]:
    return {c: given.get(c, 0.0) for c in CATEGORIES_2603}


def _rule(**config):
    version = config.pop("version", "moderation_llm_v2")
    block_on_error = config.pop("block_on_error", None)
    entry = {version: config}
    if block_on_error is not None:
        entry["block_on_error"] = block_on_error
    (rule,) = parse_guardrails([entry])
    return rule


# --- parsing -------------------------------------------------------------------------------------

def test_defaults_are_mistrals():
    rule = _rule()
    assert (rule.model_name, rule.action, rule.apply_to, rule.block_on_error, rule.thresholds,
            rule.ignore_other_categories) == ("mistral-moderation-2603", "none", ("input",), False, {}, False)
    assert _rule(version="moderation_llm_v1").model_name == "mistral-moderation-2411"
    assert parse_guardrails(None) == [] and parse_guardrails([]) == []


def test_both_versions_in_one_config_are_two_rules_sharing_block_on_error():
    rules = parse_guardrails([{"block_on_error": True, "moderation_llm_v1": {"action": "block"},
                               "moderation_llm_v2": {"custom_category_thresholds": {"jailbreaking": 0.2}}}])
    assert [(r.version, r.action, r.block_on_error) for r in rules] == [
        ("moderation_llm_v1", "block", True), ("moderation_llm_v2", "none", True)]
    assert rules[1].thresholds == {"jailbreaking": 0.2}


@pytest.mark.parametrize("entry, param, words", [
    ({"moderation_llm_v2": {"custom_category_thresholds": {"dangerous_and_criminal_content": 0.3}}},
     "guardrails[0].moderation_llm_v2.custom_category_thresholds.dangerous_and_criminal_content",
     "unknown category"),
    ({"moderation_llm_v1": {"custom_category_thresholds": {"jailbreaking": 0.3}}},
     "guardrails[0].moderation_llm_v1.custom_category_thresholds.jailbreaking", "unknown category"),
    ({"moderation_llm_v2": {"custom_category_thresholds": {"pii": 1.5}}},
     "guardrails[0].moderation_llm_v2.custom_category_thresholds.pii", "out of range"),
    ({"moderation_llm_v2": {"custom_category_thresholds": {"pii": -0.1}}},
     "guardrails[0].moderation_llm_v2.custom_category_thresholds.pii", "out of range"),
    ({"moderation_llm_v2": {"custom_category_thresholds": {"pii": "high"}}},
     "guardrails[0].moderation_llm_v2.custom_category_thresholds.pii", "between 0 and 1"),
    ({"moderation_llm_v2": {"action": "warn"}}, "guardrails[0].moderation_llm_v2.action", "not an action"),
    ({"moderation_llm_v2": {"colour": "red"}}, "guardrails[0].moderation_llm_v2.colour", "unknown field"),
    ({"name": "x"}, "guardrails[0].name", "unknown field"),
    ({"block_on_error": True}, "guardrails[0]", "nothing to check"),
    ({"block_on_error": "yes", "moderation_llm_v2": {}}, "guardrails[0].block_on_error", "true or false"),
    ({"moderation_llm_v2": {"apply_to": "output"}}, "guardrails[0].moderation_llm_v2.apply_to", "list"),
    ({"moderation_llm_v2": {"apply_to": ["answer"]}}, "guardrails[0].moderation_llm_v2.apply_to", "list"),
    ({"moderation_llm_v2": {"action": "redact", "apply_to": ["output"]}},
     "guardrails[0].moderation_llm_v2.apply_to", "input only"),
    ({"moderation_llm_v2": ["pii"]}, "guardrails[0].moderation_llm_v2", "an object"),
])
def test_mistakes_are_named(entry, param, words):
    with pytest.raises(GuardrailConfigError) as caught:
        parse_guardrails([entry])
    assert caught.value.param == param and words in str(caught.value) and param in str(caught.value)


def test_a_null_threshold_keeps_the_default_and_the_bounds_are_allowed():
    rule = _rule(custom_category_thresholds={"pii": None, "sexual": 0, "law": 1})
    assert rule.thresholds == {"sexual": 0.0, "law": 1.0}


def test_the_request_schema_parses_them_and_refuses_mistakes_as_400_errors():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "guardrails": [{"moderation_llm_v2": {"action": "block", "apply_to": ["input", "output"]}}]}
    request = ChatCompletionRequest(**body).to_chat_request()
    assert [r.apply_to for r in request.guardrails] == [("input", "output")]
    assert ChatCompletionRequest(**{**body, "guardrails": []}).to_chat_request().guardrails is None
    assert ChatCompletionRequest(**body).unsupported_fields() == []
    bad = {**body, "guardrails": [{"moderation_llm_v2": {"custom_category_thresholds": {"spam": 0.1}}}]}
    with pytest.raises(GuardrailConfigError, match="spam: unknown category"):
        ChatCompletionRequest(**bad).to_chat_request()


# --- decisions -----------------------------------------------------------------------------------

def test_a_score_above_its_threshold_crosses_one_at_it_does_not():
    rule = _rule(custom_category_thresholds={"pii": 0.3}, action="block")
    verdict = judge(rule, "input", _scores(pii=0.31, sexual=0.5), SET_2603)
    assert verdict.crossed == ["pii"] and verdict.blocks  # sexual: 0.5 is not above its default 0.5
    assert not judge(rule, "input", _scores(pii=0.3), SET_2603).crossed
    assert verdict.thresholds["pii"] == 0.3 and verdict.thresholds["sexual"] == 0.5


def test_action_none_reports_and_never_blocks():
    verdict = judge(_rule(custom_category_thresholds={"pii": 0.1}), "input", _scores(pii=0.9), SET_2603)
    assert verdict.crossed == ["pii"] and not verdict.blocks
    report = verdict.report()
    assert report["blocked"] is False and report["categories"]["pii"] is True
    assert report["category_scores"]["pii"] == 0.9 and set(report["category_scores"]) == set(CATEGORIES_2603)


def test_ignore_other_categories_checks_only_the_given_ones():
    rule = _rule(custom_category_thresholds={"law": 0.8}, ignore_other_categories=True, action="block")
    verdict = judge(rule, "input", _scores(sexual=0.99, law=0.7), SET_2603)
    assert verdict.thresholds == {"law": 0.8} and not verdict.crossed and not verdict.blocks
    assert verdict.scores["sexual"] == 0.99  # still reported
    everything = judge(_rule(custom_category_thresholds={"law": 0.8}, action="block"), "input",
                       _scores(sexual=0.99, law=0.7), SET_2603)
    assert everything.crossed == ["sexual"] and everything.blocks


def test_v1_reads_the_2411_set_dangerous_and_criminal_merged():
    rule = _rule(version="moderation_llm_v1", action="block")
    verdict = judge(rule, "input", _scores(criminal=0.45, jailbreaking=0.99), SET_2411)
    assert set(verdict.scores) == set(CATEGORIES_2411)  # no jailbreaking in 2411
    assert verdict.crossed == ["dangerous_and_criminal_content"]  # 0.45 > its default 0.4


def test_a_failed_check_blocks_only_with_block_on_error():
    from plateforme.guardrails.decision import Verdict
    lenient, strict = _rule(action="block"), _rule(action="none", block_on_error=True)
    assert not Verdict(lenient, "input", {}, {}, [], error="down").blocks
    assert Verdict(strict, "input", {}, {}, [], error="down").blocks
    assert "block_on_error" in Verdict(strict, "input", {}, {}, [], error="down").reason()


def test_the_worst_of_several_choices_decides():
    rule = _rule(action="block")
    quiet, loud = (judge(rule, "output", _scores(**s), SET_2603) for s in ({}, {"violence_and_threats": 0.9}))
    assert worst([quiet, loud]) is loud and worst([loud, quiet]) is loud


# --- the judged turn, redaction --------------------------------------------------------------------

def test_the_judged_turn_is_the_last_one_not_the_models_in_its_context():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Sure:"}]
    turn = judged_turn(messages)
    assert turn.text == "Hello" and turn.context == ({"role": "system", "content": "Be brief."},)
    assert judged_turn([{"role": "user", "content": "  "}]) is None


def test_redaction_replaces_validated_pii_only():
    messages = [{"role": "user", "content": "Write to jeanne.martin@exemple.fr or call 06 12 34 56 78; "
                                            "card 4111 1111 1111 1111, not 4111 1111 1111 1112."},
                {"role": "assistant", "content": "Nothing here."}]
    redacted, counts = redact_messages(messages)
    text = redacted[0]["content"]
    assert "jeanne" not in text and "[EMAIL]" in text and "[PHONE]" in text and "[CARD]" in text
    assert "4111 1111 1111 1112" in text  # fails Luhn: not a card number
    assert counts == {"email": 1, "phone": 1, "card": 1}
    assert redacted[1] is messages[1] and messages[0]["content"].startswith("Write to jeanne")


# --- the output stream -----------------------------------------------------------------------------

async def _pieces(texts):
    yield Delta(0, role="assistant")
    for text in texts:
        yield Delta(0, content=text)
    yield Delta(0, content="", finish_reason="stop")
    yield Usage(5, len(texts))


async def _collect(stream):
    out = []
    async for item in stream:
        out.append(item)
    return out


def test_the_stream_is_held_until_checked_and_stops_before_what_crossed():
    words = ["word "] * 40 + ["DANGER "] + ["more "] * 40
    checked: list[str] = []

    async def check(texts):
        checked.append(texts[0])
        if "DANGER" in texts[0]:
            raise GuardrailBlocked("output", [], [])

    sent = []

    async def run():
        async for item in watch_output(_pieces(words), check):
            sent.append(item)

    with pytest.raises(GuardrailBlocked) as caught:
        asyncio.run(run())
    assert "DANGER" in caught.value.answer[0]  # what was withheld, for the trace
    text = "".join(d.content or "" for d in sent if isinstance(d, Delta))
    assert sent[0].role == "assistant"  # nothing to judge: passed at once
    assert "DANGER" not in text and ("word " * 40).startswith(text)  # what was checked, nothing after
    assert len(text) >= OUTPUT_WINDOW_CHARS and "DANGER" in checked[-1]
    assert not any(isinstance(i, Usage) for i in sent)
    assert all(len(c) < 2000 for c in checked)


def test_a_clean_stream_passes_whole_and_is_checked_at_the_end_too():
    seen: list[str] = []

    async def check(texts):
        seen.append(texts[0])

    items = asyncio.run(_collect(watch_output(_pieces(["short answer"]), check)))
    assert [type(i).__name__ for i in items] == ["Delta", "Delta", "Delta", "Usage"]
    assert seen == ["short answer"]


# --- the guard, with scores given ---------------------------------------------------------------

class _Scores:
    """Stands in for the moderation service: its category sets, and scores given per text."""

    def __init__(self, by_word: dict[str, dict], fail: bool = False):
        self.by_word, self.fail, self.calls = by_word, fail, []

    def category_set(self, model):
        sets = {"mistral-moderation-2603": SET_2603, "mistral-moderation-latest": SET_2603,
                "mistral-moderation-2411": SET_2411}
        if model not in sets:
            from plateforme.moderation.service import ModerationModelNotFound
            raise ModerationModelNotFound(f"model {model!r} is not a moderation model")
        return sets[model]

    async def scores(self, who, items, metered=True, model=None):
        self.calls.append((items, metered))
        if self.fail:
            raise ModerationProviderError("head", "the embedding worker is down")
        rows = [_scores(**next((s for w, s in self.by_word.items() if w in i.text), {})) for i in items]
        return rows, 7 * len(items)


WHO = Principal(workspace_id="ws", key_id="k", user_id="u", role="member")


def _call(text, *guardrails):
    request = ChatRequest(model="m", messages=[{"role": "user", "content": text}],
                          guardrails=parse_guardrails(list(guardrails)))
    return GenerationCall(WHO, "chat", request)


def test_the_guard_blocks_reports_and_counts_the_tokens_read():
    guard = GuardrailGuard(_Scores({"attack": {"violence_and_threats": 0.9}}))
    ok = _call("hello", {"moderation_llm_v2": {"action": "block"}})
    asyncio.run(guard.check(ok))
    assert ok.guardrails[0]["blocked"] is False and ok.guardrail_tokens == 7
    assert guard.moderation.calls[0][1] is False  # unmetered: recorded with the chat request's usage
    bad = _call("an attack", {"moderation_llm_v2": {"action": "block"}}, {"moderation_llm_v1": {}})
    with pytest.raises(GuardrailBlocked, match="violence_and_threats 0.90 > 0.50") as caught:
        asyncio.run(guard.check(bad))
    assert caught.value.record and [r["blocked"] for r in caught.value.report] == [True, False]
    assert len(guard.moderation.calls) == 2  # one scoring for every rule of a request


def test_a_failed_check_lets_through_unless_block_on_error():
    guard = GuardrailGuard(_Scores({}, fail=True))
    lenient = _call("hello", {"moderation_llm_v2": {"action": "block"}})
    asyncio.run(guard.check(lenient))
    assert "embedding worker is down" in lenient.guardrails[0]["error"]
    with pytest.raises(GuardrailBlocked, match="block_on_error"):
        asyncio.run(guard.check(_call("hello", {"block_on_error": True, "moderation_llm_v2": {}})))


def test_an_unknown_or_mismatched_model_name_is_a_400():
    guard = GuardrailGuard(_Scores({}))
    with pytest.raises(GuardrailConfigError, match="not a moderation model"):
        asyncio.run(guard.check(_call("hi", {"moderation_llm_v2": {"model_name": "gpt-guard"}})))
    with pytest.raises(GuardrailConfigError, match="omit model_name"):
        asyncio.run(guard.check(_call("hi", {"moderation_llm_v1": {"model_name": "mistral-moderation-2603"}})))


def test_redact_replaces_the_input_and_says_what_it_replaced():
    guard = GuardrailGuard(_Scores({"@": {"pii": 1.0}}))
    call = _call("Mail me at paul@exemple.com", {"moderation_llm_v2": {"action": "redact"}})
    asyncio.run(guard.check(call))
    assert call.request.messages[0]["content"] == "Mail me at [EMAIL]"
    assert call.guardrails[0]["redacted"] == {"email": 1} and call.guardrails[0]["categories"]["pii"] is True
    assert call.redact("x@y.fr ok") == "[EMAIL] ok"
    assert guard.moderation.calls[0][0][0].text == "Mail me at paul@exemple.com"  # scored as sent


def test_output_rules_check_the_whole_answer():
    guard = GuardrailGuard(_Scores({"kill": {"violence_and_threats": 0.95}}))
    call = _call("hi", {"moderation_llm_v2": {"action": "block", "apply_to": ["output"]}})
    asyncio.run(guard.check(call))
    assert call.guardrails is None and guard.moderation.calls == []  # output only: no input check
    fine = Completion([Choice(0, "hello there", "stop")], Usage(3, 2))
    asyncio.run(guard.check_output(call, fine))
    assert call.guardrails[0]["stage"] == "output" and not call.guardrails[0]["blocked"]
    with pytest.raises(GuardrailBlocked, match="the output crossed"):
        asyncio.run(guard.check_output(call, Completion([Choice(0, "I will kill", "stop")], Usage(3, 3))))
    assert len(call.guardrails) == 1 and call.guardrails[0]["blocked"]  # the output's report replaced
