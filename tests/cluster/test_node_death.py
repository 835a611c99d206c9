"""A node dies (kill -9) under load, and the cluster loses no login.

Two `authnet serve` processes, set up with `authnet cluster init`,
`authnet cluster bundle` (encrypted) and `authnet node join`, share the real
Redis and PostgreSQL. Clients know both nodes and start on the first; 2 s into
a loaded run the first node is killed with SIGKILL. Every login whose client
did not give up must complete, with the right Kc and PUID: calls in flight on
the dead node are retried on the other one (CompleteAuth and GetPUID(finalize)
idempotently), and browsers waiting on the dead node's gateway resume on the
other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from authnet.sdk import AsyncSPClient, SpCredentials
from tests.cluster.load import LoginLoad
from tests.cluster.processes import ProcessCluster
from tests.pgdb import postgres_database
from tests.redisdb import delete_prefix, ensure_redis, unique_prefix
from tokens.api import PassKeyApi


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    url = ensure_redis()
    prefix = unique_prefix("death")
    try:
        with (
            postgres_database("authnet_death") as database_url,
            ProcessCluster(
                tmp_path, nodes=2, state_url=url, state_prefix=prefix, database_url=database_url
            ) as c,
        ):
            yield c
    finally:
        delete_prefix(url, prefix)


@pytest.mark.timeout(180)
async def test_kill_9_of_one_node_loses_no_login(cluster: ProcessCluster, tmp_path: Path) -> None:
    creds = SpCredentials.load(cluster.sp_creds)
    async with (
        AsyncSPClient(creds, address=cluster.addresses("sp")) as sp,
        PassKeyApi(cluster.addresses("passkey"), ca_pem=creds.ca_pem) as api,
    ):
        load = LoginLoad(sp, api, cluster.addresses("gateway"), tmp_path, phones=8)
        await load.setup()
        before = await load.run(4, 1.0)
        assert before > 0
        assert load.tally.completed > 0
        assert load.tally.failed == 0
        load.tally.started = load.tally.completed = 0
        await load.run(16, 8.0, at=2.0, event=cluster.nodes[0].kill)
        tally = load.tally
        assert cluster.nodes[0].proc is not None
        assert cluster.nodes[0].proc.poll() is not None
        assert tally.wrong == []
        assert tally.failed == 0, f"logins lost: {dict(tally.failures)}"
        assert tally.completed == tally.started > 50
        # The calls and waits that were on the dead node went to the other one.
        assert sp.retried + api.retried + tally.resumed_waits > 0
        assert sp.last_node == api.last_node != ""
