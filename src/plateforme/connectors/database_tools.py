"""The tools of a database connector: inspect the allowed schema, run read-only SQL.

OWNER: engineer E (issue 14). Skeleton committed by the lead to pin the interface.
"""

from plateforme.agent_tools.base import PlatformTool


class DatabaseTools:
    def __init__(self, settings):
        self.settings = settings

    async def tools(self, principal, connector, spec: dict, param: str) -> list[PlatformTool]:
        raise NotImplementedError("engineer E")
