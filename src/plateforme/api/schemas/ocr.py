"""POST /v1/ocr shapes (Mistral's OCRRequest, OCRResponse: Document AI)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FileChunk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["file"] = "file"
    file_id: str


class DocumentURLChunk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["document_url"] = "document_url"
    document_url: str
    document_name: str | None = None


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    detail: str | None = None


class ImageURLChunk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL | str

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


class OCRRequest(BaseModel):
    model: str | None
    document: FileChunk | DocumentURLChunk | ImageURLChunk = Field(description="Document to run OCR on")
    pages: str | list[int] | None = None
    include_image_base64: bool | None = None
    image_limit: int | None = None
    image_min_size: int | None = None
    bbox_annotation_format: dict[str, Any] | None = None
    document_annotation_format: dict[str, Any] | None = None
    document_annotation_prompt: str | None = None
    table_format: Literal["markdown", "html"] | None = None
    extract_header: bool = False
    extract_footer: bool = False
    include_blocks: bool = True
    confidence_scores_granularity: Literal["word", "page", "block"] | None = None


class OCRPageDimensions(BaseModel):
    dpi: int
    height: int
    width: int


class OCRPageObject(BaseModel):
    index: int
    markdown: str
    images: list[dict] = []
    tables: list[dict] = []
    hyperlinks: list[str] = []
    header: str | None = None
    footer: str | None = None
    dimensions: OCRPageDimensions | None


class OCRUsageInfo(BaseModel):
    pages_processed: int
    doc_size_bytes: int | None = None


class OCRResponse(BaseModel):
    pages: list[OCRPageObject]
    model: str
    document_annotation: str | None = None
    usage_info: OCRUsageInfo
