"""Put document libraries together for one gateway: libraries, documents, sharing, ingestion."""

from dataclasses import dataclass
from pathlib import Path

from plateforme.files.signing import UrlSigner, load_signing_key
from plateforme.storage.runner_identity import runner_id
from plateforme.libraries.documents import DocumentService
from plateforme.libraries.ingestion import DocumentIngestion, IngestionLimits
from plateforme.libraries.ingestion_queue import IngestionQueue
from plateforme.libraries.ingestion_runner import LEASE_S, IngestionRunner
from plateforme.libraries.parser_pool import ParserPool
from plateforme.libraries.service import LibraryService
from plateforme.libraries.sharing import SharingService, installation_org_id
from plateforme.ocr.config import ocr_config_from_settings
from plateforme.settings import Settings
from plateforme.storage.blobs import BlobStore
from plateforme.storage.database import Database


@dataclass
class Libraries:
    libraries: LibraryService
    documents: DocumentService
    sharing: SharingService
    runner: IngestionRunner
    url_signer: UrlSigner
    run_ingestion: bool

    async def start(self) -> None:
        if self.run_ingestion:
            self.runner.start()

    async def close(self) -> None:
        await self.runner.close()


def build_libraries(settings: Settings, db: Database, blobs: BlobStore, embeddings, index,
                    url_signer: UrlSigner) -> Libraries:
    """`embeddings`: the EmbeddingService; `index`: the ChunkIndex of `db` (retrieval/)."""
    data_dir = Path(settings.data_dir)
    # The runner id of this data dir (the fine-tuning runner's: one gateway, one id, kept across restarts).
    queue = IngestionQueue(db, runner_id(data_dir), LEASE_S)
    documents = DocumentService(db, blobs, index, settings.max_upload_bytes)
    limits = IngestionLimits(settings.library_max_document_bytes, settings.library_max_pages,
                             ocr_config_from_settings(settings))
    ingestion = DocumentIngestion(blobs, embeddings, index, ParserPool(settings.ingestion_workers), limits)
    runner = IngestionRunner(queue, ingestion, documents, settings.ingestion_workers)
    if settings.ingestion_runner:
        documents.wake = runner.wake
    org_id = installation_org_id(load_signing_key(settings.url_signing_key, data_dir))
    return Libraries(LibraryService(db, blobs, index, lambda: embeddings.default_model), documents,
                     SharingService(db, org_id), runner, url_signer, settings.ingestion_runner)

