"""Billing's money rules, pure: lines, splits, derived standing, cancel rule, bill-to."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain
from shared.events import Address, Client, Guardian, SessionService

DAY = dt.date(2026, 11, 2)
cents = st.integers(min_value=0, max_value=10_000_000)


def svc(fee: int, code: str = "90837", billable: bool = True) -> SessionService:
    return SessionService(code=code, fee_cents=fee, billable=billable)


def line(session: str, amount: int, code: str = "90837") -> domain.Line:
    return domain.Line(session, DAY, code, None, (), 1, amount)


def test_session_lines_skip_zero_fee_and_non_billable() -> None:
    lines = domain.session_lines(
        "s", DAY, "attended", [svc(13000), svc(0, "90785"), svc(900, "X", False)], domain.MissedFees()
    )
    assert [(ln.code, ln.amount_cents) for ln in lines] == [("90837", 13000)]
    assert domain.services_cents([svc(13000), svc(0), svc(900, billable=False)]) == 13000


@pytest.mark.parametrize("attendance", ["no_show", "late_cancel"])
def test_missed_sessions_bill_only_the_practice_fee(attendance: str) -> None:
    assert domain.session_lines("s", DAY, attendance, [svc(16000)], domain.MissedFees()) == []
    fees = domain.MissedFees(no_show_cents=7500, late_cancel_cents=5000)
    [fee] = domain.session_lines("s", DAY, attendance, [svc(16000)], fees)
    assert fee.amount_cents == (7500 if attendance == "no_show" else 5000)


def test_edits_replace_a_sessions_lines_and_keep_known_modifiers() -> None:
    original = [domain.Line("a", DAY, "90834", "45 min", ("95",), 1, 13000), line("b", 16000)]
    edited = domain.apply_edits(
        original, [domain.LineEdit("a", "90834", None, 12000), domain.LineEdit("a", "90785", "IC", 500)]
    )
    assert [(ln.session_id, ln.code, ln.amount_cents, ln.modifiers, ln.description) for ln in edited] == [
        ("a", "90834", 12000, ("95",), "45 min"),
        ("a", "90785", 500, (), "IC"),
        ("b", "90837", 16000, (), None),
    ]
    with pytest.raises(domain.RuleViolation):
        domain.apply_edits(original, [domain.LineEdit("zzz", "1", None, 1)])


@given(st.lists(cents, min_size=1, max_size=6), st.decimals(min_value=0, max_value=100, places=2))
def test_coinsurance_split_adds_up_per_line(amounts: list[int], percent: Decimal) -> None:
    lines = domain.split_lines(
        [line(f"s{i}", a) for i, a in enumerate(amounts)], "insurance", coinsurance_percent=percent
    )
    for ln, amount in zip(lines, amounts, strict=True):
        assert ln.client_owes_cents + ln.insurance_owes_cents == amount
        assert 0 <= ln.client_owes_cents <= amount
        assert isinstance(ln.client_owes_cents, int)


def test_coinsurance_rounds_half_even_once_per_line() -> None:
    [a, b] = domain.split_lines([line("s", 250), line("t", 350)], "insurance", coinsurance_percent=Decimal(1))
    assert (a.client_owes_cents, b.client_owes_cents) == (2, 4)  # 2.5 → 2, 3.5 → 4


@given(st.lists(st.tuples(st.sampled_from("abc"), cents), min_size=1, max_size=8), cents)
def test_copay_is_per_session_and_never_exceeds_it(session_lines: list[tuple[str, int]], copay: int) -> None:
    """Several sessions on one bill, in any order, each with one or more lines: each session's
    client part is its copay, or the session's total if less."""
    lines = domain.split_lines([line(s, a) for s, a in session_lines], "insurance", copay_cents=copay)
    for session in {s for s, _ in session_lines}:
        total = sum(a for s, a in session_lines if s == session)
        assert sum(ln.client_owes_cents for ln in lines if ln.session_id == session) == min(copay, total)
    assert all(ln.client_owes_cents + ln.insurance_owes_cents == ln.amount_cents for ln in lines)


def test_a_two_session_bill_owes_two_copays() -> None:
    lines = domain.split_lines([line("mon", 15000), line("wed", 15000)], "insurance", copay_cents=2500)
    assert [ln.client_owes_cents for ln in lines] == [2500, 2500]


def test_split_rules() -> None:
    assert domain.split_lines([line("s", 100)], "client")[0].client_owes_cents == 100
    assert domain.split_lines([line("s", 100)], "insurance")[0].insurance_owes_cents == 100
    with pytest.raises(domain.RuleViolation):
        domain.split_lines([line("s", 100)], "client", copay_cents=10)
    with pytest.raises(domain.RuleViolation):
        domain.split_lines([line("s", 100)], "insurance", copay_cents=10, coinsurance_percent=Decimal(5))


facts = st.lists(
    st.builds(
        domain.Fact,
        payment_id=st.sampled_from(["p1", "p2", "p3"]),
        kind=st.sampled_from(["payment", "refund"]),
        payer=st.sampled_from(["client", "insurance"]),
        amount_cents=st.integers(min_value=1, max_value=50_000),
    ),
    max_size=8,
)


@given(cents, st.integers(min_value=0, max_value=100), facts)
def test_standing_owed_parts_add_up_to_the_balance(total: int, client_pct: int, fs: list[domain.Fact]) -> None:
    client_share = total * client_pct // 100
    s = domain.standing(total, client_share, fs)
    signed = sum(f.amount_cents if f.kind == "payment" else -f.amount_cents for f in fs)
    assert s.paid_cents == signed
    assert s.balance_cents == total - signed
    assert s.client_owes_cents + s.insurance_owes_cents == s.balance_cents
    assert s.insurance_owes_cents >= 0
    if s.balance_cents >= 0:
        assert s.client_owes_cents >= 0


def test_standing_by_payer() -> None:
    s = domain.standing(10000, 2000, [domain.Fact("p", "payment", "client", 2000)])
    assert (s.client_owes_cents, s.insurance_owes_cents) == (0, 8000)
    s = domain.standing(10000, 2000, [domain.Fact("p", "payment", "insurance", 8000)])
    assert (s.client_owes_cents, s.insurance_owes_cents) == (2000, 0)


def test_status_follows_balance_and_cancel_is_final() -> None:
    assert domain.status_after("open", 0) == "paid"
    assert domain.status_after("paid", 100) == "open"
    assert domain.status_after("cancelled", 0) == "cancelled"


def test_cancel_needs_every_payment_fully_refunded() -> None:
    paid = domain.Fact("p", "payment", "client", 500)
    with pytest.raises(domain.RuleViolation) as exc:
        domain.ensure_cancellable("open", [paid, domain.Fact("p", "refund", "client", 499)])
    assert exc.value.code == "bill_has_payments"
    domain.ensure_cancellable("open", [paid, domain.Fact("p", "refund", "client", 500)])
    with pytest.raises(domain.RuleViolation):
        domain.ensure_cancellable("cancelled", [])


def _client(**kw) -> Client:
    address = Address(line1="1 Main", city="Portland", state="OR", postal_code="97209")
    base = dict(id="c", first_name="Noah", last_name="Park", date_of_birth=DAY, address=address)
    return Client(**(base | kw))


def test_bill_to_is_the_billing_contact_guardian_for_a_minor() -> None:
    guardians = [
        Guardian(name="Dad", email="d@x", relationship="father"),
        Guardian(name="Mom", email="m@x", relationship="mother", is_billing_contact=True),
    ]
    minor = _client(is_minor=True, guardians=guardians)
    assert domain.bill_to(minor).name == "Mom" and domain.bill_to(minor).email == "m@x"
    assert domain.patient(minor).name == "Noah Park"
    adult = _client(email="n@x")
    assert domain.bill_to(adult).name == "Noah Park" and domain.bill_to(adult).email == "n@x"


def test_due_date_rules() -> None:
    assert domain.due_date(DAY, None, 30, None) == DAY + dt.timedelta(days=30)
    assert domain.due_date(DAY, dt.date(2026, 12, 24), 30, None) == dt.date(2026, 12, 24)
    assert domain.due_date(DAY, None, 30, dt.date(2026, 12, 1)) == dt.date(2026, 12, 1)
    assert domain.due_date(DAY, None, 15, dt.date(2026, 1, 1)) == DAY + dt.timedelta(days=15)
    with pytest.raises(domain.RuleViolation):
        domain.due_date(DAY, dt.date(2026, 1, 1), 30, None)


@given(st.integers(min_value=0, max_value=999_999))
def test_access_code_is_six_digits(n: int) -> None:
    code = domain.access_code(n)
    assert len(code) == 6 and code.isdigit() and int(code) == n


def test_projection_batch_keeps_the_newest_version_of_each_row() -> None:
    from services.billing.repository import newest

    t1, t2 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    rows = [
        {"practice_id": "p", "id": "a", "as_of": t2, "v": "new"},
        {"practice_id": "p", "id": "a", "as_of": t1, "v": "old, delivered late"},
        {"practice_id": "q", "id": "a", "as_of": t1, "v": "other practice"},
        {"practice_id": "p", "id": "b", "as_of": t1, "v": "first"},
        {"practice_id": "p", "id": "b", "as_of": t1, "v": "redelivered later"},
    ]
    assert sorted(r["v"] for r in newest(rows)) == ["new", "other practice", "redelivered later"]


def test_a_platform_paid_session_is_never_billed_to_the_client() -> None:
    platforms = frozenset({"headway", "alma"})
    domain.ensure_client_billable("s1", "self_pay", platforms)
    domain.ensure_client_billable("s1", "insurance", platforms)
    with pytest.raises(domain.RuleViolation) as caught:
        domain.ensure_client_billable("s1", "alma", platforms)
    assert caught.value.code == "session_paid_by_third_party" and caught.value.status == 409


adjustments = st.lists(
    st.builds(
        domain.Adjustment,
        payer=st.sampled_from(["client", "insurance"]),
        amount_cents=st.integers(min_value=1, max_value=50_000),
    ),
    max_size=4,
)


@given(cents, st.integers(min_value=0, max_value=100), facts, adjustments)
def test_standing_with_adjustments_adds_up(total: int, client_pct: int, fs: list, adjs: list) -> None:
    s = domain.standing(total * 2, total * 2 * client_pct // 100, fs, adjs)
    assert s.adjusted_cents == sum(a.amount_cents for a in adjs)
    assert s.balance_cents == total * 2 - s.paid_cents - s.adjusted_cents
    assert s.client_owes_cents + s.insurance_owes_cents == s.balance_cents
    assert s.insurance_owes_cents >= 0


def test_adjustments_come_off_their_payers_share_and_close_the_bill() -> None:
    s = domain.standing(10000, 2000, [], [domain.Adjustment("insurance", 3000)])
    assert (s.client_owes_cents, s.insurance_owes_cents, s.balance_cents) == (2000, 5000, 7000)
    s = domain.standing(
        10000, 10000, [domain.Fact("p", "payment", "client", 4000)], [domain.Adjustment("client", 6000)]
    )
    assert (s.balance_cents, s.adjusted_cents) == (0, 6000)
    assert domain.status_after("open", s.balance_cents, s.adjusted_cents) == "closed"
    assert domain.status_after("closed", 500, 0) == "open"
    with pytest.raises(domain.RuleViolation) as caught:
        domain.ensure_adjustable("open", domain.standing(10000, 2000, []), "client", 2001)
    assert caught.value.status == 422
    domain.ensure_adjustable("open", domain.standing(10000, 2000, []), "insurance", 8000)
    with pytest.raises(domain.RuleViolation):
        domain.ensure_adjustable("cancelled", domain.standing(10000, 2000, []), "client", 1)


def test_a_payment_beyond_what_adjustments_left_open_is_turned_back() -> None:
    s = domain.standing(10000, 10000, [], [domain.Adjustment("client", 7000)])
    assert domain.payment_excess(s, "client", 5000) == 2000
    assert domain.payment_excess(s, "client", 3000) == 0
    unadjusted = domain.standing(10000, 10000, [domain.Fact("p", "payment", "client", 10000)])
    assert domain.payment_excess(unadjusted, "client", 500) == 0, "without adjustments nothing changes"


percent_lists = st.lists(st.integers(min_value=1, max_value=9_999), min_size=2, max_size=5).filter(
    lambda ws: sum(ws) <= 10_000
)


@given(st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=6), percent_lists)
def test_a_split_group_always_adds_up_exactly(amounts: list[int], weights: list[int]) -> None:
    """Any line amounts, any percents (2 decimals) adding up to 100: every line's shares add up to
    the line, none is negative, and each is within a cent per party of its exact share."""
    raw = [Decimal(w) / 100 for w in weights]
    percents = [Decimal(100) - sum(raw[1:]), *raw[1:]]
    if percents[0] <= 0:
        return
    lines = [domain.Line("s", dt.date(2026, 11, 2), "90837", None, (), 1, a) for a in amounts]
    per_party = domain.split_bill_lines(lines, percents)
    for i, line in enumerate(lines):
        shares = [party[i].amount_cents for party in per_party]
        assert sum(shares) == line.amount_cents
        assert all(s >= 0 for s in shares)
        for share, pct in zip(shares, percents, strict=True):
            assert abs(share - line.amount_cents * pct / 100) <= len(percents)
        assert all(party[i].client_owes_cents == party[i].amount_cents for party in per_party)
    assert sum(sum(ln.amount_cents for ln in party) for party in per_party) == sum(amounts)


def test_split_rounds_half_even_and_gives_the_leftover_to_the_first_party() -> None:
    assert domain.split_amount(10001, [Decimal(60), Decimal(40)]) == [6001, 4000]
    assert domain.split_amount(3, [Decimal(50), Decimal(50)]) == [1, 2]  # 1.5 → 2 (half-even), first: the rest
    assert domain.split_amount(2, [Decimal(1), Decimal(33), Decimal(33), Decimal(33)]) == [0, 1, 1, 0]
    with pytest.raises(domain.RuleViolation):
        domain.check_split([domain.SplitPart("client", Decimal(50)), domain.SplitPart("client", Decimal(50))])
