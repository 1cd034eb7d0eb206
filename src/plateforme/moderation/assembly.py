"""Put the moderation service together from the operator's config (config.py).

    app.state.moderation = build_moderation(settings, registry, app.state.embeddings, app.state.pipeline,
                                            load_head=app.state.classifiers.load_head)

Builds each provider the config uses, checks what it needs is served (the head's embedding
model, the judge's chat model, the guard's key), and registers the service as the pipeline's
route "moderations". An explicit config that cannot be served stops the server with the reason;
the default config on a server without the default embedding model leaves moderation
unavailable (its requests answer 503 saying why) so chat-only set-ups still start.
"""

import asyncio
import logging
import os

from plateforme.classifiers.head import ClassifierHead, HeadFormatError
from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.moderation.config import ModerationConfigError, ProviderSpec, load_config
from plateforme.moderation.head_provider import DEFAULT_HEAD_PATH, HeadProvider
from plateforme.moderation.pii_provider import PiiProvider
from plateforme.moderation.service import ROUTE, ModerationService

log = logging.getLogger("plateforme.moderation")
DEFAULT_WINDOW = 512


def chat_completer(pipeline):
    """The LLM judge's `complete(who, ChatRequest)`: the pipeline's chat capability, for the
    workspace asking (its tokens are counted in the moderation request's usage, not twice)."""
    chat = pipeline.services["chat"]

    async def complete(who, request):
        request.tenant = who.workspace_id
        return await chat.complete(request)

    return complete


def _categories(spec: ProviderSpec):
    return frozenset(spec.categories) if spec.categories else None


def _head(name: str, spec: ProviderSpec, embeddings, load_head) -> HeadProvider:
    if spec.model is not None:
        if load_head is None:
            raise ValueError(f"provider {name!r}: a head from a classifier fine-tune needs the classifier service")
        # Read at first use (the fine-tune may be trained after this server starts), off the loop.
        return HeadProvider(name, None, embeddings, _categories(spec),
                            load=lambda: asyncio.to_thread(load_head, spec.model))
    path = spec.path or DEFAULT_HEAD_PATH
    try:
        head = ClassifierHead.load(path)
    except HeadFormatError as exc:
        raise ValueError(f"provider {name!r}: {exc}") from exc
    provider = HeadProvider(name, head, embeddings, _categories(spec))
    provider.check_embeddings()
    return provider


def _judge(name: str, spec: ProviderSpec, registry, pipeline):
    from plateforme.moderation.llm_judge import LlmJudgeProvider

    served = registry.get(spec.model)
    if served is None and not spec.model.startswith("ft:"):
        raise ValueError(f"provider {name!r}: model {spec.model!r} is not served here; name a served chat model")
    if served is not None and served.embedding:
        raise ValueError(f"provider {name!r}: {spec.model!r} is an embedding model; an llm_judge needs a chat model")
    return LlmJudgeProvider(name, spec.model, chat_completer(pipeline),
                            categories=tuple(spec.categories or CATEGORIES_2603))


def _guard(name: str, spec: ProviderSpec):
    from plateforme.moderation.guard_model import GuardModelProvider

    api_key = None
    if spec.api_key_env:
        api_key = os.environ.get(spec.api_key_env)
        if not api_key:
            raise ValueError(f"provider {name!r}: the variable {spec.api_key_env} holding its key is not set")
    options = {}
    if spec.category_map is not None:
        options["category_map"] = spec.category_map
    if spec.timeout_s is not None:
        options["timeout_s"] = spec.timeout_s
    if spec.api is not None:
        options["api"] = spec.api
    if spec.categories:
        options["categories"] = spec.categories
    return GuardModelProvider(name, spec.base_url, spec.model, api_key=api_key, **options)


def build_provider(name: str, spec: ProviderSpec, registry, embeddings, pipeline, load_head=None):
    if spec.type == "head":
        return _head(name, spec, embeddings, load_head)
    if spec.type == "pii":
        return PiiProvider(name)
    if spec.type == "llm_judge":
        return _judge(name, spec, registry, pipeline)
    return _guard(name, spec)


def build_moderation(settings, registry, embeddings, pipeline, load_head=None) -> ModerationService:
    path = settings.moderation_config
    config = load_config(path)
    providers, unavailable = {}, None
    for name in config.used_providers():
        try:
            providers[name] = build_provider(name, config.providers[name], registry, embeddings, pipeline, load_head)
        except ValueError as exc:
            if path is not None:
                raise ModerationConfigError(f"the moderation config {path}: {exc}") from exc
            unavailable = (f"moderation is not available on this server: {exc}; serve what the default moderation "
                           "set-up needs, or set PLATEFORME_MODERATION_CONFIG to providers this server can run "
                           "(docs/moderation.md)")
            log.warning("%s", unavailable)
            break
    window = DEFAULT_WINDOW
    heads = [p for p in providers.values() if isinstance(p, HeadProvider) and p.head is not None]
    if heads and unavailable is None:
        window = embeddings.info(heads[0].head.embedding_model).window
    try:
        service = ModerationService(config, providers, pipeline, window, unavailable)
    except ValueError as exc:
        raise ModerationConfigError(f"the moderation config {path or '(default)'}: {exc}") from exc
    pipeline.services[ROUTE] = service
    return service
