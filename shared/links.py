"""Links the system sends to people. Built from ids and the configured base URL only, so a
link never carries anything an event or a request made up."""

from urllib.parse import urlencode


def pay_link(public_base_url: str, practice_id: str, bill_number: int) -> str:
    """The pay page of one bill: the practice and the bill number (the code is never in it)."""
    return f"{public_base_url.rstrip('/')}/pay?{urlencode({'practice': practice_id, 'bill': bill_number})}"
