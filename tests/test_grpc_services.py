"""Standard gRPC plumbing: health checking and reflection on both ports, and
committed stubs that match the .proto sources."""

from __future__ import annotations

import filecmp
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authnet.sdk.credentials import SpCredentials
from authnet.testing import TestNetwork

ROOT = Path(__file__).resolve().parent.parent


def channels(net: TestNetwork, creds: SpCredentials) -> dict[str, grpc.aio.Channel]:
    return {
        "authnet.v1.ServiceProvider": grpc.aio.secure_channel(
            net.addresses.sp,
            grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.certificate_pem),
        ),
        "authnet.v1.PassKey": grpc.aio.secure_channel(
            net.addresses.passkey, grpc.ssl_channel_credentials(net.ca_pem)
        ),
    }


async def test_health_and_reflection(net: TestNetwork, sp_creds: SpCredentials) -> None:
    for service, channel in channels(net, sp_creds).items():
        async with channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", service):
                r = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert r.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await health.Check(health_pb2.HealthCheckRequest(service="nope"))
            assert unknown.value.code() is grpc.StatusCode.NOT_FOUND

            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            reply = await call.read()
            await call.done_writing()
            names = {s.name for s in reply.list_services_response.service}
            assert service in names
            assert "grpc.health.v1.Health" in names


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate(tmp_path)
    assert fresh, "no stubs generated"
    for path in fresh:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} missing: run make proto"
        assert filecmp.cmp(path, committed, shallow=False), f"{committed} is stale: run make proto"
