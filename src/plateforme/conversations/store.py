"""Conversations and their entries in the database, per workspace.

OWNER: engineer B (issue 14). Skeleton committed by the lead to pin the interface.
Synchronous (SQLAlchemy sessions): callers on the event loop use asyncio.to_thread.
"""

from sqlalchemy import or_, update

from plateforme.storage.conversation_tables import Conversation
from plateforme.tenancy.ids import utcnow

INTERRUPTED = ("the platform stopped while this conversation's response was being made; the response is "
               "lost: restart the conversation from its last entry, or append again")


class ConversationStore:
    def __init__(self, db, runner: str):
        """`runner`: this gateway's runner id (storage/runner_identity.py), kept on the
        conversations it is answering, so that a restart marks its interrupted ones failed."""
        self.db, self.runner = db, runner

    def fail_interrupted(self) -> int:
        """Mark failed the conversations this runner was answering when it stopped, and those of
        any runner whose lease ran out; the number marked."""
        now = utcnow()
        with self.db.session() as s:
            result = s.execute(update(Conversation)
                               .where(Conversation.status == "running",
                                      or_(Conversation.runner == self.runner, Conversation.lease_until < now))
                               .values(status="failed", error=INTERRUPTED, runner=None, lease_until=None,
                                       updated_at=now))
            s.commit()
            return result.rowcount or 0
