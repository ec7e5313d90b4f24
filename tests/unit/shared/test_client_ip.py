"""The client IP behind proxies: X-Forwarded-For believed only from trusted proxies, and only
up to the first untrusted hop (what a client writes further left is ignored)."""

from starlette.requests import Request

from shared.client_ip import client_ip


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_ip(request("203.0.113.9", "10.0.0.1"), "") == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_ip(request("203.0.113.9", "198.51.100.1"), "10.0.0.0/8") == "203.0.113.9"


def test_behind_a_trusted_balancer_the_nearest_untrusted_hop_is_the_client() -> None:
    trusted = "10.0.0.0/8, 192.168.1.5"
    assert client_ip(request("10.1.2.3", "198.51.100.7"), trusted) == "198.51.100.7"
    # the client forged a first hop; the balancer appended the real one
    assert client_ip(request("10.1.2.3", "1.1.1.1, 198.51.100.7"), trusted) == "198.51.100.7"
    # two trusted proxies in a row, header split over two lines
    assert client_ip(request("192.168.1.5", "198.51.100.7", "10.4.4.4"), trusted) == "198.51.100.7"


def test_garbage_from_a_trusted_proxy_falls_back_to_the_proxy() -> None:
    assert client_ip(request("10.1.2.3", "not-an-ip"), "10.0.0.0/8") == "10.1.2.3"
    assert client_ip(request("10.1.2.3"), "10.0.0.0/8") == "10.1.2.3"
