"""The implicit workspace used by --no-auth mode and the static PLATEFORME_API_KEY."""

from sqlalchemy.exc import IntegrityError

from plateforme.storage.database import Database
from plateforme.storage.tables import Workspace
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import DEV_WORKSPACE


def ensure_workspace(db: Database) -> None:
    with db.session() as s:
        if s.get(Workspace, DEV_WORKSPACE) is not None:
            return
        s.add(Workspace(id=DEV_WORKSPACE, name="default-static", created_at=utcnow(), budget_period="month"))
        try:
            s.commit()
        except IntegrityError:  # another gateway process created it first
            s.rollback()
