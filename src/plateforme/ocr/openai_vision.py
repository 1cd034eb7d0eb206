"""OCR by a vision model behind an OpenAI-compatible server (vLLM, ...): the page image goes as a
chat completion's image_url (a data URI) with a prompt asking for the page as Markdown."""

import base64
import io

import httpx
from PIL import Image

from plateforme.ocr.engine import OCREngine, OCRText
from plateforme.ocr.errors import OCRError, OCRUnavailable

PROMPT = ("Transcribe this document page into Markdown. Keep the reading order, write headings as "
          "Markdown headings and tables as Markdown tables. Reply with the page's content only: "
          "no comments, no code fences around the whole answer.")


def _strip_fence(text: str) -> str:
    """Models often wrap the whole answer in ```markdown ... ```: take what is inside."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and stripped.count("```") == 2:
        return stripped[3:-3].split("\n", 1)[1].strip() if "\n" in stripped[3:-3] else ""
    return stripped


class OpenAIVisionEngine(OCREngine):
    name = "openai"

    def __init__(self, base_url: str | None, model: str | None, api_key: str | None = None,
                 timeout_s: float = 300.0):
        self.base_url, self.model, self.api_key, self.timeout_s = base_url, model, api_key, timeout_s

    def check(self) -> None:
        if not self.base_url or not self.model:
            raise OCRUnavailable("the 'openai' OCR engine needs a server and a model: set PLATEFORME_OCR_BASE_URL "
                                 "(e.g. http://vllm:8000/v1) and PLATEFORME_OCR_MODEL")

    def read(self, image: Image.Image, dpi: int) -> OCRText:
        self.check()
        png = io.BytesIO()
        image.convert("RGB").save(png, format="PNG")
        data_uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": data_uri}}]}]}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise OCRError(f"the OCR model server {url} cannot be reached: {exc}") from exc
        if response.status_code != 200:
            raise OCRError(f"the OCR model server {url} answered {response.status_code}: {response.text[:300]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise OCRError(f"the OCR model server {url} sent no chat completion: {response.text[:300]}") from exc
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return OCRText(_strip_fence(content or ""), image.width, image.height, dpi)
