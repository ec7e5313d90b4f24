"""The documents service against real Kafka and Postgres: billing events in → PDFs rendered in
the process pool → DocumentRendered / DocumentFailed out, and the HTTP API serving them."""

import asyncio
import hashlib
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from services.documents.app import build
from shared import topics
from shared.auth import issue_token
from shared.events import (
    BillCreated,
    BillShared,
    BillUpdated,
    GoodFaithEstimateCreated,
    Party,
    ShareDelivery,
    SharedSource,
    SharesRecorded,
    StatementCreated,
    SuperbillCreated,
    new_envelope,
)
from shared.runtime import Service
from shared.settings import Settings
from tests.conftest import eventually, isolated_topics, read_topic
from tests.unit.documents import samples
from tests.unit.documents import test_estimate_pdf as estimate_pdf

pytestmark = pytest.mark.integration

PRACTICE = "practice-rivers-edge"


@pytest.fixture(scope="module")
async def documents(test_settings: Settings) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    settings = (await isolated_topics(test_settings)).model_copy(update={"documents_render_workers": 2})
    svc, app = build(settings)
    await svc.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://documents") as http:
        yield svc, http
    await svc.stop()


def staff(practice: str = PRACTICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(practice, 'staff')}"}


def client_auth(client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(PRACTICE, 'client', client_id)}"}


def event(model: Any) -> dict[str, Any]:
    return json.loads(new_envelope(PRACTICE, model).model_dump_json())


async def versions(http: httpx.AsyncClient, source_id: str, status: str = "rendered") -> list[dict[str, Any]]:
    r = await http.get("/v1/documents", params={"source_id": source_id}, headers=staff())
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return items if items and all(i["status"] == status for i in items) else []


def pdf_text(pdf: bytes) -> str:
    """The PDF's words, whitespace collapsed (table cells wrap)."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


async def documents_events(svc: Service, until: Any) -> list[dict[str, Any]]:
    records = await read_topic(
        svc.settings, topics.DOCUMENTS, until=lambda rs: until([json.loads(r.value) for r in rs])
    )
    return [json.loads(r.value) for r in records]


async def test_bill_created_renders_a_pdf_and_announces_it(documents, publish) -> None:
    svc, http = documents
    bill = samples.bill(bill_id=f"bill-{uuid.uuid4()}", sessions=3, payments=[samples.card_payment(10000)])
    await publish(topics.BILLING, event(BillCreated(bill=bill)), key=bill.client_id, settings=svc.settings)

    [doc] = await eventually(lambda: versions(http, bill.id))
    assert doc["kind"] == "bill" and doc["version"] == 1 and doc["pages"] == 1
    assert doc["client_id"] == bill.client_id

    pdf = await http.get(f"/v1/documents/{doc['id']}/pdf", headers=staff())
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == doc["sha256"]
    text = pdf_text(pdf.content)
    for expected in ("Rivers Edge Counseling", "93-1234567", "NPI 1234567893", "Avery Ellis", "1042",
                     "482913", "http://localhost:8002/pay", "$450.00", "$100.00", "$350.00", "Page 1 of 1",
                     "Thank you for trusting us"):  # fmt: skip
        assert expected in text, expected

    evs = await documents_events(
        svc, lambda es: any(e["event_type"] == "DocumentRendered" and e["data"]["source_id"] == bill.id for e in es)
    )
    [rendered] = [e for e in evs if e["event_type"] == "DocumentRendered" and e["data"]["source_id"] == bill.id]
    assert rendered["data"]["document_id"] == doc["id"]
    assert rendered["data"]["sha256"] == doc["sha256"]
    assert rendered["data"]["url"] == f"{svc.settings.documents_url}/v1/documents/{doc['id']}/pdf"
    assert rendered["practice_id"] == PRACTICE


async def test_a_newer_bill_version_renders_again_and_the_old_one_stays(documents, publish) -> None:
    svc, http = documents
    bill_id = f"bill-{uuid.uuid4()}"
    v1 = samples.bill(bill_id=bill_id)
    v2 = samples.bill(bill_id=bill_id, version=2, payments=[samples.card_payment(30000)], status="paid")
    created = event(BillCreated(bill=v1))
    for e in (created, event(BillUpdated(bill=v2)), created, event(BillCreated(bill=v1))):
        await publish(topics.BILLING, e, key=v1.client_id, settings=svc.settings)
    marker = samples.bill(bill_id=f"bill-{uuid.uuid4()}")  # same partition, published last
    await publish(topics.BILLING, event(BillCreated(bill=marker)), key=v1.client_id, settings=svc.settings)
    await eventually(lambda: versions(http, marker.id))

    docs = await eventually(lambda: versions(http, bill_id))
    assert [d["version"] for d in docs] == [2, 1], "one document per version, newest first"
    new, old = [await http.get(f"/v1/documents/{d['id']}/pdf", headers=staff()) for d in docs]
    assert "PAID" in pdf_text(new.content) and "Paid in full" in pdf_text(new.content)
    assert "482913" in pdf_text(old.content) and "PAID" not in pdf_text(old.content)


async def test_clients_see_only_their_own_shared_documents(documents, publish) -> None:
    svc, http = documents
    bill = samples.bill(bill_id=f"bill-{uuid.uuid4()}", client_id=f"client-{uuid.uuid4()}")
    await publish(topics.BILLING, event(BillCreated(bill=bill)), key=bill.client_id, settings=svc.settings)
    [doc] = await eventually(lambda: versions(http, bill.id))
    url = f"/v1/documents/{doc['id']}"
    for path in (url, f"{url}/pdf"):  # not shared yet: the client does not see it
        assert (await http.get(path, headers=client_auth(bill.client_id))).status_code == 404
    assert (await http.get("/v1/documents", headers=client_auth(bill.client_id))).json()["items"] == []

    shared = BillShared(bill=bill, share=ShareDelivery(recipient=Party(name="Ellis")))
    await publish(topics.BILLING, event(shared), key=bill.client_id, settings=svc.settings)
    assert await eventually(lambda: _ok(http.get(url, headers=client_auth(bill.client_id))))
    assert (await http.get(url, headers=client_auth(bill.client_id))).json()["failure_reason"] is None
    assert (await http.get(f"{url}/pdf", headers=client_auth(bill.client_id))).status_code == 200
    mine = await http.get("/v1/documents", headers=client_auth(bill.client_id))
    assert [d["id"] for d in mine.json()["items"]] == [doc["id"]]
    for headers in (client_auth("someone-else"), staff("another-practice")):
        for path in (url, f"{url}/pdf"):
            r = await http.get(path, headers=headers)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(f"/v1/documents/{uuid.uuid4()}", headers=staff())).status_code == 404
    assert (await http.get("/v1/documents/not-a-uuid", headers=staff())).status_code == 404
    other = await http.get("/v1/documents", params={"client_id": "x"}, headers=client_auth(bill.client_id))
    assert other.status_code == 404


async def test_shares_made_before_documents_kept_its_list_become_visible_from_billings_backfill(
    documents, publish
) -> None:
    """A bill shared before the shared list existed: only its BillCreated reached documents' list.
    Billing's data migration (f8a0b2c4d6e8) stages SharesRecorded, and the client sees it again."""
    svc, http = documents
    client_id = f"client-{uuid.uuid4()}"
    shared, unshared = (samples.bill(bill_id=f"bill-{uuid.uuid4()}", client_id=client_id) for _ in range(2))
    for bill in (shared, unshared):
        await publish(topics.BILLING, event(BillCreated(bill=bill)), key=client_id, settings=svc.settings)
    [doc] = await eventually(lambda: versions(http, shared.id), timeout=90)  # the first render of the module
    [hidden] = await eventually(lambda: versions(http, unshared.id), timeout=90)
    url = f"/v1/documents/{doc['id']}"
    assert (await http.get(url, headers=client_auth(client_id))).status_code == 404

    backfill = SharesRecorded(client_id=client_id, sources=[SharedSource(kind="bill", id=shared.id)])
    for _ in range(2):  # a redelivery changes nothing
        await publish(topics.BILLING, event(backfill), key=client_id, settings=svc.settings)
    assert await eventually(lambda: _ok(http.get(f"{url}/pdf", headers=client_auth(client_id))))
    mine = await http.get("/v1/documents", headers=client_auth(client_id))
    assert [d["id"] for d in mine.json()["items"]] == [doc["id"]], "the unshared bill stays hidden"
    assert (await http.get(f"/v1/documents/{hidden['id']}", headers=client_auth(client_id))).status_code == 404
    assert (await http.get(url, headers=client_auth("someone-else"))).status_code == 404


async def test_ops_endpoints_and_the_asyncapi_document(documents) -> None:
    _, http = documents
    assert (await http.get("/readyz")).json()["status"] == "ok"
    spec = json.dumps((await http.get("/asyncapi.json")).json())
    assert "DocumentRendered" in spec and "DocumentFailed" in spec


async def test_list_pages_newest_first_with_a_cursor(documents, publish) -> None:
    svc, http = documents
    bill_id = f"bill-{uuid.uuid4()}"
    for version in (1, 2, 3):
        bill = samples.bill(bill_id=bill_id, version=version)
        await publish(topics.BILLING, event(BillUpdated(bill=bill)), key=bill.client_id, settings=svc.settings)
    await eventually(lambda: _count(http, bill_id, 3))
    first = (await http.get("/v1/documents", params={"source_id": bill_id, "limit": 2}, headers=staff())).json()
    assert [d["version"] for d in first["items"]] == [3, 2] and first["next_cursor"]
    params = {"source_id": bill_id, "limit": 2, "cursor": first["next_cursor"]}
    second = (await http.get("/v1/documents", params=params, headers=staff())).json()
    assert [d["version"] for d in second["items"]] == [1] and second["next_cursor"] is None


async def _count(http: httpx.AsyncClient, source_id: str, n: int) -> bool:
    return len(await versions(http, source_id)) == n


async def test_statement_renders_range_entries_and_aging(documents, publish) -> None:
    svc, http = documents
    source = samples.statement(source_id=f"stmt-{uuid.uuid4()}")
    await publish(
        topics.BILLING, event(StatementCreated(statement=source)), key=source.client_id, settings=svc.settings
    )
    [doc] = await eventually(lambda: versions(http, source.id))
    text = pdf_text((await http.get(f"/v1/documents/{doc['id']}/pdf", headers=staff())).content)
    for expected in ("Oct 1, 2026", "Oct 31, 2026", "Opening balance", "$50.00", "Closing balance", "$110.00",
                     "Sliding-scale discount", "Refund of overpayment", "AGING", "1-30 days"):  # fmt: skip
        assert expected in text, expected


async def test_a_good_faith_estimate_renders_and_serves_its_pdf(documents, publish) -> None:
    svc, http = documents
    source = estimate_pdf.estimate().model_copy(update={"id": f"gfe-{uuid.uuid4()}"})
    await publish(topics.BILLING, event(GoodFaithEstimateCreated(estimate=source)), key=source.client_id,
                  settings=svc.settings)  # fmt: skip
    [doc] = await eventually(lambda: versions(http, source.id))
    assert doc["kind"] == "good_faith_estimate"
    listed = await http.get("/v1/documents", params={"kind": "good_faith_estimate", "source_id": source.id},
                            headers=staff())  # fmt: skip
    assert [d["id"] for d in listed.json()["items"]] == [doc["id"]]
    text = pdf_text((await http.get(f"/v1/documents/{doc['id']}/pdf", headers=staff())).content)
    for expected in ("Good Faith Estimate 12", "Dana Morgan", "Total estimated cost $3,420.00", "dispute the bill"):
        assert expected in text, expected


async def test_superbill_missing_a_required_field_fails_naming_it(documents, publish) -> None:
    svc, http = documents
    source = samples.superbill(
        source_id=f"sb-{uuid.uuid4()}", lines=[samples.superbill_line(0, provider={**samples.PROVIDER, "npi": None})]
    )
    await publish(
        topics.BILLING, event(SuperbillCreated(superbill=source)), key=source.client_id, settings=svc.settings
    )
    [doc] = await eventually(lambda: versions(http, source.id, status="failed"))
    assert "lines[0].provider.npi is required" in doc["failure_reason"]
    r = await http.get(f"/v1/documents/{doc['id']}/pdf", headers=staff())
    assert r.status_code == 409 and r.json()["error"]["code"] == "document_failed"
    evs = await documents_events(
        svc, lambda es: any(e["event_type"] == "DocumentFailed" and e["data"]["source_id"] == source.id for e in es)
    )
    [failed] = [e for e in evs if e["event_type"] == "DocumentFailed" and e["data"]["source_id"] == source.id]
    assert failed["data"]["document_id"] == doc["id"]
    assert "lines[0].provider.npi" in failed["data"]["reason"]


async def test_superbill_renders_claim_fields(documents, publish) -> None:
    svc, http = documents
    lines = [
        samples.superbill_line(0),
        samples.superbill_line(1, provider=samples.ASSOCIATE, supervisor=samples.PROVIDER, diagnosis_codes=["F43.23"]),
    ]
    source = samples.superbill(source_id=f"sb-{uuid.uuid4()}", minor=True, lines=lines)
    await publish(
        topics.BILLING, event(SuperbillCreated(superbill=source)), key=source.client_id, settings=svc.settings
    )
    [doc] = await eventually(lambda: versions(http, source.id))
    text = pdf_text((await http.get(f"/v1/documents/{doc['id']}/pdf", headers=staff())).content)
    for expected in ("Superbill", "93-1234567", "+1-503-555-0100", "Noah Park", "2012-03-09", "Grace Park",
                     "W123456789", "GRP-889", "90837", "F41.1", "F43.23", "1245319599", "PSY-30412",
                     "supervised by Dana Morgan", "$320.00", "Provider signature"):  # fmt: skip
        assert expected in text, expected


async def test_the_service_keeps_answering_while_it_renders(documents, publish) -> None:
    svc, http = documents
    bills = [samples.bill(bill_id=f"bill-{uuid.uuid4()}", sessions=120) for _ in range(6)]
    for bill in bills:
        await publish(topics.BILLING, event(BillCreated(bill=bill)), key=bill.client_id, settings=svc.settings)
    await eventually(lambda: _pending(http))
    slowest = 0.0
    while await _pending(http):
        start = time.perf_counter()
        assert (await http.get("/healthz")).status_code == 200
        slowest = max(slowest, time.perf_counter() - start)
        await asyncio.sleep(0.02)
    assert slowest < 0.5, f"health check took {slowest:.3f}s while rendering"
    for bill in bills:
        [doc] = await eventually(lambda b=bill: versions(http, b.id))
        assert doc["pages"] >= 4


async def _pending(http: httpx.AsyncClient) -> bool:
    r = await http.get("/v1/documents", params={"status": "pending"}, headers=staff())
    return bool(r.json()["items"])


async def _ok(response: Any) -> bool:
    return (await response).status_code == 200
