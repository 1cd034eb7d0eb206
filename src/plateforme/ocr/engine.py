"""The OCR engine interface: one page image in, its Markdown text and dimensions out."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class OCRText:
    markdown: str
    width: int       # pixels of the image that was read
    height: int
    dpi: int


class OCREngine(ABC):
    """Synchronous and CPU- or network-bound: callers run it off the event loop."""

    name: str

    @abstractmethod
    def read(self, image: Image.Image, dpi: int) -> OCRText:
        """Read one page image (rendered or scanned at `dpi`) into Markdown; raises OCRError."""

    def check(self) -> None:
        """Raise OCRUnavailable when this engine cannot run (called before long work starts)."""
