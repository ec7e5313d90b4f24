"""CMS-1500 field checks: code shapes, NPI Luhn, and refusing incomplete superbills by field name."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.documents.sources import SuperbillBody
from shared.superbill_rules import (
    is_cpt_hcpcs,
    is_icd10cm,
    is_modifier,
    is_npi,
    normalize_icd10cm,
    npi_check_digit,
    session_paid,
    superbill_problems,
)
from tests.unit.documents import samples

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", "1003000126"])
def test_known_valid_npis(npi: str) -> None:
    assert is_npi(npi)


@pytest.mark.parametrize("npi", ["1234567890", "123456789", "12345678931", "12345678a3", "", "0000000000"])
def test_invalid_npis(npi: str) -> None:
    assert not is_npi(npi)


@given(nine_digits)
def test_the_check_digit_makes_any_nine_digits_a_valid_npi(first_nine: str) -> None:
    assert is_npi(first_nine + str(npi_check_digit(first_nine)))


@given(nine_digits, st.integers(0, 9), st.integers(1, 9))
def test_changing_any_one_digit_breaks_the_npi(first_nine: str, position: int, delta: int) -> None:
    npi = first_nine + str(npi_check_digit(first_nine))
    digits = list(npi)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_npi("".join(digits))


@pytest.mark.parametrize("code", ["F41.1", "F33.1", "F43.23", "Z63.0", "F90.0", "F411", "f41.1", "S72.001A", "F32"])
def test_icd10cm_shapes(code: str) -> None:
    assert is_icd10cm(code)


@pytest.mark.parametrize("code", ["U07.1", "41.1", "F4", "F41.12345", "FF1.1", "90837", ""])
def test_not_icd10cm(code: str) -> None:
    assert not is_icd10cm(code)


def test_icd10cm_is_printed_dotted() -> None:
    assert normalize_icd10cm("f4323") == "F43.23"
    assert normalize_icd10cm("F41.1") == "F41.1"
    assert normalize_icd10cm("F32") == "F32"


@pytest.mark.parametrize("code", ["90837", "90834", "90791", "99213", "G0444", "H0004", "0591T", "1040F"])
def test_cpt_hcpcs_shapes(code: str) -> None:
    assert is_cpt_hcpcs(code)


@pytest.mark.parametrize("code", ["9083", "908377", "W1234", "F41.1", "ABCDE", ""])
def test_not_cpt_hcpcs(code: str) -> None:
    assert not is_cpt_hcpcs(code)


def test_modifiers() -> None:
    assert all(is_modifier(m) for m in ("95", "GT", "HO", "59"))
    assert not any(is_modifier(m) for m in ("9", "GTX", "", "G-"))


def problems_of(source) -> list[str]:
    return superbill_problems(source.practice, source.patient, SuperbillBody.model_validate(source.body))


def test_a_complete_superbill_has_no_problems() -> None:
    assert problems_of(samples.superbill()) == []
    assert problems_of(samples.superbill(minor=True)) == []


def test_missing_practice_fields_are_named() -> None:
    source = samples.superbill()
    practice = source.practice.model_copy(update={"tax_id": None, "phone": " ", "npi": "1234567890"})
    problems = superbill_problems(practice, source.patient, SuperbillBody.model_validate(source.body))
    assert "practice.tax_id is required" in problems
    assert "practice.phone is required" in problems
    assert any(p.startswith("practice.npi '1234567890' is not a valid NPI") for p in problems)


def test_line_problems_are_named_by_position() -> None:
    bad = samples.superbill_line(
        1, code="9083", diagnosis_codes=["F41.1", "BAD"], modifiers=["95", "XYZ"], place_of_service="1", units=0
    )
    problems = problems_of(samples.superbill(lines=[samples.superbill_line(0), bad]))
    assert "lines[1].code '9083' is not a CPT/HCPCS code" in problems
    assert "lines[1].diagnosis_codes 'BAD' is not an ICD-10-CM code" in problems
    assert "lines[1].modifiers 'XYZ' is not a 2-character modifier" in problems
    assert "lines[1].place_of_service '1' is not a 2-digit CMS place of service code" in problems
    assert "lines[1].units must be at least 1" in problems
    assert not any(p.startswith("lines[0]") for p in problems)


def test_a_line_needs_a_diagnosis_and_a_fee() -> None:
    problems = problems_of(samples.superbill(lines=[samples.superbill_line(0, diagnosis_codes=[], fee_cents=0)]))
    assert "lines[0].diagnosis_codes is required (at least one ICD-10-CM code)" in problems
    assert "lines[0].fee_cents must be a positive amount" in problems


def test_no_sessions_is_refused() -> None:
    assert "lines is required (at least one session with a service code)" in problems_of(samples.superbill(lines=[]))


def test_unlicensed_provider_needs_a_licensed_supervisor() -> None:
    alone = samples.superbill(lines=[samples.superbill_line(0, provider=samples.ASSOCIATE)])
    assert "lines[0].provider.license_number is required" in problems_of(alone)
    supervised = samples.superbill(
        lines=[samples.superbill_line(0, provider=samples.ASSOCIATE, supervisor=samples.PROVIDER)]
    )
    assert problems_of(supervised) == []
    bad_supervisor = {**samples.PROVIDER, "npi": "1234567899"}
    problems = problems_of(
        samples.superbill(lines=[samples.superbill_line(0, provider=samples.ASSOCIATE, supervisor=bad_supervisor)])
    )
    assert any(p.startswith("lines[0].supervisor.npi '1234567899'") for p in problems)


def test_minor_needs_a_responsible_party_and_patient_a_birth_date() -> None:
    source = samples.superbill(minor=True, responsible_party=None, patient_date_of_birth=None)
    problems = problems_of(source)
    assert "responsible_party is required" in problems
    assert "patient_date_of_birth is required" in problems


def test_insurance_when_given_needs_payer_and_member_id() -> None:
    source = samples.superbill(insurance={"payer_name": "Aetna", "member_id": ""})
    assert problems_of(source) == ["insurance.member_id is required"]


def test_rules_take_plain_mappings_as_billing_builds_them() -> None:
    source = samples.superbill()
    body = dict(source.body)
    assert superbill_problems(source.practice, source.patient, body) == []
    unknown_clinician = {**samples.superbill_line(0), "provider": None}
    problems = superbill_problems(source.practice, source.patient, {**body, "lines": [unknown_clinician]})
    assert problems == ["lines[0].provider is required"]


BILL_STATUSES = st.sampled_from(["open", "paid", "closed", "cancelled"])


@given(st.lists(BILL_STATUSES, max_size=6))
def test_a_session_is_paid_only_when_every_live_bill_of_its_group_is_paid(statuses: list[str]) -> None:
    live = [s for s in statuses if s != "cancelled"]
    assert session_paid(statuses) == (len(live) > 0 and set(live) == {"paid"})
    if "open" in statuses or "closed" in statuses:
        assert not session_paid(statuses), "one party's unpaid (or written-off) bill keeps the session unpaid"


@pytest.mark.parametrize(
    ("statuses", "paid"),
    [
        (["paid"], True),
        (["paid", "open"], False),  # a split: the mother paid, the father has not
        (["open", "paid"], False),
        (["paid", "paid"], True),
        (["paid", "cancelled"], True),  # the other party's bill was cancelled: nothing else is owed
        (["cancelled", "cancelled"], False),
        ([], False),
        (["closed"], False),
    ],
)
def test_split_session_examples(statuses: list[str], paid: bool) -> None:
    assert session_paid(statuses) is paid
