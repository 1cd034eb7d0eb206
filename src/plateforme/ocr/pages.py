"""Page selections of POST /v1/ocr: a list of 0-based indexes or a string like "0,2-4"."""

import re

from plateforme.ocr.errors import OCRInputError

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
# A selection may name at most this many pages (a string range like "0-99999999" is refused, not expanded).
MAX_SELECTED = 10_000


def select_pages(pages: str | list[int] | None, count: int) -> list[int]:
    """The 0-based indexes `pages` selects in a document of `count` pages, in order, once each."""
    if pages is None or pages == "" or pages == []:
        return list(range(count))
    wanted: list[int] = []
    if isinstance(pages, str):
        for part in pages.split(","):
            match = _RANGE.match(part)
            if match is None:
                raise OCRInputError(f"bad page selection {pages!r}: comma-separated page numbers and ranges "
                                    "from 0, e.g. '0,2-4'", "pages")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first:
                raise OCRInputError(f"bad page range {part.strip()!r}: it ends before it starts", "pages")
            if last - first + 1 + len(wanted) > MAX_SELECTED:
                raise OCRInputError(f"the page selection names more than {MAX_SELECTED} pages", "pages")
            wanted.extend(range(first, last + 1))
    else:
        wanted = list(pages)
    bad = [i for i in wanted if i < 0 or i >= count]
    if bad:
        raise OCRInputError(f"page {bad[0]} does not exist: the document has {count} page"
                            f"{'s' if count != 1 else ''}, numbered from 0 to {count - 1}", "pages")
    return list(dict.fromkeys(wanted))
