"""Which format a file is: its bytes first (magic numbers), then its name and MIME type."""

import io
import zipfile

from plateforme.libraries.parsing.document import DocumentRejected

SUPPORTED = "PDF, DOCX, HTML, Markdown, plain text, and images (PNG, JPEG, TIFF, GIF, BMP, WebP)"

# A DOCX is a ZIP package: its XML parts (parsed in memory; media are not) may unpack to this at most.
MAX_UNPACKED_BYTES = 256 << 20
_IMAGES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
           (b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"BM", "bmp"))
# Binary formats recognised only to be named in the refusal.
_OTHER_BINARIES = ((b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office file (.doc, .xls, .ppt): save it as DOCX or PDF"),
                   (b"\x1f\x8b", "gzip data"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
                   (b"Rar!", "a RAR archive"), (b"\x7fELF", "an executable"), (b"MZ", "a Windows executable"),
                   (b"{\\rtf", "RTF: save it as DOCX or PDF"), (b"ID3", "MP3 audio"), (b"OggS", "Ogg media"),
                   (b"fLaC", "FLAC audio"), (b"\x00\x00\x01\x00", "an icon"), (b"SQLite format 3\x00", "an SQLite database"))
_HTML_NAMES = (".html", ".htm", ".xhtml")
_MARKDOWN_NAMES = (".md", ".markdown", ".mdown", ".mkd")
_HTML_MIMES = ("text/html", "application/xhtml+xml")
_MARKDOWN_MIMES = ("text/markdown", "text/x-markdown")


def _zip_format(data: bytes) -> str:
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentRejected(f"the file looks like a ZIP-based document (DOCX) but is corrupt: {exc}") from exc
    names = {entry.filename for entry in entries}
    if "word/document.xml" in names:
        unpacked = sum(entry.file_size for entry in entries if entry.filename.endswith((".xml", ".rels")))
        if unpacked > MAX_UNPACKED_BYTES:
            raise DocumentRejected(f"the DOCX's text unpacks to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} "
                                   "this server reads (a ZIP bomb, or a document to split)")
        return "docx"
    kind = ("a spreadsheet (XLSX)" if "xl/workbook.xml" in names else
            "a presentation (PPTX)" if "ppt/presentation.xml" in names else
            "an OpenDocument file: save it as DOCX or PDF" if "mimetype" in names else "a ZIP archive")
    raise DocumentRejected(f"unsupported type: {kind}; supported: {SUPPORTED}")


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or (head.startswith(b"<?xml") and b"<html" in head)


def detect_format(data: bytes, filename: str | None, mime_type: str | None) -> str:
    """'pdf', 'docx', 'image', 'html', 'markdown' or 'text'; DocumentRejected for anything else."""
    if not data:
        raise DocumentRejected("the file is empty")
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_format(data)
    if any(data.startswith(magic) for magic, _ in _IMAGES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    for magic, kind in _OTHER_BINARIES:
        if data.startswith(magic):
            raise DocumentRejected(f"unsupported type: {kind}; supported: {SUPPORTED}")
    name = (filename or "").lower()
    mime = (mime_type or "").split(";")[0].strip().lower()
    if name.endswith(_HTML_NAMES) or mime in _HTML_MIMES or _looks_like_html(data):
        return "html"
    if name.endswith(_MARKDOWN_NAMES) or mime in _MARKDOWN_MIMES:
        return "markdown"
    if name.endswith(".pdf") or mime == "application/pdf":
        raise DocumentRejected("the file is named or typed as a PDF but is not one (no %PDF- header): it is corrupt")
    if name.endswith(".docx") or mime.endswith("wordprocessingml.document"):
        raise DocumentRejected("the file is named or typed as DOCX but is not one (not a ZIP package): it is corrupt")
    return "text"  # decoded as text, or refused as binary data (text.py)
