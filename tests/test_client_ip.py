"""The browser address the phone is shown: X-Forwarded-For counts only when the
connection comes from a configured proxy, and then the last hop that is not one."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from authnet.gateway import client_ip


def request(peer: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 12345) if name == "peername" else default
    )
    return make_mocked_request("GET", "/v1/wait", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        ("203.0.113.9", None, (), "203.0.113.9"),
        # A client cannot choose the address shown by sending the header itself.
        ("203.0.113.9", "198.51.100.7", (), "203.0.113.9"),
        ("203.0.113.9", "198.51.100.7", ("10.0.0.1",), "203.0.113.9"),
        # Behind a trusted proxy: the address the proxy saw.
        ("10.0.0.1", "198.51.100.7", ("10.0.0.1",), "198.51.100.7"),
        # A spoofed first hop does not win over what the proxy appended.
        ("10.0.0.1", "1.2.3.4, 198.51.100.7", ("10.0.0.1",), "198.51.100.7"),
        # Chained trusted proxies are skipped.
        ("10.0.0.1", "198.51.100.7, 10.0.0.2", ("10.0.0.1", "10.0.0.2"), "198.51.100.7"),
        # Garbage from a trusted proxy falls back to the proxy's own address.
        ("10.0.0.1", "not-an-ip", ("10.0.0.1",), "10.0.0.1"),
        ("10.0.0.1", "", ("10.0.0.1",), "10.0.0.1"),
    ],
)
def test_client_ip(
    peer: str, forwarded: str | None, proxies: tuple[str, ...], expected: str
) -> None:
    assert client_ip(request(peer, forwarded), proxies) == expected
