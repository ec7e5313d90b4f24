"""HTTP: document metadata, the PDF itself, and every version of a source. Staff see their
practice's documents; a client sees only their own; anything else is 404. A service token with
scope `documents:read` (notifications attaching PDFs) may read them and do nothing else."""

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from services.documents import repository
from services.documents.domain import Kind
from services.documents.worker import pdf_url
from shared import audit
from shared.auth import DocumentReader, Principal, ensure_client_access
from shared.http import ApiError, decode_cursor, encode_cursor, not_found
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1/documents", tags=["documents"])

SAFE = re.compile(r"[^A-Za-z0-9._-]")
Status = Literal["pending", "rendered", "failed"]


class DocumentOut(BaseModel):
    id: str
    kind: Kind
    source_id: str
    client_id: str
    version: int
    status: Status
    pages: int | None
    sha256: str | None
    failure_reason: str | None
    url: str | None
    created_at: dt.datetime
    rendered_at: dt.datetime | None


class DocumentList(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


def _out(row: Any, documents_url: str, principal: Principal) -> DocumentOut:
    """A client sees only documents of what was shared with them, and not why a render failed."""
    return DocumentOut(
        id=str(row.id), kind=row.kind, source_id=row.source_id, client_id=row.client_id, version=row.version,
        status=row.status, pages=row.pages, sha256=row.sha256,
        failure_reason=row.failure_reason if principal.is_staff else None,
        url=pdf_url(documents_url, row.id) if row.status == "rendered" else None,
        created_at=row.created_at, rendered_at=row.finished_at if row.status == "rendered" else None,
    )  # fmt: skip


def _document_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found("document") from None


async def _visible(svc: Any, principal: Principal, document_id: str, *, with_pdf: bool = False) -> Any:
    async with svc.db.transaction() as session:
        fetch = repository.get_pdf if with_pdf else repository.get_document
        # notifications' service token attaches the PDF of a share before documents may have seen it
        shared_only = principal.role == "client"
        row = await fetch(session, principal.practice_id, _document_id(document_id), shared_only=shared_only)
    if row is None:
        raise not_found("document")
    ensure_client_access(principal, row.client_id, "document")
    return row


@router.get("", response_model=DocumentList)
async def list_documents(
    svc: ServiceDep,
    principal: DocumentReader,
    source_id: str | None = None,
    client_id: str | None = None,
    kind: Kind | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DocumentList:
    """Documents newest first; `?source_id=` gives every version of one bill, statement or superbill."""
    if not principal.is_staff:
        if client_id is not None:
            ensure_client_access(principal, client_id, "client")
        client_id = principal.client_id
    filters = {
        name: value
        for name, value in {"source_id": source_id, "client_id": client_id, "kind": kind, "status": status}.items()
        if value is not None
    }
    after = None
    if cursor:
        parts = decode_cursor(cursor)
        try:
            after = (dt.datetime.fromisoformat(parts[0]), uuid.UUID(parts[1]))
        except (IndexError, TypeError, ValueError) as exc:
            raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc
    async with svc.db.transaction() as session:
        rows = await repository.list_documents(
            session, principal.practice_id, filters=filters, limit=limit + 1, after=after,
            shared_only=not principal.is_staff,
        )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
    items = [_out(r, svc.settings.documents_url, principal) for r in rows]
    return DocumentList(items=items, next_cursor=next_cursor)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(document_id: str, svc: ServiceDep, principal: DocumentReader) -> DocumentOut:
    """Kind, source, version, status (`pending`, `rendered`, `failed` with its reason), pages, sha256."""
    return _out(await _visible(svc, principal, document_id), svc.settings.documents_url, principal)


@router.get(
    "/{document_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 409: {"description": "not rendered (yet)"}},
)
async def get_pdf(document_id: str, svc: ServiceDep, principal: DocumentReader, request: Request) -> Response:
    """The PDF of this version. 409 `document_pending` while it renders, `document_failed` if it cannot."""
    row = await _visible(svc, principal, document_id, with_pdf=True)
    if row.status == "pending":
        raise ApiError(409, "document_pending", "the document is still being rendered; try again shortly")
    if row.status == "failed":
        raise ApiError(409, "document_failed", f"the document could not be rendered: {row.failure_reason}")
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": f'inline; filename="{row.kind}-{SAFE.sub("_", row.source_id)}-v{row.version}.pdf"',
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    await audit.record_download(svc.db, str(row.client_id))
    return Response(content=row.pdf, media_type="application/pdf", headers=headers)
