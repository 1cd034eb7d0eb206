"""Fine-tuned models: rows in the database, their files, and a cache for lookups.

A fine-tuned model belongs to one workspace; other workspaces neither see nor use it. It is a
completion model (a LoRA adapter over a chat model: GGUF, a few MB, `fine_tuning/adapters/<job
id>.gguf`, served by the base model's llama.cpp adapter host) or a classifier (a head over an
embedding model: `.npz`, `fine_tuning/classifiers/<job id>.npz`, run by the gateway). Its file is
kept in the blob store (the platform's files store: a directory or S3) under that path, and in
<data_dir>/ at that same path, the local copy that is served: a replica that did not train it
fetches it from the blob store before serving it. The base model's weights are shared.
"""

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from plateforme.fine_tuning.errors import FineTunedModelNotFound
from plateforme.fine_tuning.workdir import adapters_dir, classifiers_dir
from plateforme.storage.blobs import BlobStore
from plateforme.storage.database import Database
from plateforme.storage.fine_tuning_tables import FineTunedModel
from plateforme.tenancy.ids import utcnow

PREFIX = "ft:"
COMPLETION, CLASSIFIER = "completion", "classifier"  # model types
# Seconds an id found in no row is remembered as unknown (requests for it read no database);
# creating or unarchiving a fine-tune in this process forgets it at once, on other nodes it
# shows up after at most this long.
UNKNOWN_FOR_S = 5.0
UNKNOWN_KEPT = 10_000
log = logging.getLogger("plateforme.fine_tuning")


def fine_tuned_model_id(base: str, suffix: str | None, job_id: str) -> str:
    short = job_id.replace("-", "")[:8]
    return f"{PREFIX}{base}:{suffix}:{short}" if suffix else f"{PREFIX}{base}:{short}"


@dataclass(frozen=True)
class ServedAdapter:
    model_id: str
    workspace_id: str
    root: str
    adapter: Path  # the local copy of its file (a classifier's: its head)
    archived: bool
    blob_key: str = ""  # the file in the blob store
    model_type: str = COMPLETION

    @property
    def is_classifier(self) -> bool:
        return self.model_type == CLASSIFIER


class FineTunedModels:
    def __init__(self, db: Database, data_dir: Path, blobs: BlobStore | None = None):
        """`blobs`: where adapters are shared between replicas (None: this data dir only)."""
        self.db = db
        self.data_dir = Path(data_dir)
        self.blobs = blobs
        self._lock = threading.Lock()
        self._cache: dict[str, ServedAdapter] = {}
        self._unknown: dict[str, float] = {}  # model id -> until when (time.monotonic()) it is unknown
        self._changes = 0  # count of changes made through this process ...
        self._changed: dict[str, int] = {}  # ... and the count at each model's latest one
        self.reload()

    def _served(self, row: FineTunedModel) -> ServedAdapter:
        return ServedAdapter(row.id, row.workspace_id, row.root, self.data_dir / row.adapter_path, row.archived,
                             Path(row.adapter_path).as_posix(), row.model_type or COMPLETION)

    def reload(self) -> list[ServedAdapter]:
        """Re-read every row (other replicas add, archive and delete fine-tunes too); return the
        fine-tunes that are gone since the last read (their local adapter copies may be removed)."""
        with self._lock:
            start = self._changes
        with self.db.session() as s:
            rows = s.scalars(select(FineTunedModel)).all()
        with self._lock:
            fresh = {row.id: self._served(row) for row in rows}
            for model_id, change in self._changed.items():
                if change > start:  # changed here while the table was being read: this view is newer
                    if model_id in self._cache:
                        fresh[model_id] = self._cache[model_id]
                    else:
                        fresh.pop(model_id, None)
            self._changed = {k: v for k, v in self._changed.items() if v > start}
            old, self._cache = self._cache, fresh
            for model_id in fresh:
                self._unknown.pop(model_id, None)
        return [served for model_id, served in old.items() if model_id not in fresh]

    def _remember(self, row: FineTunedModel | None, model_id: str) -> None:
        with self._lock:
            self._changes += 1
            self._changed[model_id] = self._changes
            if row is None:
                self._cache.pop(model_id, None)
            else:
                self._cache[row.id] = self._served(row)
                self._unknown.pop(row.id, None)

    def _remember_unknown(self, model_id: str) -> None:
        with self._lock:
            if model_id in self._cache:  # created meanwhile (after the database was read)
                return
            if len(self._unknown) >= UNKNOWN_KEPT:
                now = time.monotonic()
                self._unknown = {k: t for k, t in self._unknown.items() if t > now}
                if len(self._unknown) >= UNKNOWN_KEPT:
                    self._unknown.clear()
            self._unknown[model_id] = time.monotonic() + UNKNOWN_FOR_S

    def cached(self, workspace_id: str, model_id: str) -> tuple[bool, ServedAdapter | None]:
        """(True, answer of `lookup`) when it is known without the database, else (False, None)."""
        if not model_id.startswith(PREFIX):
            return True, None
        with self._lock:
            served = self._cache.get(model_id)
            if served is None:
                until = self._unknown.get(model_id)
                if until is None:
                    return False, None
                if until <= time.monotonic():
                    del self._unknown[model_id]
                    return False, None
                return True, None
        return True, (served if served.workspace_id == workspace_id else None)

    def create(self, model_id: str, workspace_id: str, job_id: str, root: str, adapter: Path,
               model_type: str = COMPLETION, classifier_targets: list[dict] | None = None) -> FineTunedModel:
        """Keep `adapter` (the LoRA adapter, or a classifier's head: copied next to the others, and
        into the blob store) and record the model."""
        classifier = model_type == CLASSIFIER
        target_dir = classifiers_dir(self.data_dir) if classifier else adapters_dir(self.data_dir)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / (f"{job_id}.npz" if classifier else f"{job_id}.gguf")
        tmp = target.with_suffix(".part")
        shutil.copyfile(adapter, tmp)
        os.replace(tmp, target)
        if self.blobs is not None:  # before the row: a replica that finds the row finds the adapter
            self.blobs.put(target.relative_to(self.data_dir).as_posix(), _chunks(target))
        row = FineTunedModel(id=model_id, workspace_id=workspace_id, job_id=job_id, root=root, name=None,
                             description=None, archived=False, model_type=model_type,
                             classifier_targets=classifier_targets if classifier else None,
                             adapter_path=str(target.relative_to(self.data_dir)), created_at=utcnow())
        with self.db.session() as s:
            existing = s.get(FineTunedModel, model_id)
            if existing is None:  # a resumed job may finish twice: the first record stands
                s.add(row)
                s.commit()
            else:
                row = existing
        self._remember(row, model_id)
        return row

    def get(self, workspace_id: str, model_id: str) -> FineTunedModel:
        with self.db.session() as s:
            row = s.get(FineTunedModel, model_id)
        if row is None or row.workspace_id != workspace_id:
            raise FineTunedModelNotFound(model_id)
        return row

    def of_workspace(self, workspace_id: str) -> list[FineTunedModel]:
        with self.db.session() as s:
            return list(s.scalars(select(FineTunedModel).where(FineTunedModel.workspace_id == workspace_id)
                                  .order_by(FineTunedModel.created_at, FineTunedModel.id)).all())

    def update(self, workspace_id: str, model_id: str, **fields) -> FineTunedModel:
        self.get(workspace_id, model_id)
        with self.db.session() as s:
            row = s.get(FineTunedModel, model_id)
            for key, value in fields.items():
                setattr(row, key, value)
            s.commit()
        self._remember(row, model_id)
        return row

    def delete(self, workspace_id: str, model_id: str) -> FineTunedModel:
        row = self.get(workspace_id, model_id)
        with self.db.session() as s:
            s.delete(s.get(FineTunedModel, model_id))
            s.commit()
        self._remember(None, model_id)
        (self.data_dir / row.adapter_path).unlink(missing_ok=True)
        if self.blobs is not None:
            self.blobs.delete(Path(row.adapter_path).as_posix())
        return row

    def lookup(self, workspace_id: str, model_id: str) -> ServedAdapter | None:
        """The served fine-tune `model_id` of `workspace_id` (None: not one of its fine-tunes).
        Ids not cached are read from the database (blocking: call it off the event loop), so a model
        made by another gateway node is found; ids found nowhere are remembered for UNKNOWN_FOR_S."""
        known, served = self.cached(workspace_id, model_id)
        if known:
            return served
        with self.db.session() as s:
            row = s.get(FineTunedModel, model_id)
        if row is None:
            self._remember_unknown(model_id)
            return None
        self._remember(row, model_id)
        served = self._served(row)
        return served if served.workspace_id == workspace_id else None

    def _adapters(self) -> list[ServedAdapter]:
        """The completion fine-tunes (classifiers are not served by adapter hosts). Under the lock."""
        return [a for a in self._cache.values() if not a.is_classifier]

    def find(self, model_id: str) -> ServedAdapter | None:
        """The fine-tune `model_id` whatever its workspace (an operator's configuration naming one:
        e.g. a moderation provider). Blocking when not cached."""
        with self._lock:
            served = self._cache.get(model_id)
        if served is not None:
            return served
        with self.db.session() as s:
            row = s.get(FineTunedModel, model_id)
        if row is None:
            return None
        self._remember(row, model_id)
        return self._served(row)

    def adapters_of(self, root: str) -> list[Path]:
        """The adapters a base model's adapter host should load (not archived), in a stable order."""
        with self._lock:
            return sorted(a.adapter for a in self._adapters() if a.root == root and not a.archived)

    def local_adapters_of(self, root: str) -> list[Path]:
        """`adapters_of(root)`, each fetched from the blob store first where this data dir lacks it
        (blocking). One that cannot be had is left out, and logged, so the others are served."""
        with self._lock:
            wanted = sorted((a for a in self._adapters() if a.root == root and not a.archived),
                            key=lambda a: a.adapter)
        present = []
        for served in wanted:
            if not served.adapter.exists():
                try:
                    self._fetch(served)
                except Exception as exc:
                    log.warning("fine-tune %s is not served here: its adapter %s is not in this data dir and "
                                "cannot be fetched from the blob store (%s)", served.model_id, served.blob_key, exc)
                    continue
            present.append(served.adapter)
        return present

    def local_file(self, served: ServedAdapter) -> Path:
        """The local copy of `served`'s file, fetched from the blob store first where this data dir
        lacks it (blocking). FileNotFoundError when it can be had from neither."""
        if not served.adapter.exists():
            self._fetch(served)
        return served.adapter

    def _fetch(self, served: ServedAdapter) -> None:
        if self.blobs is None:
            raise FileNotFoundError("no blob store is configured")
        served.adapter.parent.mkdir(parents=True, exist_ok=True)
        tmp = served.adapter.with_suffix(f".{os.getpid()}.part")
        try:
            with open(tmp, "wb") as out:
                for chunk in self.blobs.iter_bytes(served.blob_key):
                    out.write(chunk)
            os.replace(tmp, served.adapter)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("fine-tune %s: %s fetched from the blob store", served.model_id,
                 "head" if served.is_classifier else "adapter")

    def publish_local(self) -> int:
        """Put into the blob store the adapters of this data dir it lacks (made before adapters were
        shared); return how many (blocking)."""
        if self.blobs is None:
            return 0
        with self._lock:
            served = list(self._cache.values())
        published = 0
        for adapter in served:
            if adapter.adapter.exists() and not self.blobs.exists(adapter.blob_key):
                self.blobs.put(adapter.blob_key, _chunks(adapter.adapter))
                published += 1
        return published

    def roots(self) -> set[str]:
        """The base models of the completion fine-tunes (those adapter hosts serve)."""
        with self._lock:
            return {a.root for a in self._adapters()}


def _chunks(path: Path, size: int = 1 << 20):
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk
