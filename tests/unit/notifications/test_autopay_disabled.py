"""The autopay-disabled notice renders in text and HTML and says why."""

from services.notifications import domain
from services.notifications.compose import render


def test_autopay_disabled_notice() -> None:
    draft = domain.autopay_disabled("Rivers Edge Counseling", "Grace Park", 3)
    assert draft.kind == "autopay_disabled"
    assert draft.subject == "Automatic payments to Rivers Edge Counseling are turned off"
    bodies = render(draft)
    assert "Dear Grace Park" in bodies.text and "3 nights in a row" in bodies.text
    assert "<html" in bodies.html and "3 nights in a row" in bodies.html
