"""Mistral's `document_library` tool: search the workspace's libraries, cite what was found.

OWNER: engineer D (issue 14). Skeleton committed by the lead to pin the interface.
"""

from plateforme.agent_tools.base import PlatformTool


class DocumentLibraryTools:
    def __init__(self, library_search, url_signer):
        """`library_search`: retrieval.search.LibrarySearch; `url_signer`: files.signing.UrlSigner."""
        self.search, self.signer = library_search, url_signer

    async def tools(self, principal, spec: dict, param: str) -> list[PlatformTool]:
        raise NotImplementedError("engineer D")
