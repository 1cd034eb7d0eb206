"""Feedback on a captured completion: a rating, an optional corrected answer and comment (latest wins)."""

from sqlalchemy import select

from plateforme.storage.database import Database
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.ids import utcnow
from plateforme.traces.errors import TraceNotFound


def find_trace(db: Database, workspace_id: str, completion_id: str) -> ChatTrace:
    with db.session() as s:
        trace = s.scalar(select(ChatTrace).where(ChatTrace.workspace_id == workspace_id,
                                                 ChatTrace.completion_id == completion_id))
    if trace is None:
        raise TraceNotFound(
            f"No captured chat completion with id {completion_id!r} in this workspace: feedback needs the "
            "completion's trace, and traces are only kept while an admin has turned capture on for the "
            "workspace (PATCH /v1/admin/workspaces/{id} with capture_traces=true, or "
            "`plateforme admin workspaces capture WORKSPACE on`).")
    return trace


def give_feedback(db: Database, workspace_id: str, completion_id: str, rating: int,
                  corrected_answer: str | None, comment: str | None) -> ChatTrace:
    """Replace the feedback of a trace of `workspace_id` (TraceNotFound for any other workspace's)."""
    found = find_trace(db, workspace_id, completion_id)
    with db.session() as s:
        trace = s.get(ChatTrace, found.id)
        if trace is None:  # deleted meanwhile (its workspace was)
            raise TraceNotFound(f"No captured chat completion with id {completion_id!r} in this workspace.")
        trace.rating, trace.corrected_answer, trace.comment = rating, corrected_answer, comment
        trace.feedback_at = utcnow()
        s.commit()
        return trace
