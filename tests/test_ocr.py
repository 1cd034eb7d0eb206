"""OCR: Tesseract reads rendered French and English pages (accents included); page selections;
the OpenAI-compatible vision engine's request; POST /v1/ocr through the mistralai SDK (base64
documents and images, file ids, workspace isolation) and its refusals, on one live server."""

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from mistralai.client import Mistral
from PIL import Image
from pypdf import PdfReader, PdfWriter

from document_factory import page_image, png, scanned_pdf, text_pdf
from plateforme.ocr import render
from plateforme.ocr.errors import OCRError, OCRInputError, OCRUnavailable
from plateforme.ocr.openai_vision import OpenAIVisionEngine
from plateforme.ocr.pages import select_pages
from plateforme.ocr.tesseract import TesseractEngine
from spec_schema import validate, validate_response

FRENCH = ["Le château de la forêt", "Élève déjà présent à l'école.", "Où est la fenêtre ? Noël, maïs, cœur."]
ENGLISH = ["The quarterly report shows revenue of $4,210.", "Don't forget: it's the company's 10th year."]


def test_tesseract_reads_french_and_english_pages_with_their_accents():
    engine = TesseractEngine("fra+eng")
    french = engine.read(page_image(FRENCH), 200)
    assert french.markdown == "\n".join(FRENCH) and (french.width, french.height, french.dpi) == (1167, 1653, 200)
    assert engine.read(page_image(ENGLISH), 200).markdown == "\n".join(ENGLISH)


def test_tesseract_missing_binary_or_language_names_the_packages():
    with pytest.raises(OCRUnavailable, match="apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra"):
        TesseractEngine(binary="tesseract-not-installed").check()
    with pytest.raises(OCRUnavailable, match="apt-get install tesseract-ocr-deu tesseract-ocr-chi-sim"):
        TesseractEngine("fra+deu+chi_sim").check()
    with pytest.raises(OCRUnavailable, match="bad OCR languages"):
        TesseractEngine("fra;rm -rf").check()


def test_page_selections():
    assert select_pages(None, 3) == [0, 1, 2] and select_pages("", 2) == [0, 1]
    assert select_pages("0,2-4, 1", 6) == [0, 2, 3, 4, 1] and select_pages([2, 0, 2], 3) == [2, 0]
    for bad, message in (("1-", "bad page selection"), ("3-1", "ends before"), ("5", "page 5 does not exist"),
                         ([-1], "page -1 does not exist"), ("0-99999999", "more than")):
        with pytest.raises(OCRInputError, match=message):
            select_pages(bad, 4)


def test_huge_pdf_pages_are_rendered_at_a_lower_resolution():
    assert render._fitting_dpi(595, 842, 200) == 200  # A4
    dpi = render._fitting_dpi(14400, 14400, 200)  # PDF's largest page, 200 inches square
    assert 30 < dpi < 200 and (14400 * dpi / 72) ** 2 <= render.MAX_PIXELS


class _VisionServer(BaseHTTPRequestHandler):
    """A stand-in for a vLLM vision model (none can run here): records the request, answers fenced Markdown."""
    seen: list = []
    status = 200

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization"), body))
        answer = {"choices": [{"message": {"role": "assistant", "content": "```markdown\n# Facture\n\nTotal : 12 €\n```"}}]}
        data = json.dumps(answer if self.status == 200 else {"error": "model not loaded"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_vision_engine_sends_the_page_as_a_data_uri():
    server = HTTPServer(("127.0.0.1", 0), _VisionServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        engine = OpenAIVisionEngine(url, "vision-model", "secret-key", timeout_s=30)
        read = engine.read(Image.new("RGB", (300, 200), "white"), 150)
        assert (read.markdown, read.width, read.height, read.dpi) == ("# Facture\n\nTotal : 12 €", 300, 200, 150)
        path, auth, body = _VisionServer.seen[-1]
        assert path == "/v1/chat/completions" and auth == "Bearer secret-key" and body["model"] == "vision-model"
        text, image = body["messages"][0]["content"]
        assert "Markdown" in text["text"] and image["image_url"]["url"].startswith("data:image/png;base64,")
        png_bytes = base64.b64decode(image["image_url"]["url"].split(",", 1)[1])
        assert Image.open(io.BytesIO(png_bytes)).size == (300, 200)
        _VisionServer.status = 500
        with pytest.raises(OCRError, match="answered 500"):
            engine.read(Image.new("RGB", (10, 10)), 150)
        with pytest.raises(OCRUnavailable, match="PLATEFORME_OCR_BASE_URL"):
            OpenAIVisionEngine(None, None).check()
    finally:
        server.shutdown()


# --- POST /v1/ocr on a live server (no chat model: OCR needs none) -------------------------------

STATIC_KEY = "ocr-test-static-key"


@pytest.fixture(scope="module")
def tenants(start_server):
    """A server without chat models (OCR needs none): the static key's workspace ("alpha") and
    another workspace's member key ("beta")."""
    server = start_server(models=[], env={"PLATEFORME_API_KEY": STATIC_KEY, "PLATEFORME_OCR_LANGUAGES": "fra+eng"})
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {STATIC_KEY}"}, timeout=30) as admin:
        workspace = admin.post("/v1/admin/workspaces", json={"name": "beta"}).json()["id"]
        user = admin.post(f"/v1/admin/workspaces/{workspace}/users", json={"email": "ocr@beta.example"}).json()
        beta = admin.post("/v1/admin/keys", json={"user_id": user["id"]}).json()["key"]
    return server, {"alpha": STATIC_KEY, "beta": beta}


def _mixed_pdf() -> bytes:
    """Page 0 has a text layer; page 1 is a scan."""
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(text_pdf([["Contrat de service, page une, texte natif."]]))).pages[0])
    writer.add_page(PdfReader(io.BytesIO(scanned_pdf([FRENCH]))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_ocr_process_base64_pdf_and_image_through_the_sdk(tenants):
    server, keys = tenants
    client = Mistral(api_key=keys["alpha"], server_url=server.url)
    pdf = _mixed_pdf()
    uri = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    result = client.ocr.process(model="mistral-ocr-latest", document={"type": "document_url", "document_url": uri})
    assert result.model == "tesseract" and [p.index for p in result.pages] == [0, 1]
    assert result.pages[0].markdown == "Contrat de service, page une, texte natif."
    assert result.pages[1].markdown == "\n".join(FRENCH)
    dimensions = result.pages[1].dimensions  # the scan's 1167 px at 200 dpi, re-rendered at 200 dpi
    assert dimensions.dpi == 200 and abs(dimensions.width - 1167) <= 1 and abs(dimensions.height - 1653) <= 1
    assert (result.usage_info.pages_processed, result.usage_info.doc_size_bytes) == (2, len(pdf))
    only = client.ocr.process(model="tesseract", pages=[1], document={"type": "document_url", "document_url": uri})
    assert [p.index for p in only.pages] == [1]
    image = "data:image/png;base64," + base64.b64encode(png(page_image(ENGLISH))).decode()
    read = client.ocr.process(model="mistral-ocr-latest", document={"type": "image_url", "image_url": image})
    assert read.pages[0].index == 0 and read.pages[0].markdown == "\n".join(ENGLISH) and read.pages[0].images == []
    usage = httpx.get(f"{server.url}/v1/usage", params={"group_by": "model"},
                      headers={"Authorization": f"Bearer {keys['alpha']}"}).json()["data"]
    assert [(u["model"], u["requests"], u["prompt_tokens"]) for u in usage] == [("tesseract", 3, 4)]  # pages


def test_ocr_process_a_file_id_of_the_callers_workspace_only(tenants):
    server, keys = tenants
    alpha = Mistral(api_key=keys["alpha"], server_url=server.url)
    pdf = text_pdf([["Facture numéro 2024-117, montant dû : 1 250 euros."]])
    uploaded = alpha.files.upload(file={"file_name": "facture.pdf", "content": pdf}, purpose="ocr")
    result = alpha.ocr.process(model="mistral-ocr-latest", document={"type": "file", "file_id": uploaded.id})
    assert result.pages[0].markdown == "Facture numéro 2024-117, montant dû : 1 250 euros."
    request = {"model": "mistral-ocr-latest", "document": {"type": "file", "file_id": uploaded.id}, "pages": "0"}
    validate(request, "OCRRequest")
    response = httpx.post(f"{server.url}/v1/ocr", headers={"Authorization": f"Bearer {keys['alpha']}"}, json=request)
    validate_response("/v1/ocr", "post", response.status_code, response.json())  # Mistral's OCRResponse
    response = httpx.post(f"{server.url}/v1/ocr", headers={"Authorization": f"Bearer {keys['beta']}"}, json=request)
    assert response.status_code == 404 and response.json()["param"] == "document.file_id"


def test_ocr_refusals_in_mistrals_error_shape(tenants):
    server, keys = tenants
    headers = {"Authorization": f"Bearer {keys['alpha']}"}
    pdf = "data:application/pdf;base64," + base64.b64encode(text_pdf([["One page of text, nothing more."]])).decode()
    text = "data:text/plain;base64," + base64.b64encode(b"just some text").decode()
    cases = [
        ({"document_url": "https://example.com/a.pdf"}, None, 400, "does not fetch documents from the internet"),
        ({"document_url": text}, None, 400, "is not a PDF or an image"),
        ({"document_url": "data:application/pdf;base64,@@@"}, None, 400, "not valid base64"),
        ({"document_url": "data:application/pdf;base64,JVBERi0xLjQKZ2FyYmFnZQ=="}, None, 400, "the PDF is corrupt"),
        ({"document_url": pdf}, "0,3", 400, "page 3 does not exist"),
        ({"document_url": pdf}, "x", 400, "bad page selection"),
    ]
    for document, pages, status, message in cases:
        body = {"model": "mistral-ocr-latest", "document": {"type": "document_url", **document}, "pages": pages}
        response = httpx.post(f"{server.url}/v1/ocr", headers=headers, json=body, timeout=60)
        assert response.status_code == status and message in response.json()["message"], response.text
        assert response.json()["object"] == "error"
    others = [({"model": "gpt-4o", "document": {"document_url": pdf}}, 404, "No OCR model 'gpt-4o'"),
              ({"model": None, "document": {"type": "file", "file_id": "not-a-uuid"}}, 404, "No file with id"),
              ({"model": None, "document": {"document_url": pdf}, "document_annotation_format": {"type": "json_schema"}},
               400, "does not produce document annotations"),
              ({"model": None, "document": {"type": "image_url", "image_url": {"url": "http://x/y.png"}}}, 400,
               "does not fetch")]
    for body, status, message in others:
        response = httpx.post(f"{server.url}/v1/ocr", headers=headers, json=body, timeout=60)
        assert response.status_code == status and message in response.json()["message"], response.text
