"""Job statuses (Mistral's names) and which moves between them are allowed: the one table every
status change goes through (JobStore.move refuses any other).

QUEUED -> VALIDATING -> VALIDATED -> RUNNING -> SUCCESS | FAILED
                     -> FAILED_VALIDATION
With auto_start false a job stops at VALIDATED until `start` puts it back in the queue.
Cancelling a job that is not running ends it at once (CANCELLED); a running one goes through
CANCELLATION_REQUESTED until its trainer process has stopped. A restart of the platform puts a
validating job back in the queue, cancels a job whose cancellation was requested, and fails a
running job whose working directory is gone.
"""

QUEUED = "QUEUED"
VALIDATING = "VALIDATING"
VALIDATED = "VALIDATED"
RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
FAILED = "FAILED"
FAILED_VALIDATION = "FAILED_VALIDATION"
CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
CANCELLED = "CANCELLED"

FINAL = frozenset({SUCCESS, FAILED, FAILED_VALIDATION, CANCELLED})
# Statuses in which a trainer process may be working on the job.
ACTIVE = frozenset({VALIDATING, RUNNING, CANCELLATION_REQUESTED})

ALLOWED = {
    QUEUED: {VALIDATING, RUNNING, CANCELLED, FAILED},
    VALIDATING: {VALIDATED, FAILED_VALIDATION, FAILED, CANCELLED, QUEUED},
    VALIDATED: {RUNNING, QUEUED, CANCELLED},
    RUNNING: {SUCCESS, FAILED, CANCELLATION_REQUESTED},
    CANCELLATION_REQUESTED: {CANCELLED, SUCCESS, FAILED},
}


class IllegalTransition(ValueError):
    pass


def check_transition(current: str, new: str) -> None:
    if new not in ALLOWED.get(current, ()):
        raise IllegalTransition(f"a {current} job cannot become {new}")


def sources(new: str, expect: set[str] | frozenset[str] | None = None) -> frozenset[str]:
    """The statuses a job may become `new` from: `expect` (each checked against the table), or all."""
    if expect is None:
        return frozenset(s for s, nxt in ALLOWED.items() if new in nxt)
    for current in expect:
        check_transition(current, new)
    return frozenset(expect)
