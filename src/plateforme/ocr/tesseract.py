"""The default OCR engine: Debian's Tesseract (`tesseract` binary, run as a subprocess)."""

import io
import os
import re
import shutil
import subprocess
from functools import lru_cache

from PIL import Image

from plateforme.ocr.engine import OCREngine, OCRText
from plateforme.ocr.errors import OCRError, OCRUnavailable

# One thread per Tesseract: OpenMP's spinning threads make a page several times slower on a busy
# machine, and pages run side by side (ingestion workers, concurrent /v1/ocr requests) anyway.
THREADS = "1"
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra"
# Tesseract's Debian packages are named after its language codes (tesseract-ocr-deu, ...).
_LANG = re.compile(r"^[A-Za-z_]+$")


@lru_cache(maxsize=4)
def _installed_languages(binary: str) -> frozenset[str]:
    try:
        out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OCRUnavailable(f"cannot run {binary} --list-langs: {exc}; install Tesseract: {INSTALL_HINT}") from exc
    # The first line is 'List of available languages in "...":'
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def _paragraphs(text: str) -> str:
    """Tesseract's text as Markdown: paragraphs apart by one blank line, no trailing spaces."""
    lines = [line.rstrip() for line in text.replace("\f", "\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class TesseractEngine(OCREngine):
    name = "tesseract"

    def __init__(self, languages: str = "eng+fra", timeout_s: float = 300.0, binary: str = "tesseract"):
        self.languages, self.timeout_s, self.binary = languages, timeout_s, binary

    def check(self) -> None:
        path = shutil.which(self.binary)
        if path is None:
            raise OCRUnavailable(f"OCR needs Tesseract, and the {self.binary!r} binary is not installed: "
                                 f"{INSTALL_HINT}")
        wanted = [lang for lang in self.languages.split("+") if lang]
        if not wanted or not all(_LANG.match(lang) for lang in wanted):
            raise OCRUnavailable(f"bad OCR languages {self.languages!r}: Tesseract codes joined with '+', "
                                 "e.g. eng+fra (PLATEFORME_OCR_LANGUAGES)")
        missing = [lang for lang in wanted if lang not in _installed_languages(path)]
        if missing:
            packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-').lower()}" for lang in missing)
            raise OCRUnavailable(f"Tesseract has no language data for {', '.join(missing)}: "
                                 f"apt-get install {packages} (or change PLATEFORME_OCR_LANGUAGES)")

    def read(self, image: Image.Image, dpi: int) -> OCRText:
        self.check()
        pixels = io.BytesIO()  # grayscale PGM: Tesseract binarises anyway, and PNG compression costs more
        image.convert("L").save(pixels, format="PPM")
        command = [self.binary, "stdin", "stdout", "-l", self.languages, "--dpi", str(dpi), "--psm", "3"]
        try:
            done = subprocess.run(command, input=pixels.getvalue(), capture_output=True, timeout=self.timeout_s,
                                  env={**os.environ, "OMP_THREAD_LIMIT": THREADS})
        except subprocess.TimeoutExpired as exc:
            raise OCRError(f"Tesseract took more than {self.timeout_s:.0f} s on one page") from exc
        except OSError as exc:
            raise OCRUnavailable(f"cannot run Tesseract ({exc}): {INSTALL_HINT}") from exc
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OCRError(f"Tesseract failed (exit {done.returncode}): {message[-1] if message else 'no message'}")
        return OCRText(_paragraphs(done.stdout.decode("utf-8", "replace")), image.width, image.height, dpi)
