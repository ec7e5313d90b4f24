"""Rendering for real (WeasyPrint), read back with pypdf and pdftoppm: what each PDF says,
page numbers, the table header repeated on every page, and failures reported, not raised raw."""

import asyncio
import gc
import io
import os
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from services.documents.domain import RenderRequest, prepare
from services.documents.rendering import Renderer, RendererCrashed, RenderError, render_pdf
from tests.unit.documents import samples

SAMPLES_DIR = Path(os.environ.get("DOCUMENTS_SAMPLES_DIR", "/tmp/documents-samples"))


def pages_text(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def keep_sample(name: str, pdf: bytes) -> Path:
    """Save the PDF and a PNG of its first page for a person to look at (outside the repo)."""
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    path = SAMPLES_DIR / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(path), str(path.with_suffix(""))],
                   check=True)  # fmt: skip
    [png] = SAMPLES_DIR.glob(f"{name}-*1.png")
    return png


def test_bill_pdf_says_what_a_bill_must() -> None:
    bill = samples.bill(sessions=3, responsibility="insurance", minor=True, payments=[samples.card_payment(5000)])
    out = render_pdf(prepare("bill", bill.model_dump(mode="json")))
    [text] = pages_text(out.pdf)
    for expected in ("Rivers Edge Counseling", "1200 NW Everett St", "Tax ID 93-1234567", "NPI 1234567893",
                     "BILL TO Grace Park", "PATIENT Noah Park", "Bill number 1042", "Nov 2, 2026", "Nov 16, 2026",
                     "Sep 1, 2026 90837 Psychotherapy, 60 minutes 1 $150.00 $30.00 $120.00", "Insurance owes $360.00",
                     "You owe $90.00", "Nov 5, 2026 Payment (card) $50.00", "Paid $50.00", "Balance due $400.00",
                     "Thank you for coming in this month.", "Thank you for trusting us with your care.",
                     "http://localhost:8002/pay", "Access code 482913", "Page 1 of 1"):  # fmt: skip
        assert expected in text, expected
    assert out.pages == 1 and len(out.sha256) == 64
    png = keep_sample("bill-insurance", out.pdf)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    poppler = subprocess.run(["pdftotext", "-layout", "-", "-"], input=out.pdf, capture_output=True, check=True)
    assert "Bill number 1042 Access code 482913" in " ".join(poppler.stdout.decode().split()), "copyable as printed"


def test_a_long_bill_breaks_across_pages_with_the_header_repeated() -> None:
    out = render_pdf(prepare("bill", samples.bill(sessions=80).model_dump(mode="json")))
    texts = pages_text(out.pdf)
    assert out.pages == len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {out.pages}" in text
        if "Psychotherapy" in text:  # a page with session lines starts with the table header
            assert "Date Service Description Units Price" in text, f"table header missing on page {number}"
    assert sum("Psychotherapy" in text for text in texts) >= 3
    assert "Balance due $12,000.00" in texts[-1]
    keep_sample("bill-long", out.pdf)


def test_statement_pdf() -> None:
    out = render_pdf(prepare("statement", samples.statement().model_dump(mode="json")))
    [text] = pages_text(out.pdf)
    for expected in ("Period Oct 1, 2026 - Oct 31, 2026", "Opening balance $50.00", "Charge Psychotherapy",
                     "$150.00", "Payment Payment on bill 1040 1040", "Credit Sliding-scale discount",
                     "Closing balance $110.00",
                     "Current 1-30 days 31-60 days 61-90 days Over 90 days Total",
                     "$60.00 $50.00 $0.00 $0.00 $0.00 $110.00", "Amount due $110.00"):  # fmt: skip
        assert expected in text, expected
    keep_sample("statement", out.pdf)


def test_superbill_pdf() -> None:
    lines = [
        samples.superbill_line(0),
        samples.superbill_line(1, provider=samples.ASSOCIATE, supervisor=samples.PROVIDER),
    ]
    out = render_pdf(prepare("superbill", samples.superbill(minor=True, lines=lines).model_dump(mode="json")))
    text = " ".join(pages_text(out.pdf))
    for expected in ("Tax ID 93-1234567", "Phone +1-503-555-0100", "Date of birth 2012-03-09", "Member ID W123456789",
                     "Responsible party", "Dana Morgan, PhD, LP", "License PSY-30412", "A F41.1", "B F33.1",
                     "2026-10-08 10 90837 95", "Total charges $320.00", "Amount paid $320.00",
                     "please reimburse the patient", "Provider signature"):  # fmt: skip
        assert expected.lower() in text.lower(), expected
    keep_sample("superbill", out.pdf)


def test_pay_to_none_leaves_it_off() -> None:
    out = render_pdf(prepare("superbill", samples.superbill(pay_to="none").model_dump(mode="json")))
    assert "Payment to" not in " ".join(pages_text(out.pdf))


def test_a_template_error_is_a_render_error_with_the_reason() -> None:
    with pytest.raises(RenderError, match="UndefinedError"):
        render_pdf(RenderRequest("bill", "bill.html", {"title": "x"}))


async def test_the_pool_renders_off_the_event_loop_and_survives_a_dead_worker() -> None:
    renderer = Renderer(workers=1)
    request = prepare("bill", samples.bill().model_dump(mode="json"))
    try:
        assert (await renderer.render(request)).pages == 1
        assert renderer._pool is not None
        for pid in list(renderer._pool._processes):  # the OOM killer, say
            os.kill(pid, 9)
        with pytest.raises(RendererCrashed):
            await renderer.render(request)
        assert (await renderer.render(request)).pages == 1, "a fresh pool takes over"
    finally:
        renderer.stop()


def test_a_render_process_keeps_its_warm_heap_out_of_full_collections() -> None:
    """WeasyPrint, its fonts and the templates, loaded at the start, are frozen: the collector's
    full passes (a tenth of a render's CPU before) scan only what came after."""
    renderer = Renderer(workers=1)
    try:
        renderer.start()
        assert renderer._pool is not None
        frozen = renderer._pool.submit(gc.get_freeze_count).result()
        assert frozen > 50_000, frozen  # the warm heap is ~150,000 objects
    finally:
        renderer.stop()


def test_render_processes_step_back_in_the_cpu_scheduler() -> None:
    """Rendering takes idle cycles; consuming and HTTP answers go first when the CPU is short."""
    renderer = Renderer(workers=1, nice=7)
    try:
        renderer.start()
        assert renderer._pool is not None
        renderer._pool.submit(os.getpid).result()  # started and warmed up
        [pid] = renderer.pids()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    finally:
        renderer.stop()


async def test_render_processes_are_replaced_without_a_job_waiting_for_its_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A render process is replaced after TASKS_PER_PROCESS jobs. With the worker's two slots
    both in the pool, ProcessPoolExecutor's own `max_tasks_per_child` (Python 3.11) could let the
    process exit without starting another, and the job queued behind waited for its lease
    (120 s) to come back: the month-end's PDFs ran at half speed in those runs."""
    monkeypatch.setattr("services.documents.rendering.TASKS_PER_PROCESS", 2)
    renderer = Renderer(workers=1)
    request = prepare("bill", samples.bill().model_dump(mode="json"))
    seen: set[int] = set()

    async def slot() -> None:
        for _ in range(4):
            assert (await renderer.render(request)).pages == 1
            seen.update(renderer.pids())

    try:
        await asyncio.wait_for(asyncio.gather(slot(), slot()), timeout=90)
    finally:
        renderer.stop()
    assert len(seen) >= 3, "8 jobs at 2 per process: the process was replaced"
