"""The errors of agents, conversations, their tools and connectors, answered in Mistral's shape.

One class with the HTTP status it means, so that every module of these capabilities fails the
same way (api/errors.py answers it): 400 bad input (`param` names the field), 404 unknown (or
another workspace's), 409 a conflict with the conversation's state.
"""


class AgentsError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.param = param


class NotFound(AgentsError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(404, message, param)


class Conflict(AgentsError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(409, message, param)


class BadInput(AgentsError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(400, message, param)
