"""Documents' rules, pure: which source versions render, and what a source must hold to
become a document (a broken source fails with a reason naming the field, never half-rendered).
"""

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from services.documents import views
from services.documents.sources import GoodFaithEstimateBody, StatementBody, SuperbillBody
from shared.events import BillSnapshot, DocumentSource
from shared.superbill_rules import superbill_problems

Kind = Literal["bill", "statement", "superbill", "good_faith_estimate"]
TEMPLATES: dict[str, str] = {
    "bill": "bill.html", "statement": "statement.html", "superbill": "superbill.html",
    "good_faith_estimate": "good_faith_estimate.html",
}  # fmt: skip


M = TypeVar("M", bound=BaseModel)


class SourceProblem(ValueError):
    """A source snapshot that can never render as it is (DocumentFailed with this reason)."""


@dataclass(frozen=True)
class RenderRequest:
    """What a render worker process needs: a template and its context (plain, picklable)."""

    kind: Kind
    template: str
    context: dict[str, Any]


def should_render(latest_version: int | None, incoming_version: int) -> bool:
    """A source renders once per version, and only forward: a redelivered or older snapshot
    (events can be replayed) renders nothing new."""
    return latest_version is None or incoming_version > latest_version


def _parse(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{what}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else f"{what}: {e['msg']}"
            for e in exc.errors()[:8]
        )
        raise SourceProblem(f"invalid {what}: {details}") from exc


def prepare(kind: Kind, source: dict[str, Any]) -> RenderRequest:
    """Validate a stored source snapshot and build its template context, or raise SourceProblem."""
    if kind == "bill":
        bill = _parse(BillSnapshot, source, "bill")
        return RenderRequest(kind, TEMPLATES[kind], views.bill_view(bill))
    doc = _parse(DocumentSource, source, kind)
    if doc.kind != kind:
        raise SourceProblem(f"{kind}.kind is {doc.kind!r}, expected {kind!r}")
    if kind == "statement":
        statement = _parse(StatementBody, doc.body, "statement.body")
        return RenderRequest(kind, TEMPLATES[kind], views.statement_view(doc, statement))
    if kind == "good_faith_estimate":
        estimate = _parse(GoodFaithEstimateBody, doc.body, "good_faith_estimate.body")
        return RenderRequest(kind, TEMPLATES[kind], views.estimate_view(doc, estimate))
    superbill = _parse(SuperbillBody, doc.body, "superbill.body")
    problems = superbill_problems(doc.practice, doc.patient, superbill)
    if problems:
        raise SourceProblem("superbill refused: " + "; ".join(problems))
    return RenderRequest(kind, TEMPLATES[kind], views.superbill_view(doc, superbill))
