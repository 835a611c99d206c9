"""The complete phone-QR login over real sockets (mTLS SP API, TLS PassKey API,
websocket gateway), and what each party ends up with."""

from __future__ import annotations

import pytest

from authnet.errors import TicketConsumed
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import login


async def test_browser_gets_the_phones_kc_and_sp_gets_a_puid(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    run = await login(sp, phone)
    assert run.kc is not None
    assert kc_fingerprint(run.kc) == run.report.kc_fingerprint
    who = await sp.get_puid(run.ticket.ticket, finalize=True)
    assert who.auth_types == "c"
    assert len(who.puid) == 22
    with pytest.raises(TicketConsumed):
        await sp.get_puid(run.ticket.ticket, finalize=True)
