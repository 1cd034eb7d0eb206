"""A fine-tune made through one gateway replica is served by another: two replicas on one
PostgreSQL and one S3-protocol blob store (moto's server), each with its own data dir. Replica A
records the fine-tune (as a finished job does); replica B finds it, fetches the adapter from
the blob store, serves it from its own llama.cpp adapter host, and follows A's archive and delete.
"""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from random_adapters import write_random_adapter
from server_process import free_port

from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.lora_client import LoraClient
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, fine_tuned_model_id
from plateforme.fine_tuning.serving import FineTuneServing
from plateforme.models.registry import ModelRegistry
from plateforme.storage.blobs import open_blob_store
from plateforme.storage.database import open_database
from plateforme.storage.tables import Workspace

JOB = "5eedface-0000-4000-8000-000000000000"


@pytest.fixture
def s3_store(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "PLATEFORME_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="plateforme")
    yield "s3://plateforme/shared"
    server.stop()


def test_an_adapter_trained_on_one_replica_is_served_by_another(postgres, s3_store, tmp_path):
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    spec = ModelRegistry.from_file(None).specs[0].model_copy(update={"parallel": 2, "threads": 1})
    registry = ModelRegistry([spec])
    db_a, db_b = open_database(url), open_database(url)
    with db_a.session() as s:
        s.add(Workspace(id="ws_1", name="team", created_at=datetime.now(UTC), budget_period="month"))
        s.commit()
    models_a = FineTunedModels(db_a, tmp_path / "a", open_blob_store(s3_store))
    models_b = FineTunedModels(db_b, tmp_path / "b", open_blob_store(s3_store))  # up before the fine-tune
    trained = write_random_adapter(spec.weights_path(), tmp_path / "trained.gguf", seed=1, rank=4, std=0.2)
    model_id = fine_tuned_model_id(spec.name, "shared", JOB)
    models_a.create(model_id, "ws_1", JOB, spec.name, trained)  # what a finished job does on replica A
    serving_b = FineTuneServing(registry, models_b, start_timeout=120, engine_timeout=120, refresh_s=0.2)
    local_b = tmp_path / "b" / "fine_tuning" / "adapters" / f"{JOB}.gguf"

    async def scenario():
        watcher = asyncio.create_task(serving_b.watch())
        try:
            target = await serving_b.resolve("ws_1", model_id)  # found in the database ...
            assert target is not None and await serving_b.resolve("ws_2", model_id) is None
            with pytest.raises(EngineUnavailable):  # ... not loaded yet: 503 with Retry-After meanwhile
                target.client()
            for _ in range(600):  # the request woke the refresh: fetched, and a host started
                await asyncio.sleep(0.1)
                if local_b in serving_b.hosts[spec.name].adapters:
                    break
            assert local_b.read_bytes() == trained.read_bytes()
            target = await serving_b.resolve("ws_1", model_id)
            client = LoraClient(target.client(), target.host.lora_field(target.served.adapter))
            answer = await client.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
            assert answer["choices"][0]["message"]["content"] and answer["usage"]["completion_tokens"] >= 1

            models_a.update("ws_1", model_id, archived=True)  # archived through replica A
            for _ in range(100):
                await asyncio.sleep(0.1)
                if not serving_b.hosts[spec.name].adapters:
                    break
            assert serving_b.hosts[spec.name].adapters == []
            for _ in range(100):  # the retired process stops once idle
                await asyncio.sleep(0.1)
                if not serving_b.hosts[spec.name]._retiring:
                    break
            with pytest.raises(FineTuningError, match="archived"):
                await serving_b.resolve("ws_1", model_id)

            models_a.delete("ws_1", model_id)  # deleted through replica A
            for _ in range(100):
                await asyncio.sleep(0.1)
                if not local_b.exists():
                    break
            assert not local_b.exists() and not models_a.blobs.exists(f"fine_tuning/adapters/{JOB}.gguf")
            assert await serving_b.resolve("ws_1", model_id) is None
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await serving_b.close()

    try:
        asyncio.run(scenario())
    finally:
        db_a.dispose()
        db_b.dispose()
