"""Template contexts: a source snapshot → the plain values a PDF template prints.

Pure (no clock, no I/O): every figure a template shows is computed or formatted here, so the
templates only lay things out and the figures can be tested without rendering a PDF.
"""

import datetime as dt
import string
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.documents.sources import GoodFaithEstimateBody, StatementBody, SuperbillBody
from shared.events import Address, BillSnapshot, DocumentSource, Party, PracticeInfo
from shared.money import format_money
from shared.superbill_rules import normalize_icd10cm

ENTRY_LABELS = {"charge": "Charge", "payment": "Payment", "refund": "Refund", "credit": "Credit",
                "adjustment": "Adjustment", "adjustment_reversed": "Adjustment reversed",
                "cancellation": "Cancellation"}  # fmt: skip
ADJUSTMENT_LABELS = {"write_off": "Write-off", "discount": "Discount", "bad_debt": "Bad debt"}
ENTRY_DESCRIPTIONS = {
    "charge": "Bill {number}",
    "payment": "Payment on bill {number}",
    "refund": "Refund on bill {number}",
    "credit": "Credit",
    "adjustment": "Adjustment on bill {number}",
    "adjustment_reversed": "Adjustment on bill {number} reversed",
    "cancellation": "Bill {number} cancelled",
}
METHOD_LABELS = {"card": "card", "cash": "cash", "check": "check", "credit": "client credit", "other": "other"}
PAY_TO_LABELS = {
    "clinic": "Please send payment to the practice",
    "provider": "Please send payment to the rendering provider",
    "client": "Paid by the patient: please reimburse the patient (insured)",
}


def fmt_date(value: dt.date) -> str:
    return f"{value:%b} {value.day}, {value.year}"


def bill_number(number: int) -> str:
    return str(number)


def address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    lines = [address.line1]
    if address.line2:
        lines.append(address.line2)
    lines.append(f"{address.city}, {address.state} {address.postal_code}")
    return lines


def _zone(practice: PracticeInfo) -> ZoneInfo:
    try:
        return ZoneInfo(practice.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def practice_view(practice: PracticeInfo) -> dict[str, Any]:
    return {
        "name": practice.name,
        "address": address_lines(practice.address),
        "phone": practice.phone,
        "tax_id": practice.tax_id,
        "npi": practice.npi,
    }


def party_view(party: Party) -> dict[str, Any]:
    return {"name": party.name, "email": party.email, "address": address_lines(party.address)}


def bill_view(bill: BillSnapshot) -> dict[str, Any]:
    """Everything the bill template prints."""
    currency = bill.practice.currency

    def money(cents: int) -> str:
        return format_money(cents, currency)

    zone = _zone(bill.practice)
    insurance = bill.responsibility == "insurance"
    lines = [
        {
            "date": fmt_date(line.date_of_service),
            "code": line.code + "".join(f"-{m}" for m in line.modifiers),
            "description": line.description or "",
            "units": line.units,
            "amount": money(line.amount_cents),
            "client_owes": money(line.client_owes_cents),
            "insurance_owes": money(line.insurance_owes_cents),
            "voided": line.voided,
        }
        for line in sorted(bill.lines, key=lambda ln: ln.date_of_service)
    ]
    payments = [
        {
            "date": fmt_date(p.occurred_at.astimezone(zone).date()),
            "label": (
                f"Payment ({METHOD_LABELS.get(p.method, p.method)}{', insurance' if p.payer == 'insurance' else ''})"
                if p.kind == "payment"
                else "Refund"
            ),
            "amount": money(p.amount_cents if p.kind == "payment" else -p.amount_cents),
            "refund": p.kind == "refund",
        }
        for p in sorted(bill.payments, key=lambda p: p.occurred_at)
    ]
    adjustments = [
        {
            "date": fmt_date(a.created_at.astimezone(zone).date()),
            "label": f"{ADJUSTMENT_LABELS.get(a.kind, 'Adjustment')}{' (insurance)' if a.payer == 'insurance' else ''}"
            + f": {a.reason}",
            "amount": money(-a.amount_cents),
        }
        for a in bill.adjustments
        if a.reversed_at is None
    ]
    patient_differs = bill.patient.name != bill.bill_to.name
    return {
        "title": f"Bill {bill_number(bill.number)}",
        "practice": practice_view(bill.practice),
        "bill_to": party_view(bill.bill_to),
        "patient": party_view(bill.patient) if patient_differs else None,
        "number": bill_number(bill.number),
        "issued_on": fmt_date(bill.issued_on),
        "due_date": fmt_date(bill.due_date),
        "status": bill.status,
        "insurance": insurance,
        "lines": lines,
        "payments": payments,
        "total": money(bill.total_cents),
        "client_owes": money(bill.client_owes_cents),
        "insurance_owes": money(bill.insurance_owes_cents),
        "paid": money(bill.paid_cents),
        "adjustments": adjustments,
        "split_percent": f"{bill.split_percent.normalize():f}%" if bill.split_percent is not None else None,
        "adjusted": money(bill.adjusted_cents) if bill.adjusted_cents else None,
        "balance": money(bill.balance_cents),
        "comments": bill.comments,
        "footer": bill.practice.footer_comment,
        "pay_url": bill.pay_url,
        "access_code": bill.access_code,
        "payable": bill.status == "open" and bill.balance_cents > 0,
        "version": bill.version,
    }


def statement_view(source: DocumentSource, body: StatementBody) -> dict[str, Any]:
    currency = source.practice.currency

    def money(cents: int) -> str:
        return format_money(cents, currency)

    balance = body.opening_balance_cents
    entries = []
    for entry in body.entries:
        balance += entry.amount_cents
        number = bill_number(entry.bill_number) if entry.bill_number is not None else ""
        entries.append(
            {
                "date": fmt_date(entry.date),
                "kind": ENTRY_LABELS[entry.kind],
                "description": entry.description or ENTRY_DESCRIPTIONS[entry.kind].format(number=number).strip(),
                "bill_number": number,
                "charges": money(entry.amount_cents) if entry.amount_cents > 0 else "",
                "credits": money(-entry.amount_cents) if entry.amount_cents < 0 else "",
                "balance": money(balance),
            }
        )
    aging = body.aging
    return {
        "title": f"Statement {bill_number(source.number)}",
        "practice": practice_view(source.practice),
        "bill_to": party_view(source.bill_to),
        "patient": party_view(source.patient) if source.patient.name != source.bill_to.name else None,
        "number": bill_number(source.number),
        "issued_on": fmt_date(source.issued_on),
        "start_date": fmt_date(body.start_date),
        "end_date": fmt_date(body.end_date),
        "opening_balance": money(body.opening_balance_cents),
        "closing_balance": money(body.closing_balance_cents),
        "entries": entries,
        "aging": [
            ("Current", money(aging.current)),
            ("1-30 days", money(aging.days_1_30)),
            ("31-60 days", money(aging.days_31_60)),
            ("61-90 days", money(aging.days_61_90)),
            ("Over 90 days", money(aging.days_over_90)),
            ("Total", money(aging.total_cents)),
        ],
        "payment_plans": [
            {
                "total": money(plan.total_cents),
                "frequency": plan.frequency,
                "upcoming": [(fmt_date(i.due_date), money(i.amount_cents)) for i in plan.upcoming],
            }
            for plan in body.payment_plans
        ],
        "comments": body.comments,
        "footer": source.practice.footer_comment,
        "version": source.version,
    }


def estimate_view(source: DocumentSource, body: GoodFaithEstimateBody) -> dict[str, Any]:
    """Everything the Good Faith Estimate template prints (the dispute notice is in the template)."""
    currency = source.practice.currency

    def money(cents: int) -> str:
        return format_money(cents, currency)

    return {
        "title": f"Good Faith Estimate {source.number}",
        "practice": practice_view(source.practice),
        "patient": party_view(source.patient),
        "responsible": party_view(source.bill_to) if source.bill_to.name != source.patient.name else None,
        "date_of_birth": fmt_date(body.patient_date_of_birth),
        "clinician": {
            "name": body.clinician.name,
            "credentials": body.clinician.credentials,
            "npi": body.clinician.npi,
        },
        "number": bill_number(source.number),
        "issued_on": fmt_date(source.issued_on),
        "start_date": fmt_date(body.start_date),
        "end_date": fmt_date(body.end_date),
        "items": [
            {
                "code": i.code,
                "description": i.description or "",
                "quantity": i.quantity,
                "fee": money(i.fee_cents),
                "total": money(i.total_cents),
            }
            for i in body.items
        ],
        "total": money(body.total_cents),
        "diagnosis_codes": ", ".join(body.diagnosis_codes),
        "threshold": money(body.dispute_threshold_cents),
        "comments": body.comments,
        "footer": source.practice.footer_comment,
        "version": source.version,
    }


def diagnosis_pointers(body: SuperbillBody) -> list[tuple[str, str]]:
    """Each distinct diagnosis code with its letter (CMS-1500 box 21: A, B, C, ...)."""
    codes: list[str] = []
    for line in body.lines:
        for code in map(normalize_icd10cm, line.diagnosis_codes):
            if code not in codes:
                codes.append(code)
    letters = string.ascii_uppercase
    return [(letters[i] if i < len(letters) else str(i + 1), code) for i, code in enumerate(codes)]


def _provider_view(p: Any) -> dict[str, Any]:
    return {
        "name": p.name,
        "credentials": p.credentials or "",
        "npi": p.npi or "",
        "license_number": p.license_number or "",
        "taxonomy_code": p.taxonomy_code or "",
    }


def superbill_view(source: DocumentSource, body: SuperbillBody) -> dict[str, Any]:
    currency = source.practice.currency

    def money(cents: int) -> str:
        return format_money(cents, currency)

    pointers = diagnosis_pointers(body)
    letter_of = {code: letter for letter, code in pointers}
    providers: dict[str, dict[str, Any]] = {}
    lines = []
    for line in sorted(body.lines, key=lambda ln: ln.date_of_service):
        roles = [(line.provider, "Rendering provider")]
        if line.supervisor is not None:
            roles.append((line.supervisor, "Supervising provider"))
        for provider, role in roles:
            entry = providers.setdefault(provider.npi or provider.name, {**_provider_view(provider), "roles": []})
            if role not in entry["roles"]:
                entry["roles"].append(role)
        billing_npi = (line.supervisor or line.provider).npi
        lines.append(
            {
                "date": line.date_of_service.isoformat(),
                "place_of_service": line.place_of_service,
                "code": line.code.upper(),
                "modifiers": " ".join(m.upper() for m in line.modifiers),
                "description": line.description or "",
                "pointers": "".join(letter_of[normalize_icd10cm(c)] for c in line.diagnosis_codes),
                "units": line.units,
                "fee": money(line.fee_cents),
                "paid": money(line.paid_cents),
                "npi": billing_npi or "",
                "supervised_by": line.supervisor.name if line.supervisor else None,
                "provider": line.provider.name,
            }
        )
    pay_to = None
    if body.pay_to == "clinic":
        pay_to = {"label": PAY_TO_LABELS["clinic"], "name": source.practice.name,
                  "address": address_lines(source.practice.address)}  # fmt: skip
    elif body.pay_to == "provider" and body.lines:
        first = body.lines[0].supervisor or body.lines[0].provider
        pay_to = {
            "label": PAY_TO_LABELS["provider"],
            "name": first.name,
            "address": address_lines(source.practice.address),
        }
    elif body.pay_to == "client":
        pay_to = {"label": PAY_TO_LABELS["client"], "name": source.patient.name,
                  "address": address_lines(source.patient.address)}  # fmt: skip
    insurance = body.insurance
    responsible = body.responsible_party
    return {
        "title": f"Superbill {bill_number(source.number)}",
        "practice": practice_view(source.practice),
        "number": bill_number(source.number),
        "issued_on": fmt_date(source.issued_on),
        "period": (
            f"{fmt_date(body.start_date)} - {fmt_date(body.end_date)}" if body.start_date and body.end_date else None
        ),
        "patient": {
            **party_view(source.patient),
            "date_of_birth": body.patient_date_of_birth.isoformat() if body.patient_date_of_birth else "",
        },
        "responsible": (
            {
                "name": responsible.name,
                "relationship": responsible.relationship or "",
                "phone": responsible.phone or "",
                "address": address_lines(responsible.address),
            }
            if responsible
            else None
        ),
        "insurance": insurance.model_dump(mode="json") if insurance else None,
        "providers": list(providers.values()),
        "diagnoses": pointers,
        "lines": lines,
        "total_fee": money(body.total_fee_cents),
        "total_paid": money(body.total_paid_cents),
        "balance": money(body.total_fee_cents - body.total_paid_cents),
        "pay_to": pay_to,
        "footer": source.practice.footer_comment,
        "version": source.version,
    }
