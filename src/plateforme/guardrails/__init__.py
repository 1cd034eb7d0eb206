"""Guardrails: moderation checks attached to a chat request, run in the request pipeline.

A request's `guardrails` (Mistral's GuardrailConfig list) are parsed into rules (config.py); the
pipeline's guard (guard.py) scores the input with the moderation service before any generation
and applies each rule (decision.py): `block` answers 403, `none` reports, `redact` replaces PII in
the input (redaction.py). Beyond Mistral, a rule with `apply_to: ["output"]` also checks the
answer: the whole answer when it is not streamed, the stream as it goes (output_stream.py).
"""
