"""Parsing of each format into pages (documents generated in the tests), and each refusal."""

import io
import pickle
import zipfile

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from PIL import Image
from pypdf import PdfReader, PdfWriter

from document_factory import page_image, png, scanned_pdf, text_pdf
from plateforme.libraries.parsing import PAGE_SEPARATOR, DocumentRejected, OCRConfig, parse_document
from plateforme.libraries.parsing import detect
from plateforme.libraries.parsing.normalize import normalize_text

OCR = OCRConfig(languages="fra+eng")


def parse(data: bytes, filename: str = "doc", mime: str | None = None, max_pages: int = 50):
    return parse_document(data, filename, mime, OCR, max_pages)


def rejected(data: bytes, filename: str = "doc", mime: str | None = None, max_pages: int = 50) -> str:
    with pytest.raises(DocumentRejected) as caught:
        parse(data, filename, mime, max_pages)
    return str(caught.value)


def test_pdf_pages_keep_their_text_and_offsets():
    data = text_pdf([["Annual report 2024", "Revenue grew by 12%."], ["Deuxième page : l'été à Besançon."],
                     ["Third page, the last one."]])
    parsed = parse(data, "report.pdf")
    assert [p.number for p in parsed.pages] == [1, 2, 3] and not any(p.ocr for p in parsed.pages)
    assert parsed.pages[0].text == "Annual report 2024\nRevenue grew by 12%."
    assert parsed.pages[1].text == "Deuxième page : l'été à Besançon."
    text = parsed.text_content
    assert text == PAGE_SEPARATOR.join(p.text for p in parsed.pages)
    for page, offset in zip(parsed.pages, parsed.page_offsets):
        assert text[offset:offset + len(page.text)] == page.text
    assert pickle.loads(pickle.dumps(parsed)) == parsed  # crosses process boundaries


def test_pdf_headings_from_font_sizes_and_paragraphs_from_gaps():
    data = text_pdf([[(18, "Politique de sécurité des"), (18, "systèmes d'information"), "Référence PSSI-2026.",
                      (14, "1. Mots de passe"), "Au moins 14 caractères,", "jamais réutilisés.", "",
                      "Un gestionnaire est fourni."],
                     [(14, "2. Sauvegardes"), "Chaque nuit, chiffrées."]])
    pages = [p.text for p in parse(data, "pssi.pdf").pages]
    assert pages == ["# Politique de sécurité des systèmes d'information\n\nRéférence PSSI-2026.\n\n"
                     "## 1. Mots de passe\n\nAu moins 14 caractères,\njamais réutilisés.\n\nUn gestionnaire est fourni.",
                     "## 2. Sauvegardes\n\nChaque nuit, chiffrées."]


def test_pdf_scanned_page_is_read_by_ocr_among_text_pages():
    scan = PdfReader(io.BytesIO(scanned_pdf([["Le château de la forêt", "Élève déjà présent à l'école."]])))
    text = PdfReader(io.BytesIO(text_pdf([["A page with a real text layer on it."]])))
    writer = PdfWriter()
    writer.add_page(text.pages[0])
    writer.add_page(scan.pages[0])
    out = io.BytesIO()
    writer.write(out)
    parsed = parse(out.getvalue(), "mixed.pdf")
    assert [p.ocr for p in parsed.pages] == [False, True]
    assert "château" in parsed.pages[1].text and "école" in parsed.pages[1].text


def test_pdf_scan_under_a_typed_header_is_read_by_ocr():
    writer = PdfWriter(clone_from=io.BytesIO(scanned_pdf([["", "", "", "Le château de la forêt"]])))
    header = PdfReader(io.BytesIO(text_pdf([["Rapport confidentiel, page 3"]], size=(420, 595)))).pages[0]
    writer.pages[0].merge_page(header)  # a typed text layer of 24 characters over the scanned image
    out = io.BytesIO()
    writer.write(out)
    page = parse(out.getvalue(), "scan.pdf").pages[0]
    assert page.ocr and "Rapport confidentiel" in page.text and "Le château de la forêt" in page.text


def _encrypted(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(text_pdf([["Confidential figures for the board."]])))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_encrypted_with_a_password_is_rejected_and_without_one_opens():
    assert rejected(_encrypted("s3cret"), "locked.pdf").startswith("the PDF is encrypted")
    assert parse(_encrypted(""), "open.pdf").pages[0].text == "Confidential figures for the board."


def test_pdf_corrupt_is_rejected_with_its_cause():
    assert rejected(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
                    "broken.pdf").startswith("the PDF is corrupt: ")
    assert "corrupt" in rejected(b"this is not a pdf at all", "fake.pdf")


def test_too_many_pages_are_rejected():
    message = rejected(text_pdf([[f"Page {i} has some text on it."] for i in range(4)]), "long.pdf", max_pages=3)
    assert "4 pages" in message and "3" in message


def test_empty_and_unsupported_files_are_rejected_naming_the_type():
    assert rejected(b"", "empty.pdf") == "the file is empty"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    message = rejected(archive.getvalue(), "sheet.xlsx")
    assert "unsupported type: a spreadsheet (XLSX)" in message and "PDF, DOCX, HTML" in message
    assert "unsupported type: an executable" in rejected(b"\x7fELF\x02\x01\x01" + bytes(200), "tool")
    assert "binary data" in rejected(bytes(range(256)) * 8, "blob.bin")
    assert "legacy Office" in rejected(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "old.doc")


def test_type_comes_from_the_bytes_before_the_name():
    parsed = parse(text_pdf([["Named like text but it is a PDF."]]), "notes.txt", "text/plain")
    assert parsed.format == "pdf"


def _docx(build) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_headings_lists_tables_and_explicit_page_breaks():
    def build(d):
        d.add_heading("Rapport annuel", 1)
        d.add_paragraph("Premier paragraphe : é, à, ç.")
        d.add_paragraph("un point", style="List Bullet")
        table = d.add_table(rows=2, cols=2)
        for (r, c), value in {(0, 0): "Nom", (0, 1): "Valeur", (1, 0): "a|b", (1, 1): "3"}.items():
            table.cell(r, c).text = value
        p = d.add_paragraph("Avant la coupure.")
        p.add_run().add_break(WD_BREAK.PAGE)
        p.add_run("Après la coupure.")
        d.add_heading("Conclusion", 2)
        d.add_paragraph("Fin.")

    parsed = parse(_docx(build), "rapport.docx")
    assert parsed.format == "docx" and len(parsed.pages) == 2
    assert parsed.pages[0].text == ("# Rapport annuel\n\nPremier paragraphe : é, à, ç.\n\n- un point\n\n"
                                    "| Nom | Valeur |\n| --- | --- |\n| a\\|b | 3 |\n\nAvant la coupure.")
    assert parsed.pages[1].text == "Après la coupure.\n\n## Conclusion\n\nFin."


def test_docx_rendered_page_breaks_win_and_no_break_is_one_page():
    def build(d):
        d.add_paragraph("Page one text.")
        p = d.add_paragraph("Page two starts")
        run = p.add_run(" here.")
        run._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))
        p = d.add_paragraph("Still page two.")
        p.add_run().add_break(WD_BREAK.PAGE)  # Word rendered this explicit break too: counted once
        run = p.add_run("Page three.")
        run._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))

    pages = [p.text for p in parse(_docx(build), "r.docx").pages]
    assert pages == ["Page one text.\n\nPage two starts", "here.\n\nStill page two.", "Page three."]
    assert len(parse(_docx(lambda d: d.add_paragraph("Only text.")), "one.docx").pages) == 1


def test_docx_custom_heading_styles_and_a_title_above_the_headings():
    def build(d):
        style = d.styles.add_style("Intertitre maison", WD_STYLE_TYPE.PARAGRAPH)
        level = OxmlElement("w:outlineLvl")
        level.set(qn("w:val"), "1")
        style.element.get_or_add_pPr().append(level)
        d.add_paragraph("Section maison", style=style)
        d.add_paragraph("Corps du texte.")

    assert parse(_docx(build), "maison.docx").pages[0].text == "## Section maison\n\nCorps du texte."

    def titled(d):
        d.add_heading("Guide d'accueil", 0)  # the Title style: headings go one level below it
        d.add_heading("Premier jour", 1)
        d.add_heading("Badge", 2)

    assert parse(_docx(titled), "guide.docx").pages[0].text == "# Guide d'accueil\n\n## Premier jour\n\n### Badge"


def test_docx_corrupt_or_a_zip_bomb_is_rejected(monkeypatch):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("word/document.xml", "<not xml")
    assert rejected(archive.getvalue(), "bad.docx").startswith("the DOCX is corrupt")
    monkeypatch.setattr(detect, "MAX_UNPACKED_BYTES", 10_000)  # 256 MiB in production
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", "<w:document/>" + " " * 20_000)
    assert "unpacks to 20013 bytes, more than the 10000" in rejected(bomb.getvalue(), "bomb.docx")


def test_html_main_content_as_markdown_and_plain_text_fallback():
    page = ("<!DOCTYPE html><html><head><title>Site</title></head><body><nav>Accueil Produits Contact</nav>"
            "<article><h1>Le titre principal</h1><p>Ceci est le premier paragraphe de l'article, assez long pour "
            "compter comme contenu principal.</p><h2>Sous-partie</h2><p>Un second paragraphe, avec plus de texte "
            "pour que l'extraction le garde.</p></article><footer>Mentions légales</footer></body></html>")
    text = parse(page.encode(), "page.html").pages[0].text
    assert text.startswith("# Le titre principal\n\nCeci est le premier paragraphe")
    assert "## Sous-partie" in text and "Accueil" not in text and "Mentions" not in text
    assert parse(b"<html><body><p>court</p></body></html>", "x.htm").pages[0].text == "court"
    russian = "Это русский текст, написанный в кодировке windows-1251 и достаточно длинный."
    declared = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=windows-1251'></head>"
                f"<body><p>{russian}</p></body></html>").encode("cp1251")
    assert parse(declared, "ru.html").pages[0].text == russian
    labelled_latin1 = "<meta charset=iso-8859-1><p>Prix : 5 € ; café à emporter.</p>".encode("cp1252")
    assert parse(labelled_latin1, "eur.html").pages[0].text == "Prix : 5 € ; café à emporter."


def test_markdown_and_text_decoding_and_normalisation():
    markdown = "# Titre\n\nDu *texte*.\n\n\n\n## Partie\n\n- a\n- b\n"
    assert parse(markdown.encode(), "notes.md").pages[0].text == "# Titre\n\nDu *texte*.\n\n## Partie\n\n- a\n- b"
    assert parse("Noël à Paris".encode("cp1252"), "legacy.txt").pages[0].text == "Noël à Paris"
    assert parse("Ünïcode".encode("utf-16"), "wide.txt").pages[0].text == "Ünïcode"
    decomposed = "Cafe\u0301\r\nligne\x00 deux  \n\n\n\nfin"
    assert parse(decomposed.encode(), "n.txt").pages[0].text == "Café\nligne deux\n\nfin"
    assert normalize_text("a\f b\u2028c") == "a\n b\nc" and normalize_text("e\ufb03cace, \ufb01n") == "efficace, fin"


def test_image_pages_are_read_by_ocr():
    image = page_image(["Invoice number 4217", "Total due: 1,250 euros"])
    parsed = parse(png(image), "scan.png", "image/png")
    assert parsed.format == "image" and parsed.pages[0].ocr
    assert "Invoice number 4217" in parsed.pages[0].text
    frames = io.BytesIO()
    image.save(frames, format="TIFF", save_all=True, append_images=[page_image(["Second sheet of the scan"])])
    pages = parse(frames.getvalue(), "scan.tiff").pages
    assert len(pages) == 2 and "Second sheet" in pages[1].text
    assert rejected(frames.getvalue(), "scan.tiff", max_pages=1).startswith("the image has 2 pages")
    assert "corrupt" in rejected(b"\x89PNG\r\n\x1a\n" + bytes(40), "broken.png")
    assert "9000x7000 pixels, more than" in rejected(png(Image.new("1", (9000, 7000))), "huge.png")


def test_missing_ocr_language_rejects_a_scanned_document_naming_the_fix():
    image = png(Image.new("RGB", (200, 100), "white"))
    with pytest.raises(DocumentRejected) as caught:
        parse_document(image, "scan.png", None, OCRConfig(languages="xyz"), 10)
    assert "needs OCR" in str(caught.value) and "apt-get install tesseract-ocr-xyz" in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).args == caught.value.args
