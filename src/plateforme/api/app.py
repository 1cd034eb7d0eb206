"""Build the FastAPI application: routes, error shape, auth, and the model workers' lifecycle."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from plateforme import __version__
from plateforme.api.auth import require_api_key
from plateforme.api.errors import install_error_handlers
from plateforme.api.json_body import DefaultJSONContentType
from plateforme.api.routes import chat, health, models
from plateforme.chat.service import ChatService
from plateforme.engines.pool import WorkerPool
from plateforme.models.registry import ModelRegistry
from plateforme.settings import Settings


def create_app(settings: Settings, registry: ModelRegistry) -> FastAPI:
    pool = WorkerPool(registry, settings.worker_start_timeout, settings.engine_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool.start()
        try:
            yield
        finally:
            await pool.stop()

    app = FastAPI(title="plateforme", version=__version__, lifespan=lifespan,
                  dependencies=[Depends(require_api_key)])
    app.state.settings = settings
    app.state.registry = registry
    app.state.pool = pool
    app.state.chat = ChatService(registry, pool)
    install_error_handlers(app)
    app.add_middleware(DefaultJSONContentType)
    for module in (chat, models, health):
        app.include_router(module.router)
    return app
