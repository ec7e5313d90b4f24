"""Which versions render, what a source must hold, and the figures a document prints."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.documents.domain import SourceProblem, prepare, should_render
from services.documents.sources import SIGN, StatementBody, SuperbillBody
from services.documents.views import bill_view, diagnosis_pointers, statement_view
from shared.money import format_money
from tests.unit.documents import samples


def test_only_a_newer_version_renders() -> None:
    assert should_render(None, 1)
    assert should_render(1, 2)
    assert not should_render(2, 2)
    assert not should_render(3, 2)


def test_bill_view_for_insurance_responsibility_shows_both_shares() -> None:
    view = bill_view(samples.bill(sessions=2, responsibility="insurance", minor=True))
    assert view["insurance"] is True
    assert view["lines"][0]["client_owes"] == "$30.00"
    assert view["lines"][0]["insurance_owes"] == "$120.00"
    assert view["insurance_owes"] == "$240.00" and view["client_owes"] == "$60.00"
    assert view["bill_to"]["name"] == "Grace Park" and view["patient"]["name"] == "Noah Park"


def test_bill_view_payments_refunds_and_pay_link() -> None:
    bill = samples.bill(sessions=2, payments=[samples.card_payment(10000), samples.refund(2500)])
    view = bill_view(bill)
    assert [(p["label"], p["amount"]) for p in view["payments"]] == [
        ("Payment (card)", "$100.00"),
        ("Refund", "-$25.00"),
    ]
    assert view["paid"] == "$75.00" and view["balance"] == "$225.00"
    assert view["payable"] and view["access_code"] == "482913" and view["number"] == "1042"
    assert view["patient"] is None, "an adult is billed as their own patient"


def test_payment_dates_are_in_the_practice_time_zone() -> None:
    late_evening = {**samples.card_payment(100), "occurred_at": "2026-11-06T03:00:00Z"}  # Nov 5, 7 pm in Portland
    assert bill_view(samples.bill(payments=[late_evening]))["payments"][0]["date"] == "Nov 5, 2026"


def test_paid_and_cancelled_bills_are_not_payable() -> None:
    assert not bill_view(samples.bill(status="paid"))["payable"]
    assert not bill_view(samples.bill(status="cancelled"))["payable"]


def test_a_broken_bill_source_fails_naming_the_field() -> None:
    source = samples.bill().model_dump(mode="json")
    del source["access_code"]
    with pytest.raises(SourceProblem, match=r"bill\.access_code: Field required"):
        prepare("bill", source)


def test_statement_closing_balance_must_follow_from_the_entries() -> None:
    with pytest.raises(SourceProblem, match="closing_balance_cents 12000 is not opening balance"):
        prepare("statement", samples.statement(closing_balance_cents=12000).model_dump(mode="json"))


def test_statement_entries_must_move_the_balance_the_way_their_kind_does() -> None:
    entry = {"date": "2026-10-05", "kind": "payment", "amount_cents": 1000}
    source = samples.statement(entries=[entry], closing_balance_cents=6000)
    with pytest.raises(SourceProblem, match=r"entries\[0\]\.amount_cents has the wrong sign for a payment"):
        prepare("statement", source.model_dump(mode="json"))


def test_a_wrong_running_balance_is_refused() -> None:
    entry = {"date": "2026-10-05", "kind": "charge", "amount_cents": 1000, "balance_cents": 1000}
    source = samples.statement(entries=[entry], closing_balance_cents=6000)
    with pytest.raises(SourceProblem, match=r"entries\[0\]\.balance_cents 1000 should be 6000"):
        prepare("statement", source.model_dump(mode="json"))


def test_statement_entries_without_a_description_name_their_bill() -> None:
    view = prepare("statement", samples.statement().model_dump(mode="json")).context
    assert [e["description"] for e in view["entries"]][:2] == ["Psychotherapy, 60 minutes", "Payment on bill 1040"]
    assert [e["credits"] for e in view["entries"]] == ["", "$100.00", "", "$15.00"]


def test_statement_body_fields_are_named() -> None:
    source = samples.statement().model_dump(mode="json")
    del source["body"]["opening_balance_cents"]
    with pytest.raises(SourceProblem, match=r"statement\.body\.opening_balance_cents: Field required"):
        prepare("statement", source)


def test_a_source_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(SourceProblem, match="expected 'superbill'"):
        prepare("superbill", samples.statement().model_dump(mode="json"))


def test_superbill_problems_refuse_rendering() -> None:
    source = samples.superbill(lines=[samples.superbill_line(0, code="ABC")]).model_dump(mode="json")
    with pytest.raises(SourceProblem, match=r"superbill refused: lines\[0\]\.code 'ABC' is not a CPT/HCPCS code"):
        prepare("superbill", source)


def test_diagnosis_pointers_are_lettered_in_first_seen_order() -> None:
    source = samples.superbill(
        lines=[samples.superbill_line(0, diagnosis_codes=["F41.1", "f331"]), samples.superbill_line(1)]
    )
    request = prepare("superbill", source.model_dump(mode="json"))
    assert request.context["diagnoses"] == [("A", "F41.1"), ("B", "F33.1")]
    assert [line["pointers"] for line in request.context["lines"]] == ["AB", "AB"]
    assert diagnosis_pointers(SuperbillBody.model_validate(source.body)) == request.context["diagnoses"]


def test_supervised_line_prints_the_supervisors_npi() -> None:
    line = samples.superbill_line(0, provider=samples.ASSOCIATE, supervisor=samples.PROVIDER)
    request = prepare("superbill", samples.superbill(lines=[line]).model_dump(mode="json"))
    assert request.context["lines"][0]["npi"] == samples.PROVIDER["npi"]
    assert request.context["lines"][0]["supervised_by"] == "Dana Morgan"


entries = st.lists(
    st.tuples(st.sampled_from(list(SIGN)), st.integers(0, 10_000_000)).map(lambda e: (e[0], SIGN[e[0]] * e[1])),
    max_size=30,
)


@given(st.integers(-1_000_000, 10_000_000), entries)
def test_statement_running_balance_ends_at_the_closing_balance(opening: int, moves: list[tuple[str, int]]) -> None:
    closing = opening + sum(amount for _, amount in moves)
    source = samples.statement(
        opening_balance_cents=opening,
        closing_balance_cents=closing,
        entries=[{"date": "2026-10-05", "kind": k, "description": k, "amount_cents": a} for k, a in moves],
    )
    body = StatementBody.model_validate(source.body)
    view = statement_view(source, body)
    last = view["entries"][-1]["balance"] if moves else view["opening_balance"]
    assert last == view["closing_balance"] == format_money(closing)
