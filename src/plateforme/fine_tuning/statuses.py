"""Job statuses (Mistral's names) and which moves between them are allowed.

QUEUED -> VALIDATING -> VALIDATED -> RUNNING -> SUCCESS | FAILED
                     -> FAILED_VALIDATION
With auto_start false a job stops at VALIDATED until `start` puts it back in the queue.
Cancelling a job that is not running ends it at once (CANCELLED); a running one goes through
CANCELLATION_REQUESTED until its trainer process has stopped.
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
