"""A failed background re-read of a workspace's limits is reported, and the cached limits still apply."""

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import text

from plateforme.storage.database import open_database
from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal
from plateforme.usage import billing as billing_module
from plateforme.usage.billing import Billing
from plateforme.usage.limits import RateLimited


def test_a_failed_limits_refresh_is_reported_and_the_cached_limits_still_apply(tmp_path, caplog):
    db = open_database(f"sqlite:///{tmp_path / 'p.db'}")
    with db.session() as s:
        s.add(Workspace(id="ws_1", name="team", created_at=datetime.now(UTC), budget_period="month",
                        requests_per_minute=2))
        s.commit()
    billing = Billing(db)
    who = Principal(workspace_id="ws_1", key_id=None, user_id=None, role="member")

    async def scenario():
        await billing.admit(who)  # cached now
        expires, workspace = billing._workspaces["ws_1"]
        billing._workspaces["ws_1"] = (time.monotonic() - 1, workspace)  # stale
        with db.engine.begin() as conn:  # the database loses the table: every re-read fails
            conn.execute(text("ALTER TABLE workspaces RENAME TO workspaces_gone"))
        await billing.admit(who)  # answered from the cache while the re-read fails
        for _ in range(50):
            await asyncio.sleep(0.02)
            if "ws_1" not in billing._loading:
                break
        try:
            await billing.admit(who)
        except RateLimited:
            return True
        return False

    with caplog.at_level(logging.ERROR, logger=billing_module.log.name):
        limited = asyncio.run(scenario())
    assert limited  # rpm 2 still enforced from the cached limits
    assert any("could not re-read the limits of workspace ws_1" in r.getMessage() for r in caplog.records)
    db.dispose()
