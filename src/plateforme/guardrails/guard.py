"""The request pipeline's guardrails guard: a chat request's rules applied to its input and output.

    app.state.pipeline.guards.append(GuardrailGuard(app.state.moderation, app.state.metrics))

The input is checked once, before any generation: the conversation's last turn (the last message
that is not the model's own), judged in the context of the turns before it, as
/v1/chat/moderations judges it. One moderation call scores it over the eleven 2603 categories;
every rule reads those scores with its own thresholds. The answer, for rules that apply to the
output, is scored the same way: whole when it is not streamed, every OUTPUT_WINDOW_CHARS as it
streams (output_stream.py). The checks read the moderation models unmetered (their tokens are
recorded with the chat request's usage, `guardrail_tokens`), so a guarded request counts once
against the request limits. Their time is in `plateforme_guardrail_seconds{stage}`.
"""

import logging
import time

from plateforme.chat.types import Completion
from plateforme.guardrails.blocked import GUARD_NAME, GuardrailBlocked
from plateforme.guardrails.config import VERSIONS, GuardrailConfigError, GuardrailRule
from plateforme.guardrails.decision import Verdict, judge, worst
from plateforme.guardrails.output_stream import watch_output
from plateforme.guardrails.redaction import redact_messages, redact_text
from plateforme.moderation.categories import CATEGORIES_2603, CategorySet
from plateforme.moderation.provider import ModerationInput
from plateforme.moderation.service import ModerationModelNotFound
from plateforme.pipeline.call import GenerationCall

log = logging.getLogger("plateforme.guardrails")


def judged_turn(messages: list[dict]) -> ModerationInput | None:
    """The input a request's guardrails judge: its last non-assistant turn with text, in context."""
    for at in range(len(messages) - 1, -1, -1):
        message = messages[at]
        text = message.get("content") or ""
        if message.get("role") != "assistant" and text.strip():
            context = tuple({"role": m.get("role", "user"), "content": m.get("content") or ""}
                            for m in messages[:at])
            return ModerationInput(text=text, context=context, role=message.get("role", "user"))
    return None


def _rules(call: GenerationCall, stage: str) -> list[GuardrailRule]:
    if call.route != "chat":
        return []
    return [r for r in getattr(call.request, "guardrails", None) or () if stage in r.apply_to]


class GuardrailGuard:
    name = GUARD_NAME

    def __init__(self, moderation, metrics=None):
        """`moderation`: the ModerationService (its `category_set` and `scores`); `metrics`:
        observability.metrics.Metrics or None."""
        self.moderation, self.metrics = moderation, metrics

    def _observe(self, stage: str, began: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_guardrail(stage, time.perf_counter() - began)

    def _category_sets(self, rules: list[GuardrailRule]) -> dict[str, CategorySet | str]:
        """Each rule's model's category set, or why moderation cannot run (a check failure)."""
        out: dict[str, CategorySet | str] = {}
        for rule in rules:
            if rule.model_name in out:
                continue
            try:
                category_set = self.moderation.category_set(rule.model_name)
            except ModerationModelNotFound as exc:
                raise GuardrailConfigError(f"{rule.param}.model_name: {exc}", f"{rule.param}.model_name") from exc
            except Exception as exc:  # moderation unavailable on this set-up: the rules' block_on_error decide
                out[rule.model_name] = f"{type(exc).__name__}: {exc}"
                continue
            if category_set.categories != rule.categories:
                expected = VERSIONS[rule.version][0]
                raise GuardrailConfigError(f"{rule.param}.model_name: {rule.model_name} does not score the "
                                           f"categories of {rule.version}; omit model_name (it is {expected})",
                                           f"{rule.param}.model_name")
            out[rule.model_name] = category_set
        return out

    async def _verdicts(self, call: GenerationCall, rules: list[GuardrailRule], stage: str,
                        items: list[ModerationInput]) -> list[Verdict]:
        sets = self._category_sets(rules)
        rows, error = [{c: 0.0 for c in CATEGORIES_2603}], None  # nothing to judge: nothing found
        if items:
            try:
                rows, tokens = await self.moderation.scores(call.principal, items, metered=False)
                call.guardrail_tokens += tokens
            except Exception as exc:
                log.warning("guardrails of %s: the %s could not be checked: %s", call.id, stage, exc)
                error = f"{type(exc).__name__}: {exc}"
        verdicts = []
        for rule in rules:
            category_set = sets[rule.model_name]
            failure = error or (category_set if isinstance(category_set, str) else None)
            if failure is not None:
                verdicts.append(Verdict(rule, stage, {}, {}, [], error=failure))
            else:
                verdicts.append(worst([judge(rule, stage, row, category_set) for row in rows]))
        return verdicts

    @staticmethod
    def _report(call: GenerationCall, stage: str, verdicts: list[Verdict]) -> None:
        kept = [r for r in call.guardrails or () if r["stage"] != stage]
        call.guardrails = kept + [v.report() for v in verdicts]

    def _settle(self, call: GenerationCall, stage: str, verdicts: list[Verdict]) -> None:
        self._report(call, stage, verdicts)
        blocking = [v for v in verdicts if v.blocks]
        if blocking:
            raise GuardrailBlocked(stage, blocking, call.guardrails)

    async def check(self, call: GenerationCall) -> None:
        """The input, before any generation: raises GuardrailBlocked (403) when a rule blocks it."""
        if call.route != "chat" or not getattr(call.request, "guardrails", None):
            return
        self._category_sets(list(call.request.guardrails))  # every model_name is checked up front (400)
        rules = _rules(call, "input")
        if not rules:
            return
        began = time.perf_counter()
        try:
            messages = call.request.messages
            turn = judged_turn(messages)
            verdicts = await self._verdicts(call, rules, "input", [turn] if turn is not None else [])
            redacting = [v for v in verdicts if v.rule.action == "redact"]
            if redacting and not any(v.blocks for v in verdicts):
                call.request.messages, counts = redact_messages(messages)
                call.redact = redact_text
                for verdict in redacting:
                    verdict.redacted = counts
        finally:
            self._observe("input", began)
        self._settle(call, "input", verdicts)

    async def check_texts(self, call: GenerationCall, texts: list[str]) -> None:
        """The answer so far (one text per choice): raises GuardrailBlocked when a rule blocks it."""
        began = time.perf_counter()
        try:
            items = [ModerationInput(text=t) for t in texts if t.strip()]
            verdicts = await self._verdicts(call, _rules(call, "output"), "output", items)
        finally:
            self._observe("output", began)
        self._settle(call, "output", verdicts)

    async def check_output(self, call: GenerationCall, result: Completion) -> None:
        if _rules(call, "output"):
            await self.check_texts(call, [_answer_text(c.content, c.thinking) for c in result.choices])

    def watch_stream(self, call: GenerationCall, events):
        if not _rules(call, "output"):
            return events
        return watch_output(events, lambda texts: self.check_texts(call, texts))


def _answer_text(content: str | None, thinking: str | None) -> str:
    """What the caller reads of a choice: its thinking (shown too) and its answer."""
    return "\n".join(part for part in (thinking, content) if part)
