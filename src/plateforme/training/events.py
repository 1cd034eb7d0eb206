"""The trainer's events: one JSON object per line on stdout, flushed at once; nothing else goes there.

`claim_stdout` keeps the real stdout for events and points file descriptor 1 at stderr, so that
whatever a library prints (Python or C) lands in the log, never in the event stream.
"""

import json
import os
import sys
from typing import TextIO


class Events:
    def __init__(self, out: TextIO | None):
        self.out = out  # None: this process prints no events (ranks other than 0)

    def emit(self, event: str, **fields) -> None:
        if self.out is None:
            return
        # One write per event: a signal between two writes could leave half an event on the stream.
        self.out.write(json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()


def claim_stdout() -> TextIO:
    """A private stream on the original stdout; stdout itself (fd 1 and sys.stdout) now goes to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events
