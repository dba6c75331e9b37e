"""The station's OPC UA server against a real asyncua client on loopback: security, Inspect, variables.

Servers run in their own threads as the station runs them (:class:`OpcUaServer`); each test drives a
client with ``asyncio.run``. The callback stands in for the station's engine: part ids starting with
``boom`` make it raise, ``slow`` take a second, ``ng`` give NG.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import Client, ua

from defect_plugins.station.line.opcua import OpcUaError, OpcUaServer
from tests.fixtures.opcua import (
    PASSWORD,
    USER,
    connected,
    free_port,
    line_nodes,
    make_client_cert,
    read_all,
)

pytestmark = pytest.mark.timeout(120)

COUNTERS = ["Inspected", "Rejected", "Errors"]
LAST = ["LastVerdict", "LastGrade", "LastPartId", "LastLot", "LastInspectionId", "State"]


class FakeEngine:
    """``inspect_part`` of the station, with its calls kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self._ids = itertools.count(1)

    def __call__(self, part_id: str, lot: str, image_path: str, origin: str = "") -> dict:
        self.calls.append((part_id, lot, image_path, origin))
        if part_id.startswith("boom"):
            raise RuntimeError(f"camera lost for {part_id}")
        if part_id.startswith("slow"):
            time.sleep(1.0)
        ng = part_id.startswith("ng")
        return {"inspection_id": next(self._ids), "verdict": "NG" if ng else "OK", "grade": "major" if ng else "ok",
                "error": "", "part_id": part_id, "lot": lot, "origin": origin}


def authenticate(user: str, password: str) -> bool:
    return (user, password) == (USER, PASSWORD)


def _server(tmp_path, engine, **kwargs) -> OpcUaServer:
    return OpcUaServer(engine, authenticate, cert_dir=tmp_path / "pki", port=free_port(), **kwargs)


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """A running secure server (the defaults) and its engine."""
    engine = FakeEngine()
    server = _server(tmp_path_factory.mktemp("opcua_station"), engine, model_version="cls v3")
    server.start()
    yield server, engine
    server.stop()
    assert not server.running


@pytest.fixture(scope="module")
def trusted_station(tmp_path_factory, opcua_client_cert):
    """A running server that accepts only the client certificates in its trusted folder (the test PLC's)."""
    root = tmp_path_factory.mktemp("opcua_trusted")
    (root / "trusted").mkdir()
    shutil.copy(opcua_client_cert.cert, root / "trusted")
    engine = FakeEngine()
    server = _server(root, engine, trusted_clients_dir=root / "trusted")
    server.start()
    yield server, engine
    server.stop()


async def _counters(client: Client, nodes) -> dict:
    return await read_all(client, nodes, COUNTERS)


def test_only_basic256sha256_sign_and_encrypt_with_user_names_is_offered(station):
    server, _ = station
    endpoints = asyncio.run(Client(server.endpoint).connect_and_get_server_endpoints())
    assert {(e.SecurityPolicyUri.rsplit("#", 1)[1], e.SecurityMode) for e in endpoints} == {
        ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt)}
    assert {t.TokenType for e in endpoints for t in e.UserIdentityTokens} == {ua.UserTokenType.UserName}
    assert all(e.EndpointUrl == server.endpoint == f"opc.tcp://127.0.0.1:{server.port}/defect-station/"
               for e in endpoints)
    assert server.warnings() == []


def test_inspect_returns_the_callbacks_result_and_the_variables_show_it(station, opcua_client_cert):
    server, engine = station

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert, server_cert=server.certificate.cert_path) as client:
            nodes = await line_nodes(client)
            before = await _counters(client, nodes)
            out = await nodes["object"].call_method(nodes["Inspect"], "ng-17", "lot-7", "part_0017.png")
            seen = await read_all(client, nodes, LAST + COUNTERS + ["ModelVersion"])
            inputs = await (await nodes["Inspect"].get_child("0:InputArguments")).read_value()
            outputs = await (await nodes["Inspect"].get_child("0:OutputArguments")).read_value()
            with pytest.raises(ua.UaStatusCodeError):  # read-only for clients
                await nodes["LastVerdict"].write_value(ua.Variant("OK", ua.VariantType.String))
            assert (await nodes["LastVerdict"].read_description()).Text.startswith("OK / NG / ERROR")
            assert (await client.nodes.server.get_child("0:ServerStatus")).nodeid  # a standard server
            build = await client.get_node(ua.ObjectIds.Server_ServerStatus_BuildInfo).read_value()
            assert (build.ProductName, build.ManufacturerName) == ("defect-station", "defect-plugins")
            return before, out, seen, inputs, outputs, await nodes["LastVerdict"].read_value()

    before, out, seen, inputs, outputs, after_write = asyncio.run(scenario())
    inspection_id = out[0]
    assert out == [inspection_id, "NG", "major", ""] and inspection_id >= 1
    assert engine.calls[-1] == ("ng-17", "lot-7", "part_0017.png", "opcua")
    assert seen == {"LastVerdict": "NG", "LastGrade": "major", "LastPartId": "ng-17", "LastLot": "lot-7",
                    "LastInspectionId": inspection_id, "State": "ready", "ModelVersion": "cls v3",
                    "Inspected": before["Inspected"] + 1, "Rejected": before["Rejected"] + 1,
                    "Errors": before["Errors"]}
    assert after_write == "NG"
    assert [(a.Name, a.DataType, a.ValueRank) for a in inputs] == [
        (name, ua.NodeId(ua.ObjectIds.String), -1) for name in ("part_id", "lot", "image_path")]
    assert [(a.Name, a.DataType) for a in outputs] == [
        ("InspectionId", ua.NodeId(ua.ObjectIds.Int64)), ("Verdict", ua.NodeId(ua.ObjectIds.String)),
        ("Grade", ua.NodeId(ua.ObjectIds.String)), ("Error", ua.NodeId(ua.ObjectIds.String))]
    assert all(a.Description.Text for a in inputs + outputs)


def test_a_wrong_password_is_refused(station, opcua_client_cert):
    server, _ = station

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert, password="not-the-password"):
            pass

    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        asyncio.run(scenario())


def test_anonymous_and_unsecured_sessions_are_refused_without_the_insecure_flag(station, opcua_client_cert,
                                                                                 monkeypatch):
    server, _ = station

    async def anonymous():
        async with connected(server.endpoint, opcua_client_cert, user=None, password=None):
            pass

    with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
        asyncio.run(anonymous())

    # asyncua lets any client open an unsecured channel (GetEndpoints needs one) and create a session on it;
    # a client that does not insist on the offered endpoint (made here by taking any endpoint) must still be
    # refused at activation, right password or not
    monkeypatch.setattr(Client, "find_endpoint", staticmethod(lambda endpoints, mode, uri: endpoints[0]))

    async def unsecured():
        async with connected(server.endpoint, None):
            pass

    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        asyncio.run(unsecured())


def test_the_insecure_flag_adds_an_anonymous_none_endpoint_and_says_so(tmp_path):
    engine = FakeEngine()
    server = _server(tmp_path, engine, insecure=True)
    assert any("--opcua-insecure" in w and str(server.port) in w for w in server.warnings())
    with server:

        async def scenario():
            endpoints = await Client(server.endpoint).connect_and_get_server_endpoints()
            async with connected(server.endpoint, None, user=None, password=None) as client:
                nodes = await line_nodes(client)
                out = await nodes["object"].call_method(nodes["Inspect"], "p-1", "lot-1", "a.png")
                return endpoints, out, await nodes["LastPartId"].read_value()

        endpoints, out, last = asyncio.run(scenario())
    assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt,
                                                   ua.MessageSecurityMode.None_}
    assert out[1:] == ["OK", "ok", ""] and last == "p-1"


def test_the_heartbeat_advances_every_second(station, opcua_client_cert):
    server, _ = station

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert) as client:
            nodes = await line_nodes(client)
            first = await nodes["Heartbeat"].read_value()
            await asyncio.sleep(1.3)
            return first, await nodes["Heartbeat"].read_value()

    first, second = asyncio.run(scenario())
    assert timedelta(seconds=0.5) <= second - first <= timedelta(seconds=2.5)
    assert abs(datetime.now(timezone.utc) - second.replace(tzinfo=timezone.utc)) < timedelta(seconds=3)


def test_a_failing_callback_gives_verdict_error_and_counts_it(station, opcua_client_cert):
    server, _ = station

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert) as client:
            nodes = await line_nodes(client)
            before = await _counters(client, nodes)
            out = await nodes["object"].call_method(nodes["Inspect"], "boom-1", "lot-9", "x.png")
            return before, out, await read_all(client, nodes, LAST + COUNTERS)

    before, out, seen = asyncio.run(scenario())
    assert out == [0, "ERROR", "", "RuntimeError: camera lost for boom-1"]
    assert seen["LastVerdict"] == "ERROR" and seen["LastPartId"] == "boom-1" and seen["LastLot"] == "lot-9"
    assert seen["LastInspectionId"] == 0 and seen["State"] == "ready"
    assert seen["Errors"] == before["Errors"] + 1 and seen["Inspected"] == before["Inspected"] + 1
    assert seen["Rejected"] == before["Rejected"]


def test_bad_arguments_get_the_status_codes_of_part_4(station, opcua_client_cert):
    server, engine = station

    async def call(client, nodes, *args):
        request = ua.CallMethodRequest(ObjectId=nodes["object"].nodeid, MethodId=nodes["Inspect"].nodeid,
                                       InputArguments=list(args))
        return (await client.uaclient.call([request]))[0]

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert) as client:
            nodes = await line_nodes(client)
            before = await _counters(client, nodes)
            s = ua.Variant("p", ua.VariantType.String)
            results = [await call(client, nodes, ua.Variant(5, ua.VariantType.Int32), s, s),
                       await call(client, nodes, s, s),
                       await call(client, nodes, s, s, s, s),
                       await call(client, nodes, ua.Variant("x" * 300, ua.VariantType.String), s, s)]
            return before, results, await _counters(client, nodes)

    calls = len(engine.calls)
    before, (wrong_type, missing, too_many, too_long), after = asyncio.run(scenario())
    assert wrong_type.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert [r.value for r in wrong_type.InputArgumentResults] == [ua.StatusCodes.BadTypeMismatch, 0, 0]
    assert missing.StatusCode.value == ua.StatusCodes.BadArgumentsMissing
    assert too_many.StatusCode.value == ua.StatusCodes.BadTooManyArguments
    assert too_long.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert too_long.InputArgumentResults[0].value == ua.StatusCodes.BadOutOfRange
    assert after == before and len(engine.calls) == calls  # nothing was inspected


def test_a_client_leaving_during_a_slow_inspect_does_not_hurt_the_server(station, opcua_client_cert):
    server, engine = station

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert) as probe:
            probe_nodes = await line_nodes(probe)
            before = await _counters(probe, probe_nodes)
            async with connected(server.endpoint, opcua_client_cert) as leaving:
                nodes = await line_nodes(leaving)
                call = asyncio.create_task(nodes["object"].call_method(nodes["Inspect"], "slow-1", "lot-1", "s.png"))
                await asyncio.sleep(0.3)
                busy = await probe_nodes["State"].read_value()  # another session is served meanwhile
                leaving.disconnect_socket()  # the PLC's cable is pulled mid-call
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(call, 5)
                assert call.done() and not call.cancelled() and call.exception() is not None
        async with connected(server.endpoint, opcua_client_cert) as next_client:
            nodes = await line_nodes(next_client)
            out = await nodes["object"].call_method(nodes["Inspect"], "after-1", "lot-1", "a.png")
            return busy, before, out, await read_all(next_client, nodes, LAST + COUNTERS)

    busy, before, out, seen = asyncio.run(scenario())
    assert busy == "busy"
    assert server.running and out[1:] == ["OK", "ok", ""]
    assert [c[0] for c in engine.calls[-2:]] == ["slow-1", "after-1"]
    # the slow part was inspected to the end: it counts although its caller left
    assert seen["Inspected"] == before["Inspected"] + 2 and seen["LastPartId"] == "after-1"
    assert seen["State"] == "ready"


def test_publish_from_another_thread_updates_the_variables_in_one_batch(station, opcua_client_cert):
    server, _ = station
    n = 200

    def publisher():
        for i in range(n):
            server.publish({"inspection_id": 10_000 + i, "verdict": "NG" if i % 2 else "OK",
                            "grade": "major" if i % 2 else "ok", "error": "", "part_id": f"pub-{i}", "lot": f"L{i}",
                            "origin": "upload"})

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert) as client:
            nodes = await line_nodes(client)
            before = await _counters(client, nodes)
            thread = threading.Thread(target=publisher)
            thread.start()
            reads = []
            while thread.is_alive():
                reads.append(await read_all(client, nodes, ["LastPartId", "LastLot", "LastInspectionId",
                                                            "LastVerdict", "Inspected"]))
            thread.join()
            server.publish({"inspection_id": 1, "verdict": "OK", "part_id": "own", "origin": "opcua"})  # skipped
            return before, reads, await read_all(client, nodes, LAST + COUNTERS)

    before, reads, seen = asyncio.run(scenario())
    assert reads
    for read in reads:  # every read saw one whole inspection, and counted with it
        i = read["LastInspectionId"] - 10_000
        if i < 0:
            continue
        assert (read["LastPartId"], read["LastLot"], read["LastVerdict"]) == (f"pub-{i}", f"L{i}",
                                                                             "NG" if i % 2 else "OK")
        assert read["Inspected"] == before["Inspected"] + i + 1
    assert seen["LastPartId"] == f"pub-{n - 1}" and seen["LastInspectionId"] == 10_000 + n - 1
    assert seen["Inspected"] == before["Inspected"] + n and seen["Rejected"] == before["Rejected"] + n // 2
    assert seen["Errors"] == before["Errors"]


def test_200_inspect_calls_in_sequence(trusted_station, opcua_client_cert, record_property, capsys):
    server, engine = trusted_station
    n = 200

    async def scenario():
        async with connected(server.endpoint, opcua_client_cert, server_cert=server.certificate.cert_path) as client:
            nodes = await line_nodes(client)
            obj, method = nodes["object"], nodes["Inspect"]
            started = time.perf_counter()
            for i in range(n):
                out = await obj.call_method(method, f"ng-{i}" if i % 10 == 0 else f"p-{i}", "lot", "img.png")
                assert out[1] == ("NG" if i % 10 == 0 else "OK")
            elapsed = time.perf_counter() - started
            return elapsed, await _counters(client, nodes)

    elapsed, counters = asyncio.run(scenario())
    assert counters == {"Inspected": n, "Rejected": n // 10, "Errors": 0} and len(engine.calls) == n
    rate = n / elapsed
    record_property("opcua_inspect_calls_per_s", round(rate, 1))
    with capsys.disabled():
        print(f"\nOPC UA Inspect: {n} calls in {elapsed:.2f} s, {rate:.0f} calls/s, "
              f"{1000 * elapsed / n:.2f} ms per call (Basic256Sha256 SignAndEncrypt, loopback)")


def test_an_untrusted_client_certificate_is_refused_and_kept_for_commissioning(trusted_station, tmp_path):
    server, _ = trusted_station
    stranger = make_client_cert(tmp_path / "stranger", name="stranger")

    async def connect():
        async with connected(server.endpoint, stranger) as client:
            return await (await line_nodes(client))["State"].read_value()

    with pytest.raises(ua.uaerrors.BadCertificateUntrusted):
        asyncio.run(connect())
    rejected = list((server.cert_dir / "rejected").glob("*.der"))
    assert [p.read_bytes() for p in rejected] == [stranger.cert.read_bytes()]
    shutil.copy(rejected[0], server._trust.trusted_dir)  # whoever commissions trusts it: no restart
    assert asyncio.run(connect()) == "ready"


def test_the_certificate_is_made_once_and_reused(tmp_path, opcua_client_cert):
    port = free_port()
    first = OpcUaServer(FakeEngine(), authenticate, cert_dir=tmp_path / "pki", port=port)
    with first:
        made = first.certificate
    assert made.generated and not first.running
    if os.name == "posix":
        assert made.key_path.stat().st_mode & 0o777 == 0o600
        assert made.key_path.parent.stat().st_mode & 0o777 == 0o700
    pinned = tmp_path / "server_as_the_plc_trusts_it.der"
    shutil.copy(made.cert_path, pinned)
    with socket.socket() as sock:  # stop() let the port go
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))

    again = OpcUaServer(FakeEngine(), authenticate, cert_dir=tmp_path / "pki", port=port)
    with again:
        assert again.certificate.generated == "" and again.thumbprint == made.thumbprint
        assert again.warnings() == []
        with pytest.raises(OpcUaError, match=f"cannot listen on 127.0.0.1:{port}"):  # the port is taken now
            OpcUaServer(FakeEngine(), authenticate, cert_dir=tmp_path / "pki3", port=port).start()

        async def read_state():
            async with connected(again.endpoint, opcua_client_cert, server_cert=pinned) as client:
                return await (await line_nodes(client))["State"].read_value()

        assert asyncio.run(read_state()) == "ready"
