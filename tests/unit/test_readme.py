"""The README is the one documented list of settings and starts with the two commands."""

from pathlib import Path

from shared.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in README]
    assert not missing, f"settings missing from README's Configuration: {missing}"


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```")[1]
    assert "./dev demo" in first_block and "./dev test" in first_block


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "./dev test"
