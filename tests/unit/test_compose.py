"""docker-compose.yml cannot run here (no Docker engine); keep it correct by reading it and by the
compose specification's JSON schema (the copy check-jsonschema ships, compose-spec.json)."""

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_official_images_and_the_four_services() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    for name, port in {
        "billing": 8001,
        "payments": 8002,
        "documents": 8003,
        "notifications": 8004,
        "reports": 8005,
    }.items():
        svc = services[name]
        assert svc["command"] == f"python -m services.{name}"
        assert svc["ports"] == [f"{port}:{port}"]
        assert svc["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_compose_environment_names_are_real_settings() -> None:
    from shared.settings import Settings

    known = {name.upper() for name in Settings.model_fields}
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        if name in {"postgres", "kafka", "mailpit", "localstripe"}:
            continue
        unknown = set(env) - known
        assert not unknown, f"{name} sets unknown settings {unknown}"


def test_every_dependency_is_a_defined_service() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on undefined {dep}"


def test_compose_does_not_ship_the_dev_secret_on_all_interfaces() -> None:
    from shared.settings import DEV_AUTH_SECRET

    text = (ROOT / "docker-compose.yml").read_text()
    assert DEV_AUTH_SECRET not in text
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        if env.get("HTTP_HOST") == "0.0.0.0":
            assert str(env.get("AUTH_SECRET", "")).startswith("${AUTH_SECRET:?"), f"{name} has a default secret"


def test_every_long_running_container_is_restarted_when_it_dies() -> None:
    """As an operator expects: a crashed or OOM-killed container comes back; `docker compose
    stop` keeps it stopped."""
    services = compose()["services"]
    long_running = {name for name in services if name != "setup"}
    assert {"postgres", "kafka", "billing", "payments", "documents", "notifications"} <= long_running
    assert {name: services[name].get("restart") for name in long_running} == dict.fromkeys(
        long_running, "unless-stopped"
    )


def test_the_setup_job_is_retried_until_it_succeeds() -> None:
    assert compose()["services"]["setup"]["restart"] == "on-failure"


def compose_spec_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{e.message} at {e.json_path}" for e in validator.iter_errors(document)]


def test_compose_follows_the_compose_specification() -> None:
    assert compose_spec_errors(compose()) == []


def test_the_compose_schema_refuses_a_broken_file() -> None:
    """The schema is really applied: an unknown key, a wrong type and a bad condition fail."""
    for breaks in (
        lambda c: c["services"]["billing"].update(comand="python -m services.billing"),
        lambda c: c["services"]["billing"].update(ports=8001),
        lambda c: c["services"]["billing"]["depends_on"]["setup"].update(condition="service_done"),
    ):
        broken = copy.deepcopy(compose())
        breaks(broken)
        assert compose_spec_errors(broken)
