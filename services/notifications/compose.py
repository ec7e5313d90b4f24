"""Turns a Draft into the email's text and HTML bodies (Jinja2 templates in templates/)."""

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifications.domain import Draft

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Bodies:
    text: str
    html: str


def render(draft: Draft) -> Bodies:
    context = {**draft.context, "subject": draft.subject, "summary": draft.summary}
    return Bodies(
        text=_env.get_template(f"{draft.template}.txt").render(context),
        html=_env.get_template(f"{draft.template}.html").render(context),
    )
