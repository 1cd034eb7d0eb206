"""Signed links to a library document's file and text: what they sign, how long they last, where
they are served (api/routes/documents.py), so that every part of the platform makes the same link."""

LINK_HOURS = 24
FILE_PATH = "/v1/library-documents/{document_id}/signed-content"


def document_scope(what: str, document_id: str) -> str:
    """What a link signs: a document's file ("file") and its text ("text") are links of their own
    (and never a file's of the Files API)."""
    return f"library-document-{what}:{document_id}"


def document_link(signer, document_id: str, hours: int = LINK_HOURS) -> str:
    """The signed link to a document's file, relative to the server's root: the link GET
    /v1/libraries/{library_id}/documents/{document_id}/signed-url answers, without its host."""
    expires, signature = signer.sign(document_scope("file", document_id), hours)
    return FILE_PATH.format(document_id=document_id) + f"?expires={expires}&signature={signature}"
