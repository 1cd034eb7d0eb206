"""Build the FastAPI application: routes, error shape, auth, storage, and the model workers' lifecycle."""

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from plateforme import __version__
from plateforme.api.auth import KeyCache, authenticate
from plateforme.api.body_limit import BodySizeLimit
from plateforme.api.body_timeout import BodyReadTimeout
from plateforme.api.errors import install_error_handlers
from plateforme.api.json_body import DefaultJSONContentType
from plateforme.api.json_guard import JSONBodyGuard
from plateforme.api.routes import admin, chat, files, fim, fine_tuned_models, fine_tuning, health, models, usage
from plateforme.api.routes import admin_databases, admin_mcp, classifications, embeddings, moderations, ocr, traces
from plateforme.api.routes import conversations, documents, libraries, library_search
from plateforme.api.routes import agent_completions, agents
from plateforme.api.unhandled_errors import UnhandledErrors
from plateforme.agents.assembly import build_agents
from plateforme.chat.service import ChatService
from plateforme.classifiers.service import ClassifierService
from plateforme.embeddings.metrics import install_embedding_metrics
from plateforme.embeddings.service import build_embeddings
from plateforme.engines.pool import WorkerPool
from plateforme.files.service import FileService
from plateforme.fim.service import FIMService
from plateforme.fine_tuning.assembly import build_fine_tuning
from plateforme.generation.engine_resolution import EngineResolver
from plateforme.guardrails.guard import GuardrailGuard
from plateforme.libraries.assembly import build_libraries
from plateforme.retrieval.index import open_chunk_index
from plateforme.retrieval.language_centering import retrieval_embeddings
from plateforme.retrieval.search import LibrarySearch
from plateforme.files.signing import UrlSigner, load_signing_key
from plateforme.models.registry import ModelRegistry
from plateforme.moderation.assembly import build_moderation
from plateforme.observability.install import install_observability
from plateforme.ocr.config import ocr_config_from_settings
from plateforme.ocr.service import OCRService
from plateforme.pipeline.request_pipeline import RequestPipeline
from plateforme.settings import Settings
from plateforme.storage.blobs import open_blob_store
from plateforme.storage.database import open_database
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.audit import AuditLog
from plateforme.tenancy.workspace_bootstrap import ensure_workspace
from plateforme.traces.service import TraceService
from plateforme.usage.billing import Billing

log = logging.getLogger("plateforme")


def _storage(app: FastAPI, settings: Settings) -> None:
    db = open_database(settings.resolved_database_url())
    app.state.db = db
    app.state.accounts = Accounts(db)
    app.state.audit = AuditLog(db)
    app.state.key_cache = KeyCache()
    app.state.billing = Billing(db, settings.limits_backend)
    blobs = open_blob_store(settings.resolved_blob_store())
    blobs.sweep_partials()
    app.state.files = FileService(db, blobs, settings.max_upload_bytes)
    app.state.traces = TraceService(db, app.state.files)
    app.state.url_signer = UrlSigner(load_signing_key(settings.url_signing_key, settings.data_dir))
    if settings.no_auth or settings.api_key is not None:
        ensure_workspace(db)  # the workspace of --no-auth mode and of the static key
    if settings.no_auth:
        log.warning("--no-auth: the API is open to anyone who can reach %s:%s; development only",
                    settings.host, settings.port)
    elif settings.api_key is None and not app.state.accounts.has_users():
        log.warning("no users yet: create the first admin and key with "
                    "`plateforme admin bootstrap --email you@example.com`")


def _documents_and_retrieval(app: FastAPI, settings: Settings, registry: ModelRegistry, pool: WorkerPool) -> None:
    """Embeddings, document libraries (their ingestion), library search and OCR."""
    app.state.embeddings = build_embeddings(settings, registry, pool)
    app.state.chunk_index = open_chunk_index(app.state.db)
    app.state.retrieval_embeddings = retrieval_embeddings(app.state.embeddings)  # centered by language
    app.state.libraries = build_libraries(settings, app.state.db, app.state.files.blobs,
                                          app.state.retrieval_embeddings, app.state.chunk_index, app.state.url_signer)
    app.state.library_search = LibrarySearch(app.state.db, app.state.chunk_index, app.state.retrieval_embeddings)
    app.state.ocr = OCRService(ocr_config_from_settings(settings), settings.library_max_pages)


def create_app(settings: Settings, registry: ModelRegistry) -> FastAPI:
    pool = WorkerPool(registry, settings.worker_start_timeout, settings.engine_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool.start()
        await app.state.fine_tuning_parts.start()
        await app.state.libraries.start()
        await app.state.agent_parts.start()
        try:
            yield
        finally:
            await app.state.agent_parts.close()
            await app.state.libraries.close()
            await app.state.moderation.close()
            await app.state.fine_tuning_parts.close()
            await app.state.embeddings.close()
            await pool.stop()
            app.state.billing.close()
            app.state.db.dispose()

    # The API description is served behind authentication too (GET /openapi.json with a key).
    app = FastAPI(title="plateforme", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.state.settings = settings
    app.state.registry = registry
    app.state.pool = pool
    _storage(app, settings)
    _documents_and_retrieval(app, settings, registry, pool)  # embeddings before fine-tuning: classifier jobs
    parts = build_fine_tuning(settings, app.state.db, app.state.files, registry, pool, app.state.embeddings)
    app.state.fine_tuning_parts = parts
    app.state.fine_tuning, app.state.fine_tuned_models = parts.jobs, parts.models
    engines = EngineResolver(registry, pool, parts.serving)  # configured models and fine-tunes
    app.state.engines = engines
    app.state.chat = ChatService(engines)
    app.state.fim = FIMService(engines)
    app.state.classifiers = ClassifierService(parts.models.models, app.state.embeddings)
    install_error_handlers(app)
    install_observability(app)
    install_embedding_metrics(app.state.metrics, app.state.embeddings)
    app.state.pipeline = RequestPipeline(app.state.billing, app.state.traces, app.state.metrics,
                                         {"chat": app.state.chat, "fim": app.state.fim,
                                          "embeddings": app.state.embeddings,
                                          "classifications": app.state.classifiers})
    app.state.classifiers.pipeline = app.state.pipeline
    app.state.moderation = build_moderation(settings, registry, app.state.embeddings, app.state.pipeline,
                                            load_head=app.state.classifiers.load_head)
    app.state.pipeline.guards.append(GuardrailGuard(app.state.moderation, app.state.metrics))
    agent_parts = build_agents(settings, app.state.db, app.state.pipeline, engines, app.state.library_search,
                               app.state.url_signer)
    app.state.agent_parts = agent_parts
    app.state.agents, app.state.connectors = agent_parts.agents, agent_parts.connectors
    app.state.conversations = agent_parts.conversations
    app.add_middleware(JSONBodyGuard)  # inside DefaultJSONContentType: sees the body's final content type
    app.add_middleware(DefaultJSONContentType)
    app.add_middleware(BodySizeLimit, max_request_bytes=settings.max_request_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(BodyReadTimeout, idle_s=settings.body_timeout, min_rate=settings.body_min_rate)
    app.add_middleware(UnhandledErrors)  # last: outermost of ours, just inside Starlette's error middleware
    for module in (chat, fim, models, health, files, usage, admin, fine_tuning, fine_tuned_models, traces, ocr,
                   embeddings, moderations, classifications, admin_databases, admin_mcp, library_search, libraries,
                   documents, agent_completions, agents, conversations):  # search before /v1/libraries/{id}
        app.include_router(module.router, dependencies=[Depends(authenticate)])
    app.include_router(files.public_router)
    app.include_router(documents.public_router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(authenticate)])
    async def openapi() -> dict:
        return app.openapi()

    return app
