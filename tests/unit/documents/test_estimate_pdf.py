"""The Good Faith Estimate PDF, rendered for real and read with pdftotext: every element the
No Surprises Act rule asks for, and the dispute notice."""

import datetime as dt

import pytest

from services.documents.domain import SourceProblem, prepare
from services.documents.rendering import render_pdf
from shared.events import DocumentSource, Party
from tests.unit.documents import samples
from tests.unit.documents.test_adjustment_pdfs import pdftotext


def estimate(**body: object) -> DocumentSource:
    return DocumentSource(
        id="gfe-1", number=12, client_id="client-park", kind="good_faith_estimate", issued_on=dt.date(2026, 11, 3),
        bill_to=Party(name="Grace Park", email="grace.park@example.com"), patient=samples.NOAH,
        practice=samples.PRACTICE,
        body={
            "start_date": "2026-11-01", "end_date": "2027-04-30", "patient_date_of_birth": "2014-03-09",
            "clinician": {"name": "Dana Morgan", "credentials": "PhD, LP", "npi": "1234567893"},
            "items": [{"code": "90837", "description": "Psychotherapy, 60 minutes", "quantity": 20,
                       "fee_cents": 16000, "total_cents": 320000},
                      {"code": "90791", "description": "Diagnostic evaluation", "quantity": 1, "fee_cents": 22000,
                       "total_cents": 22000}],
            "total_cents": 342000, "diagnosis_codes": ["F41.1"], "dispute_threshold_cents": 40000,
        } | body,
    )  # fmt: skip


def test_the_estimate_pdf_carries_every_required_element_and_the_dispute_notice() -> None:
    text = pdftotext(render_pdf(prepare("good_faith_estimate", estimate().model_dump(mode="json"))).pdf)
    for expected in (
        "Good Faith Estimate 12", "Rivers Edge Counseling", "1200 NW Everett St", "Tax ID 93-1234567",
        "NPI 1234567893", "Dana Morgan, PhD, LP", "Noah Park", "Date of birth Mar 9, 2014",
        "Responsible party: Grace Park", "90837", "Psychotherapy, 60 minutes", "20", "$160.00", "$3,200.00",
        "90791", "$220.00", "Total estimated cost $3,420.00", "Nov 1, 2026 - Apr 30, 2027",
        "Date issued Nov 3, 2026", "F41.1", "at least $400.00 more than this Good Faith Estimate",
        "you can dispute the bill", "120 calendar days", "www.cms.gov/nosurprises",
    ):  # fmt: skip
        assert expected in text, expected


def test_an_estimate_that_does_not_add_up_is_refused_naming_why() -> None:
    with pytest.raises(SourceProblem, match="total_cents is not the sum of the items"):
        prepare("good_faith_estimate", estimate(total_cents=1).model_dump(mode="json"))
    with pytest.raises(SourceProblem, match=r"clinician\.npi"):
        prepare("good_faith_estimate", estimate(clinician={"name": "X", "npi": ""}).model_dump(mode="json"))
