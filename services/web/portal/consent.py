"""The card-on-file authorization a client reads and signs in the portal (Add card, or keeping
a new card used to pay): its wording, versioned, and the record payments keeps with the card."""

import datetime as dt

from fastapi import Request

CONSENT_VERSION = "portal-2026-11"
AUTHORIZATION = (
    "I authorize {practice} to keep this card on file and to charge it for the services I receive: "
    "the balance of each bill when it is due and, if I turn on autopay, automatically on the night "
    "after a bill is issued. I can remove the card or turn autopay off at any time in this portal or "
    "by asking the practice. Refunds go back to this card."
)


def authorization_text(request: Request) -> str:
    practice = (getattr(request.state, "practice", None) or {}).get("name") or "the practice"
    return AUTHORIZATION.format(practice=practice)


def signed(name: str) -> dict[str, str]:
    """The authorization as payments keeps it: the typed name, the moment, the wording's version."""
    return {"signed_by": name.strip(), "signed_at": dt.datetime.now(dt.UTC).isoformat(), "method": "portal",
            "consent_version": CONSENT_VERSION}  # fmt: skip
