"""The contract in code must accept every example upstream publishes and reject bad input
with a reason that names the field."""

import json
from pathlib import Path

import pytest

from shared.events import EVENT_MODELS, BadEvent, SessionCompleted, parse_event

EXAMPLES = sorted((Path(__file__).parents[2] / "fixtures" / "events").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_contract_example_validates(path: Path) -> None:
    raw = json.loads(path.read_text())
    event = parse_event(path.read_bytes())
    assert event.event_type == raw["event_type"]
    assert event.practice_id == raw["practice_id"]
    assert type(event.data) is EVENT_MODELS[raw["event_type"]]


def test_examples_cover_every_inbound_event_type() -> None:
    types = {json.loads(p.read_text())["event_type"] for p in EXAMPLES}
    assert {"ClientUpserted", "ClinicianUpserted", "SessionCompleted", "SessionVoided"} <= types


def test_session_fields_survive_parsing() -> None:
    event = parse_event((EXAMPLES[0].parent / "SessionCompleted-insurance-telehealth.json").read_bytes())
    assert isinstance(event.data, SessionCompleted)
    session = event.data.session
    assert session.diagnosis_codes == ["F33.1", "F41.1"]
    assert [s.fee_cents for s in session.services] == [13000, 0]
    assert session.services[0].modifiers == ["95"]


def _example(name: str) -> dict:
    return json.loads((EXAMPLES[0].parent / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("event_id"), "event_id"),
        (lambda e: e.update(event_type="SessionTeleported"), "unknown event_type"),
        (lambda e: e.update(schema_version=9), "unsupported schema_version"),
        (lambda e: e.update(occurred_at="yesterday"), "occurred_at"),
        (lambda e: e["data"]["session"]["services"][0].update(fee_cents=160.5), "fee_cents"),
        (lambda e: e["data"]["session"]["services"][0].update(fee_cents=-1), "fee_cents"),
        (lambda e: e["data"]["session"].update(attendance="maybe"), "attendance"),
        (lambda e: e["data"]["session"].pop("date_of_service"), "date_of_service"),
    ],
)
@pytest.mark.parametrize("header", [None, "SessionCompleted"])
def test_bad_events_are_rejected_with_the_field_named(mutate, reason: str, header: str | None) -> None:
    event = _example("SessionCompleted-self-pay")
    mutate(event)
    with pytest.raises(BadEvent, match=reason):
        parse_event(json.dumps(event), header)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_event_type_header_path_parses_as_the_general_one(path: Path) -> None:
    raw = path.read_bytes()
    assert parse_event(raw, json.loads(raw)["event_type"]) == parse_event(raw)


def test_a_header_that_disagrees_with_the_body_does_not_decide_the_type() -> None:
    raw = json.dumps(_example("SessionCompleted-self-pay"))
    assert isinstance(parse_event(raw, "ClientUpserted").data, SessionCompleted)
    assert isinstance(parse_event(raw, "NoSuchEvent").data, SessionCompleted)


def test_a_nul_is_refused_on_the_header_path_too() -> None:
    event = _example("SessionCompleted-self-pay")
    event["data"]["session"]["place_of_service"] = "1\x001"
    with pytest.raises(BadEvent, match="NUL"):
        parse_event(json.dumps(event), "SessionCompleted")


def test_not_json_is_a_bad_event() -> None:
    with pytest.raises(BadEvent, match="invalid envelope"):
        parse_event(b"\x00\x01 not json")
