"""deploy/k8s cannot be applied here (no cluster): validate it against the Kubernetes schemas that
kubernetes-validate carries (strict: unknown fields are errors) and check it against the code."""

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.30"  # the oldest release the manifests must apply to; every field used is older
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/__main__.py"))
WITH_MIGRATIONS = sorted(p.parent.parent.name for p in (ROOT / "services").glob("*/migrations/env.py"))
# settings that hold credentials: only ever from a Secret, never written in a manifest
SECRET_SETTINGS = {"AUTH_SECRET", "KAFKA_SASL_PASSWORD", "SMTP_PASSWORD", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET",
                   "PG_ADMIN_URL", *(f"{s.upper()}_DATABASE_URL" for s in SERVICES)}  # fmt: skip


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def invalid(doc: dict[str, Any]) -> str | None:
    """The schema's complaint about `doc`, or None when it is valid."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{e.message} at {'.'.join(map(str, e.path))}"
    return None


@pytest.mark.parametrize(("file", "doc"), documents(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_every_manifest_is_valid_kubernetes(file: str, doc: dict[str, Any]) -> None:
    assert invalid(doc) is None, f"{file}: {doc['kind']} {doc['metadata']['name']}: {invalid(doc)}"


def test_the_validation_refuses_a_broken_manifest() -> None:
    """The schemas are really applied: a wrong type, an unknown field and a missing field fail."""
    deployment = of_kind("Deployment")["billing"]
    for breaks in (
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessProbes={}),
        lambda d: d["spec"].pop("selector"),
    ):
        broken = copy.deepcopy(deployment)
        breaks(broken)
        assert invalid(broken) is not None


def test_every_service_has_a_deployment_with_probes_resources_and_a_service() -> None:
    deployments, services = of_kind("Deployment"), of_kind("Service")
    defaults = Settings()
    assert sorted(deployments) == SERVICES
    for name in SERVICES:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        port = defaults.http_port(name)
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        resources = container["resources"]
        assert set(resources) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])


def test_autoscalers_stay_within_the_partitions() -> None:
    """A consumer group gives a partition to one replica: replicas beyond the partitions idle."""
    for name, hpa in of_kind("HorizontalPodAutoscaler").items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["maxReplicas"] <= Settings().topic_partitions


def test_the_migrations_job_upgrades_every_service_with_its_own_secret() -> None:
    job = of_kind("Job")["therapy-billing-migrate"]
    containers = job["spec"]["template"]["spec"]["containers"]
    assert WITH_MIGRATIONS and sorted(c["name"] for c in containers) == [f"migrate-{s}" for s in WITH_MIGRATIONS]
    for c in containers:
        service = c["name"].removeprefix("migrate-")
        assert c["command"] == ["python", "-m", "shared.migrations", "upgrade", service]
        assert {"secretRef": {"name": f"therapy-billing-{service}"}} in c["envFrom"]


def test_settings_come_from_the_configmap_and_secrets_only_from_secrets() -> None:
    known = {name.upper() for name in Settings.model_fields}
    (config,) = of_kind("ConfigMap").values()
    assert set(config["data"]) <= known
    assert not set(config["data"]) & SECRET_SETTINGS
    assert not of_kind("Secret"), "secrets are created by the operator, never kept in the repository"
    for file, doc in documents():
        pod = doc["spec"]["template"]["spec"] if "template" in doc.get("spec", {}) else None
        for c in (pod or {}).get("containers", []):
            names = {e["name"] for e in c.get("env", [])}
            assert names <= known, f"{file}: unknown settings {names - known}"
            assert not names & SECRET_SETTINGS, f"{file}: secret settings written in the manifest"
