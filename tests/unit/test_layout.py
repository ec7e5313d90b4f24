"""A service never imports another service's package: what two services share lives in shared/."""

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"


def imported_services(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("services.") and n.count(".") >= 1}


def test_no_service_imports_another() -> None:
    crossings = [
        f"{path.relative_to(SERVICES)} imports services.{other}"
        for service in sorted(p for p in SERVICES.iterdir() if (p / "__init__.py").exists())
        for path in service.rglob("*.py")
        for other in imported_services(path) - {service.name}
    ]
    assert crossings == []
