"""POST /v1/ocr (Mistral's Document AI): a PDF or an image, as a file id (/v1/files, the caller's
workspace) or as base64 data in a data: URI, read page by page into Markdown."""

import base64
import binascii
import re
import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.errors import APIError
from plateforme.api.schemas.ocr import (DocumentURLChunk, FileChunk, ImageURLChunk, OCRPageDimensions,
                                        OCRPageObject, OCRRequest, OCRResponse, OCRUsageInfo)
from plateforme.files.service import FileNotFound
from plateforme.ocr.errors import OCRError, OCRInputError, OCRUnavailable
from plateforme.ocr.service import OCRService, UnknownOCRModel

router = APIRouter()

_DATA_URI = re.compile(r"^data:([\w.+/-]*)((?:;[\w.+-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)
# Request options that need a structured-output model or layout analysis this OCR does not have.
_UNSUPPORTED = {"bbox_annotation_format": "bounding-box annotations",
                "document_annotation_format": "document annotations",
                "document_annotation_prompt": "document annotations",
                "confidence_scores_granularity": "confidence scores"}


def _decode_data_uri(url: str, param: str) -> bytes:
    if url.lower().startswith(("http://", "https://")):
        raise APIError(400, "This gateway does not fetch documents from the internet: send the document as "
                       "base64 data (a data: URI, e.g. data:application/pdf;base64,...) or upload it to "
                       "/v1/files and pass {\"type\": \"file\", \"file_id\": ...}.", param=param)
    match = _DATA_URI.match(url)
    if match is None or not match.group(3):
        raise APIError(400, f"{param} must be a base64 data URI (data:<mime type>;base64,<data>) or, for a "
                       "stored file, use {\"type\": \"file\", \"file_id\": ...}.", param=param)
    try:
        return base64.b64decode(url[match.end():], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(400, f"{param} is not valid base64 data: {exc}", param=param) from exc


async def _file_bytes(request: Request, file_id: str, limit: int) -> bytes:
    files = request.app.state.files
    try:
        record = await run_in_threadpool(files.get, request.state.principal, str(uuid.UUID(file_id)))
    except (ValueError, FileNotFound):
        raise APIError(404, f"No file with id {file_id!r} in this workspace (upload it with POST /v1/files).",
                       type="not_found", param="document.file_id") from None
    if record.bytes > limit:
        raise APIError(400, f"file {file_id} has {record.bytes} bytes, more than the {limit} OCR reads "
                       "(PLATEFORME_LIBRARY_MAX_DOCUMENT_BYTES)", param="document.file_id")
    return await run_in_threadpool(lambda: b"".join(files.content(record)))


async def _document_bytes(request: Request, document, limit: int) -> bytes:
    if isinstance(document, FileChunk):
        return await _file_bytes(request, document.file_id, limit)
    # Decoding megabytes of base64 is CPU work: off the event loop too.
    if isinstance(document, DocumentURLChunk):
        return await run_in_threadpool(_decode_data_uri, document.document_url, "document.document_url")
    assert isinstance(document, ImageURLChunk)
    return await run_in_threadpool(_decode_data_uri, document.url, "document.image_url")


def _check_options(body: OCRRequest) -> None:
    for field, what in _UNSUPPORTED.items():
        if getattr(body, field) is not None:
            raise APIError(400, f"{field}: this server's OCR does not produce {what}; leave it out.", param=field)
    for field in ("extract_header", "extract_footer"):
        if getattr(body, field):
            raise APIError(400, f"{field}: this server's OCR does not tell headers and footers apart from the "
                           "page; leave it out (they stay in the page's markdown).", param=field)


@router.post("/v1/ocr", response_model=OCRResponse, response_model_exclude_none=False)
async def ocr(request: Request, body: OCRRequest) -> OCRResponse:
    service: OCRService = request.app.state.ocr
    try:
        model = service.resolve(body.model)
    except UnknownOCRModel as exc:
        raise APIError(404, str(exc), type="invalid_model", param="model") from exc
    _check_options(body)
    principal = request.state.principal
    await request.app.state.billing.admit(principal)
    data = await _document_bytes(request, body.document, request.app.state.settings.library_max_document_bytes)
    try:
        pages = await service.process(data, body.pages)
    except OCRInputError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc
    except OCRUnavailable as exc:
        raise APIError(503, f"OCR is not available on this server: {exc}", type="service_unavailable") from exc
    except OCRError as exc:
        raise APIError(502, f"OCR failed: {exc}", type="ocr_error") from exc
    await run_in_threadpool(request.app.state.billing.meter.record, principal, model, "ocr",
                            f"ocr-{uuid.uuid4().hex}", len(pages), 0)
    return OCRResponse(
        model=model,
        pages=[OCRPageObject(index=p.index, markdown=p.markdown,
                             dimensions=OCRPageDimensions(dpi=p.dpi, height=p.height, width=p.width))
               for p in pages],
        usage_info=OCRUsageInfo(pages_processed=len(pages), doc_size_bytes=len(data)))
