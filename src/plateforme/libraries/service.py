"""Libraries: create, list (page tokens, or the deprecated offset pages), read, update, delete (with
their documents, their blobs and their index entries). Every read carries the access predicate."""

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select

from plateforme.libraries import access
from plateforme.libraries.errors import LibraryError, LibraryNotFound
from plateforme.libraries.paging import after
from plateforme.storage.page_tokens import encode_token
from plateforme.storage.blobs import BlobStore
from plateforme.storage.database import Database
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal

MAX_NAME = 300


@dataclass
class LibraryView:
    """A library with what its response counts: its documents and their total size."""

    library: Library
    nb_documents: int
    total_size: int


@dataclass
class LibraryPage:
    views: list[LibraryView]
    next_page_token: str | None
    total: int | None  # offset paging only
    page: int | None


def live_documents():
    """Predicate on `library_documents`: not past its expires_at."""
    return or_(LibraryDocument.expires_at.is_(None), LibraryDocument.expires_at > utcnow())


def _views_query(where):
    """The libraries matching `where`, each with its live documents' count and total size (correlated
    subqueries: they read only that library's documents, through their library_id index)."""
    mine = (LibraryDocument.library_id == Library.id) & live_documents()
    count = select(func.count()).where(mine).correlate(Library).scalar_subquery()
    size = select(func.coalesce(func.sum(LibraryDocument.size), 0)).where(mine).correlate(Library).scalar_subquery()
    return select(Library, count, size).where(where)


def check_name(name: str, param: str = "name") -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise LibraryError(f"{param} must have 1 to {MAX_NAME} characters (got {len(name)}).", 422, param)
    return name


def document_blob_keys(document: LibraryDocument) -> list[str]:
    return [key for key in (document.blob_key, document.text_blob_key) if key]


class LibraryService:
    def __init__(self, db: Database, blobs: BlobStore, index, default_embedding_model):
        self.db, self.blobs, self.index = db, blobs, index
        self._default_model = default_embedding_model  # () -> the served default embedding model's name

    def create(self, principal: Principal, name: str, description: str | None, chunk_size: int | None,
               owner_type: str | None) -> LibraryView:
        owner_type = owner_type or "Workspace"
        if owner_type not in access.OWNER_TYPES:
            raise LibraryError(f"owner_type must be one of {', '.join(access.OWNER_TYPES)}.", 422, "owner_type")
        if owner_type == "User" and principal.user_id is None:
            raise LibraryError("owner_type 'User' makes a library private to the key's user, and this key has "
                               "none: use a user's key (`plateforme admin keys create --user ...`).", 400,
                               "owner_type")
        model = self._default_model()
        if model is None:
            raise LibraryError("No embedding model is served, so documents could not be indexed: add one "
                               "to the models config.", 400)
        now = utcnow()
        library = Library(id=str(uuid.uuid4()), workspace_id=principal.workspace_id, owner_type=owner_type,
                          owner_id=principal.workspace_id if owner_type == "Workspace" else principal.user_id,
                          name=check_name(name), description=description, chunk_size=chunk_size,
                          embedding_model=model, created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(library)
            s.commit()
        return LibraryView(library, 0, 0)

    def list(self, principal: Principal, page_size: int, page_token: str | None, page: int,
             search: str | None, owned_only: bool = False) -> LibraryPage:
        where = access.owns(principal) if owned_only else access.readable(principal)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where &= Library.name.ilike(pattern, escape="\\")
        order = (Library.created_at.desc(), Library.id.desc())
        with self.db.session() as s:
            total = None
            query = _views_query(where).order_by(*order)
            if page_token:
                query = query.where(after(Library.created_at, Library.id, page_token))
            else:
                total = s.scalar(select(func.count()).select_from(Library).where(where))
                query = query.offset(page * page_size)
            rows = s.execute(query.limit(page_size + 1)).all()
        views = [LibraryView(lib, n, size) for lib, n, size in rows[:page_size]]
        more = len(rows) > page_size
        token = encode_token(views[-1].library.created_at, views[-1].library.id) if more and views else None
        return LibraryPage(views, token, total, None if page_token else page)

    def view(self, principal: Principal, library_id: str, at_least: str = access.VIEWER) -> LibraryView:
        """The library, if the principal's role on it is `at_least` (404 for none, 403 for too low)."""
        with self.db.session() as s:
            row = s.execute(_views_query((Library.id == library_id) & access.allowed(principal, at_least))).first()
            if row is None:
                access.require(s, principal, library_id, at_least)  # tells 404 from 403
                raise LibraryNotFound(library_id)
        return LibraryView(*row)

    def update(self, principal: Principal, library_id: str, fields: dict) -> LibraryView:
        """Set `name` and/or `description` (the keys of `fields`); needs Editor."""
        values = {}
        if "name" in fields and fields["name"] is not None:
            values["name"] = check_name(fields["name"])
        if "description" in fields:
            values["description"] = fields["description"]
        self.view(principal, library_id, access.EDITOR)
        with self.db.session() as s:
            library = s.scalar(select(Library).where(Library.id == library_id,
                                                     access.allowed(principal, access.EDITOR)))
            if library is None:
                raise LibraryNotFound(library_id)
            for name, value in values.items():
                setattr(library, name, value)
            library.updated_at = utcnow()
            s.commit()
        return self.view(principal, library_id)

    def delete(self, principal: Principal, library_id: str) -> LibraryView:
        """Delete the library with its documents, their index entries and blobs; needs Owner."""
        view = self.view(principal, library_id, access.OWNER)
        with self.db.session() as s:
            keys = [k for d in s.scalars(select(LibraryDocument).where(LibraryDocument.library_id == library_id))
                    for k in document_blob_keys(d)]
        self.index.delete_library(library_id)  # first: its entries are found through the chunks' rows
        with self.db.session() as s:
            s.execute(delete(LibraryDocument).where(LibraryDocument.library_id == library_id))
            s.execute(delete(Library).where(Library.id == library_id))
            s.commit()
        for key in keys:  # after the rows: a crash here leaves unreachable blobs only
            self.blobs.delete(key)
        return view
