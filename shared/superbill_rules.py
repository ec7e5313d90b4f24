"""CMS-1500 field checks for superbills, pure: billing checks a superbill before it creates one,
documents before it renders one (a service never imports another service, so the rules live here).

A superbill an insurer will accept needs every field a claim form asks for, in the right
shape. These functions check shapes (not whether a code exists in this year's code set):
ICD-10-CM diagnosis codes, CPT/HCPCS procedure codes and modifiers, place-of-service codes,
and NPIs with their Luhn check digit. `missing_fields` names what a superbill lacks, so it
is refused with a clear message instead of being rendered half-empty.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

ICD10CM = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")
CPT_HCPCS = re.compile(r"^(?:[0-9]{4}[0-9FTU]|[A-V][0-9]{4})$")
MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
PLACE_OF_SERVICE = re.compile(r"^[0-9]{2}$")
NPI = re.compile(r"^[0-9]{10}$")
MAX_DIAGNOSES = 12  # CMS-1500 box 21 holds A-L
MAX_MODIFIERS = 4  # box 24D


def is_icd10cm(code: str) -> bool:
    """ICD-10-CM shape: letter (not U), digit, alphanumeric, then up to 4 after the dot."""
    return bool(ICD10CM.match(code.strip().upper()))


def normalize_icd10cm(code: str) -> str:
    """`f411` → `F41.1`: the dotted form claim forms print."""
    code = code.strip().upper().replace(".", "")
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def is_cpt_hcpcs(code: str) -> bool:
    """CPT (5 digits, or 4 digits + F/T/U) or HCPCS Level II (letter A-V + 4 digits)."""
    return bool(CPT_HCPCS.match(code.strip().upper()))


def is_modifier(code: str) -> bool:
    return bool(MODIFIER.match(code.strip().upper()))


def is_place_of_service(code: str) -> bool:
    return bool(PLACE_OF_SERVICE.match(code.strip()))


def npi_check_digit(first_nine: str) -> int:
    """Luhn check digit of an NPI: computed over the card-issuer prefix 80840 + 9 digits."""
    total = 0
    for i, ch in enumerate(reversed("80840" + first_nine)):
        d = int(ch)
        if i % 2 == 0:  # every second digit from the right, starting with the rightmost payload digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_npi(value: str) -> bool:
    """10 digits whose last is the Luhn check digit (with the 80840 prefix)."""
    value = value.strip()
    return bool(NPI.match(value)) and npi_check_digit(value[:9]) == int(value[9])


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def missing_fields(record: Any, required: Iterable[str], prefix: str) -> list[str]:
    """Dotted names of the `required` fields that `record` (mapping or object) lacks."""
    if record is None:
        return [prefix]
    return [f"{prefix}.{name}" for name in required if _blank(_get(record, name))]


def check_npi(value: Any, field: str) -> list[str]:
    if _blank(value):
        return [f"{field} is required"]
    if not is_npi(str(value)):
        return [f"{field} {value!r} is not a valid NPI (10 digits with a Luhn check digit)"]
    return []


def check_service_line(line: Mapping[str, Any] | Any, field: str) -> list[str]:
    """One superbill line's claim fields: date, place of service, code, modifiers, units,
    diagnoses (1-12, ICD-10-CM shape) and a fee."""
    problems = [f"{name} is required" for name in missing_fields(line, ("date_of_service", "code"), field)]
    code = _get(line, "code")
    if not _blank(code) and not is_cpt_hcpcs(str(code)):
        problems.append(f"{field}.code {code!r} is not a CPT/HCPCS code")
    pos = _get(line, "place_of_service")
    if _blank(pos):
        problems.append(f"{field}.place_of_service is required")
    elif not is_place_of_service(str(pos)):
        problems.append(f"{field}.place_of_service {pos!r} is not a 2-digit CMS place of service code")
    modifiers = _get(line, "modifiers") or []
    if len(modifiers) > MAX_MODIFIERS:
        problems.append(f"{field}.modifiers has more than {MAX_MODIFIERS}")
    problems += [f"{field}.modifiers {m!r} is not a 2-character modifier" for m in modifiers if not is_modifier(m)]
    diagnoses = _get(line, "diagnosis_codes") or []
    if not diagnoses:
        problems.append(f"{field}.diagnosis_codes is required (at least one ICD-10-CM code)")
    if len(diagnoses) > MAX_DIAGNOSES:
        problems.append(f"{field}.diagnosis_codes has more than {MAX_DIAGNOSES}")
    problems += [f"{field}.diagnosis_codes {c!r} is not an ICD-10-CM code" for c in diagnoses if not is_icd10cm(str(c))]
    units = _get(line, "units")
    if units is None or units < 1:
        problems.append(f"{field}.units must be at least 1")
    fee = _get(line, "fee_cents")
    if fee is None or fee <= 0:
        problems.append(f"{field}.fee_cents must be a positive amount")
    return problems


def check_provider(provider: Any, field: str, *, needs_license: bool) -> list[str]:
    required = ("name", "credentials", "license_number") if needs_license else ("name", "credentials")
    problems = [f"{name} is required" for name in missing_fields(provider, required, field)]
    if provider is not None:
        problems += check_npi(_get(provider, "npi"), f"{field}.npi")
    return problems


def superbill_problems(practice: Any, patient: Any, body: Any) -> list[str]:
    """Everything that keeps a superbill from being a claim an insurer will accept; empty
    when it is complete. `practice`/`patient` as in DocumentSource, `body` a SuperbillBody
    (or the same fields as a mapping)."""
    problems = [
        f"{name} is required" for name in missing_fields(practice, ("name", "address", "phone", "tax_id"), "practice")
    ]
    problems += check_npi(_get(practice, "npi"), "practice.npi")
    problems += [f"{name} is required" for name in missing_fields(patient, ("name", "address"), "patient")]
    if _blank(_get(body, "patient_date_of_birth")):
        problems.append("patient_date_of_birth is required")
    if _get(body, "patient_is_minor"):
        party = _get(body, "responsible_party")
        problems += [f"{name} is required" for name in missing_fields(party, ("name",), "responsible_party")]
    insurance = _get(body, "insurance")
    if insurance is not None:
        problems += [
            f"{name} is required" for name in missing_fields(insurance, ("payer_name", "member_id"), "insurance")
        ]
    lines = _get(body, "lines") or []
    if not lines:
        problems.append("lines is required (at least one session with a service code)")
    for i, line in enumerate(lines):
        field = f"lines[{i}]"
        problems += check_service_line(line, field)
        supervisor = _get(line, "supervisor")
        problems += check_provider(_get(line, "provider"), f"{field}.provider", needs_license=supervisor is None)
        if supervisor is not None:
            problems += check_provider(supervisor, f"{field}.supervisor", needs_license=True)
        paid = _get(line, "paid_cents") or 0
        if paid < 0:
            problems.append(f"{field}.paid_cents cannot be negative")
    return problems


def session_paid(bill_statuses: Iterable[str]) -> bool:
    """Whether a session counts as paid for an automatic superbill, given the status of every bill
    that charged for it (a split session has one bill per party). Only when every bill still
    charging for it is paid: one parent paying their half does not pay the session. Cancelled bills
    charge nothing; a session none charges for is not paid; a bill closed by a write-off was not
    paid by the client, so it is not reimbursable."""
    live = [status for status in bill_statuses if status != "cancelled"]
    return bool(live) and all(status == "paid" for status in live)
