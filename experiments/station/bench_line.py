"""Line rate of ``defect-station``: parts triggered at a set rate, verdicts timed until they are published.

    python experiments/station/bench_line.py --model cls.xml [--model seg.xml ...] [--images DIR] \\
        [--count 150] [--rates 2,5,0.5x,0.8x,1.0x,1.2x] [--single 20] [--trigger mqtt|opcua] \\
        [--out bench_line.json]

What a PLC or MES sees, end to end: a broker (Debian's ``mosquitto`` on a free loopback port, a
temporary configuration), the real station process (``python -m defect_plugins.station --no-login
--mqtt ... --image-root DIR``) and a consumer subscribed to ``PREFIX/verdict`` (QoS 1). Parts are
triggered by MQTT requests on ``PREFIX/request`` (QoS 1, ``{"part_id", "lot", "image_path"}``), or with
``--trigger opcua`` by ``Inspect`` calls from ``--clients`` concurrent OPC UA clients (the station's
unencrypted commissioning endpoint, ``--opcua-insecure``). A part's latency is the time from its trigger
(the request's publication, or the call) to the arrival of its verdict at the consumer, matched by
``part_id``: the queue at the broker and in the station, the inspection, the SQLite record with its
outbox message, and the outbox publisher's round trip to the broker. Every client runs in this process,
so one clock times both ends.

Phases: a few warm-up parts (not counted); ``--single`` parts one after the other, each sent when the
previous verdict arrived (the single-image latency: nothing queued); then, per rate, ``--count`` parts
triggered on a fixed schedule (``i / rate`` seconds after the first), and the verdicts drained. Per rate:
offered rate, achieved throughput (verdicts / (last verdict - first trigger)), p50 / p99 latency, lost
(no verdict within ``--drain-s`` of the last one; split after the run into parts the station recorded
without publishing and parts it never took), duplicates (a verdict for a part that had one), the verdicts
by value, each model's median time in the station (``GET /api/status``) and the cores the station, the
broker and this process kept busy.

Beside it, in the same run and before the station starts (so nothing else competes for the CPU),
OpenVINO's ``benchmark_app`` on each IR (:func:`defect_plugins.deploy.bench.benchmark_app.run_benchmark_app`):
batch 1, ``THROUGHPUT`` hint, the station's precision, and the station's thread count (neither sets
``INFERENCE_NUM_THREADS``: OpenVINO's default, recorded from benchmark_app's report). With throughputs
T1..Tk, one image through every model costs at least 1/T1 + ... + 1/Tk, so the line cannot go above
``1 / (1/T1 + ... + 1/Tk)`` images/s: the limit. A rate written ``0.8x`` is that fraction of the limit.
benchmark_app's ``LATENCY`` hint (one synchronous request, as the station compiles and calls each model)
gives a second figure, the sequential limit ``1000 / (L1 + ... + Lk)`` with the median latencies in ms:
what a station that runs one image at a time through one model at a time could reach at best.

Targets: sustained throughput (the best achieved) >= 90 % of the limit with nothing lost, and at 80 % of
the limit a p99 under twice the single-image p50. The rate where latency starts to climb is the first
offered rate whose p99 is above twice the single-image p50.

Where the time goes, after the station stopped: ``--workers-probe`` runs the station's per-part work
(``PartInspector.inspect_part``) in this process with one thread, with the real outbox publisher beside it,
and with two threads; ``--streams-probe`` runs decode + every model with one worker and LATENCY-compiled
models against one worker per core with THROUGHPUT-compiled models; ``--store-probe`` times the SQLite writes
one verdict costs (the record with its outbox row, then the mark) with ``synchronous=FULL`` as the station
writes and ``NORMAL`` for comparison. The CPU time other processes used during each phase is recorded:
a shared machine makes every figure here slower, and the run says by how much it was shared.
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.metadata
import json
import math
import os
import platform
import queue
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

PREFIX = "bench/line1"
THROUGHPUT_SHARE = 0.90  # sustained throughput >= this share of benchmark_app's limit
LATENCY_LOAD = 0.80  # at this share of the limit ...
LATENCY_FACTOR = 2.0  # ... p99 under this many times the single-image p50
SBIN = ("/usr/sbin", "/usr/local/sbin")  # Debian puts mosquitto in sbin, often not on a user's PATH


# ---------------------------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Rate:
    """An offered rate: images/s, or (``relative``) a fraction of benchmark_app's limit."""

    value: float
    relative: bool = False

    def resolve(self, limit: float | None) -> float:
        if not self.relative:
            return self.value
        if limit is None:
            raise ValueError(f"rate {self.value:g}x needs benchmark_app's limit (drop --no-benchmark-app)")
        return self.value * limit


def parse_rates(text: str) -> list[Rate]:
    """``"2,5,0.8x"`` -> rates; ``Nx`` is N times the limit. Each must be a positive finite number."""
    rates = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        relative = item.lower().endswith("x")
        try:
            value = float(item[:-1] if relative else item)
        except ValueError:
            raise ValueError(f"rate {item!r}: expected images/s (e.g. 5) or a share of the limit (e.g. 0.8x)") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"rate {item!r}: must be above 0")
        rates.append(Rate(value, relative))
    if not rates:
        raise ValueError("--rates: give at least one rate")
    return rates


def line_limit(throughputs: Sequence[float]) -> float:
    """``1 / (1/T1 + ... + 1/Tk)``: the images/s of k models that each take 1/Ti s of the device per image."""
    if not throughputs or any(t <= 0 for t in throughputs):
        raise ValueError(f"need positive throughputs, got {list(throughputs)}")
    return 1.0 / sum(1.0 / t for t in throughputs)


def sequential_limit(latencies_ms: Sequence[float]) -> float:
    """Images/s of one image at a time through one model at a time: ``1000 / (L1 + ... + Lk)``."""
    if not latencies_ms or any(ms <= 0 for ms in latencies_ms):
        raise ValueError(f"need positive latencies, got {list(latencies_ms)}")
    return 1000.0 / sum(latencies_ms)


def percentile_ms(values_s: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (numpy's linear interpolation) of durations in s, in ms; None without any."""
    return float(np.percentile(np.asarray(values_s, dtype=np.float64), q) * 1000.0) if len(values_s) else None


def summarise(triggers: dict[str, float], arrivals: dict[str, list[float]], verdicts: dict[str, str],
              offered: float | None) -> dict[str, Any]:
    """One rate's figures from trigger times and verdict arrival times (s, one clock), keyed by part id.

    A part's latency runs to its first verdict; later ones for the same part are duplicates (QoS 1 is at
    least once). Throughput is delivered parts over the span from the first trigger to the last first verdict.
    """
    delivered = {part: min(arrivals[part]) for part in triggers if arrivals.get(part)}
    latencies = [delivered[part] - triggers[part] for part in delivered]
    span = (max(delivered.values()) - min(triggers.values())) if delivered else 0.0
    counts: dict[str, int] = {}
    for part in delivered:
        counts[verdicts.get(part, "?")] = counts.get(verdicts.get(part, "?"), 0) + 1
    sent_span = max(triggers.values()) - min(triggers.values()) if len(triggers) > 1 else 0.0
    return {
        "offered_per_s": offered, "sent": len(triggers),
        "sent_per_s": (len(triggers) - 1) / sent_span if sent_span > 0 else None,
        "delivered": len(delivered), "lost": len(triggers) - len(delivered),
        "duplicates": sum(len(arrivals.get(part, [])) - 1 for part in delivered),
        "unexpected": sum(len(times) for part, times in arrivals.items() if part not in triggers),
        "throughput_per_s": len(delivered) / span if span > 0 else None,
        "p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99),
        "max_ms": max(latencies) * 1000.0 if latencies else None, "verdicts": counts,
    }


def latency_knee(rows: Sequence[dict[str, Any]], single_p50_ms: float, factor: float = LATENCY_FACTOR) -> float | None:
    """The lowest offered rate whose p99 is above ``factor`` x the single-image p50 (None: none is)."""
    climbed = [row["offered_per_s"] for row in rows
               if row["p99_ms"] is not None and row["p99_ms"] > factor * single_p50_ms]
    return min(climbed) if climbed else None


def verdict_targets(rows: Sequence[dict[str, Any]], single_p50_ms: float, limit: float | None) -> dict[str, Any]:
    """The two targets against benchmark_app's limit: sustained share, and p99 at 80 % of the limit."""
    best = max((row["throughput_per_s"] or 0.0 for row in rows), default=0.0)
    lost = sum(row["lost"] for row in rows)
    targets: dict[str, Any] = {"sustained_per_s": best, "lost": lost,
                               "latency_climbs_at_per_s": latency_knee(rows, single_p50_ms)}
    if limit is None:
        return targets
    near = [row for row in rows if abs(row["offered_per_s"] - LATENCY_LOAD * limit) <= 0.05 * limit]
    p99 = near[0]["p99_ms"] if near else None
    targets.update({
        "limit_per_s": limit, "sustained_share": best / limit,
        "throughput_met": best >= THROUGHPUT_SHARE * limit and lost == 0,
        "p99_at_80pct_ms": p99, "p99_bound_ms": LATENCY_FACTOR * single_p50_ms,
        "latency_met": None if p99 is None else p99 < LATENCY_FACTOR * single_p50_ms,
    })
    return targets


# ---------------------------------------------------------------------------------------------------- the parts


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """``mosquitto -c CONF`` on a free loopback port, anonymous, no persistence (one run, nothing to keep)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path=os.pathsep.join(SBIN))
        if binary is None:
            raise RuntimeError("the mosquitto broker is not installed (apt-get install mosquitto)")
        self.binary, self.port, self.log = binary, free_port(), folder / "mosquitto.log"
        self.conf = folder / "mosquitto.conf"
        # when started as root, mosquitto switches to the user 'mosquitto' unless told to stay
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             f"user {getpass.getuser()}\nlog_dest stderr\nlog_type error\nlog_type warning\n")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def version(self) -> str:
        done = subprocess.run([self.binary, "-h"], capture_output=True, text=True, timeout=10)
        return ((done.stdout or done.stderr).splitlines() or ["?"])[0].strip()

    def __enter__(self) -> Broker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.closing(socket.socket()) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class LineClient:
    """The line's side: publishes requests (QoS 1) and timestamps verdicts at arrival (QoS 1 subscription)."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.prefix = prefix
        self._lock = threading.Lock()
        self.arrivals: dict[str, list[float]] = {}
        self.verdicts: dict[str, str] = {}
        self.errors: list[str] = []
        self.sent: dict[str, float] = {}  # part id -> trigger time (MQTT requests)
        self._new = threading.Condition(self._lock)
        self._subscribed = threading.Event()
        self.consumer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-line-consumer",
                                    protocol=mqtt.MQTTv5)
        self.consumer.on_connect = lambda client, *_: client.subscribe([(f"{prefix}/verdict", 1),
                                                                        (f"{prefix}/error", 1)])
        self.consumer.on_subscribe = lambda *_: self._subscribed.set()
        self.consumer.on_message = self._on_message
        self.requester = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-line-requester",
                                     protocol=mqtt.MQTTv5)
        self.requester.max_inflight_messages_set(1000)  # the station's Receive Maximum paces it, not paho
        self.requester.max_queued_messages_set(0)
        for client in (self.consumer, self.requester):
            client.connect("127.0.0.1", port, keepalive=30)
            client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the consumer did not get its subscription acknowledged")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:  # noqa: ANN401
        arrived = time.perf_counter()
        payload = json.loads(message.payload)
        with self._new:
            if message.topic.endswith("/error"):
                self.errors.append(payload.get("error", "?"))
                return
            part = payload.get("part_id")
            self.arrivals.setdefault(part, []).append(arrived)
            self.verdicts.setdefault(part, payload.get("verdict"))
            self._new.notify_all()

    def trigger(self, part_id: str, image: str) -> None:
        """Publish one request; its trigger time (just before the publish call) goes into :attr:`sent`."""
        body = json.dumps({"part_id": part_id, "lot": "BENCH", "image_path": image})
        self.sent[part_id] = time.perf_counter()
        info = self.requester.publish(f"{self.prefix}/request", body, qos=1)
        if info.rc != 0:
            raise RuntimeError(f"publishing the request of {part_id} failed (paho rc {info.rc})")

    def wait_for(self, parts: Sequence[str], quiet_s: float) -> None:
        """Until every part has a verdict, or no new verdict came for ``quiet_s`` s."""
        with self._new:
            while not all(part in self.arrivals for part in parts):
                before = sum(map(len, self.arrivals.values()))
                self._new.wait(quiet_s)
                if sum(map(len, self.arrivals.values())) == before:
                    return

    def snapshot(self, parts: Sequence[str]) -> tuple[dict[str, list[float]], dict[str, str]]:
        with self._lock:
            return ({p: list(self.arrivals.get(p, [])) for p in parts},
                    {p: self.verdicts[p] for p in parts if p in self.verdicts})

    def close(self) -> None:
        for client in (self.requester, self.consumer):
            client.disconnect()
            client.loop_stop()


class OpcUaTrigger:
    """``clients`` OPC UA clients (asyncua, the station's unencrypted commissioning endpoint, anonymous) calling
    ``Inspect``; part n goes to client n mod ``clients``. The calls run on an event loop in a thread of their
    own; :attr:`sent` gets the time just before each call, :attr:`returned` the time the call came back (what
    the PLC waits for; the verdict's publication on MQTT is timed by :class:`LineClient`)."""

    def __init__(self, endpoint: str, clients: int, line: str = "line1") -> None:
        import asyncio

        self.sent: dict[str, float] = {}
        self.returned: dict[str, float] = {}
        self.failures: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-line-opcua", daemon=True)
        self._thread.start()
        self._clients: list[Any] = []
        self._count = 0
        self._call(self._connect(endpoint, clients, line), 60)

    def _call(self, coroutine: Any, timeout: float) -> Any:  # noqa: ANN401
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _connect(self, endpoint: str, clients: int, line: str) -> None:
        from asyncua import Client, ua

        for _ in range(clients):
            client = Client(endpoint, timeout=120.0)  # a queued call may wait long at a rate above capacity
            client.session_timeout = 600_000  # the server's most (10 min): asyncua warns when it revises a request
            await client.connect()
            index = await client.get_namespace_index("urn:defect-plugins:station")
            node = client.get_node(ua.NodeId(f"Line_{line}", index))
            method = await node.get_child([f"{index}:Inspect"])
            self._clients.append((client, node, method))

    async def _inspect(self, slot: int, part_id: str, image: str) -> None:
        from asyncua import ua

        client, node, method = self._clients[slot]
        self.sent[part_id] = time.perf_counter()
        try:
            await node.call_method(method, ua.Variant(part_id, ua.VariantType.String),
                                   ua.Variant("BENCH", ua.VariantType.String), ua.Variant(image, ua.VariantType.String))
            self.returned[part_id] = time.perf_counter()
        except Exception as error:  # counted, not raised: the verdict may still be published
            self.failures.append(f"{part_id}: {error!r}")

    def trigger(self, part_id: str, image: str) -> None:
        import asyncio

        slot, self._count = self._count % len(self._clients), self._count + 1
        asyncio.run_coroutine_threadsafe(self._inspect(slot, part_id, image), self._loop)
        deadline = time.monotonic() + 10
        while part_id not in self.sent:  # the trigger time is taken on the loop: wait until the call is made
            if time.monotonic() > deadline:
                raise RuntimeError(f"the OPC UA call for {part_id} did not start within 10 s")
            time.sleep(0.0002)

    def close(self) -> None:
        async def disconnect() -> None:
            for client, _, _ in self._clients:
                with contextlib.suppress(Exception):
                    await client.disconnect()

        with contextlib.suppress(Exception):
            self._call(disconnect(), 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def station(models: Sequence[Path], folder: Path, images: Path, broker_url: str, precision: str,
            command_out: list[str], opcua_port: int | None = None, pid_out: list[int] | None = None,
            log_out: list[str] | None = None, line_workers: int = 1) -> Iterator[str]:
    """The real ``defect-station`` (``--no-login``, a new database, port 0); yields its URL.

    With ``opcua_port`` it also serves OPC UA there, unencrypted and without login (``--opcua-insecure``,
    the commissioning endpoint: a bench measures the station, not the encryption of a secure channel).
    """
    command = [sys.executable, "-m", "defect_plugins.station", "--no-login", "--port", "0",
               "--db", str(folder / "station.sqlite"), "--precision", precision, "--mqtt", broker_url,
               "--mqtt-prefix", PREFIX, "--image-root", str(images), "--line-workers", str(line_workers)]
    if opcua_port is not None:
        command += ["--opcua-port", str(opcua_port), "--opcua-insecure"]
    for model in models:
        command += ["--model", str(model)]
    command_out[:] = command
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if pid_out is not None:
        pid_out[:] = [process.pid]
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # keep reading: a full pipe would stall the station's logging
        for line in process.stdout:
            lines.put(line)
            if log_out is not None:
                log_out.append(line.rstrip())
                del log_out[:-200]  # the last 200 lines go into the figures

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=180)
            except queue.Empty:
                raise RuntimeError(f"defect-station did not start: {''.join(seen)}") from None
            seen.append(line)
            if line.startswith("defect-station: serving "):
                break
            if process.poll() is not None and lines.empty():
                raise RuntimeError(f"defect-station exited {process.returncode}: {''.join(seen)}")
        yield line.split("serving ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# ---------------------------------------------------------------------------------------------------- phases


class Trigger(Protocol):
    """How parts reach the station: :class:`LineClient` (MQTT requests) or :class:`OpcUaTrigger` (``Inspect``)."""

    sent: dict[str, float]

    def trigger(self, part_id: str, image: str) -> None:
        ...


def _figures(client: LineClient, trigger: Trigger, parts: Sequence[str], offered: float | None) -> dict[str, Any]:
    arrivals, verdicts = client.snapshot(parts)
    row = summarise({part: trigger.sent[part] for part in parts if part in trigger.sent}, arrivals, verdicts, offered)
    returned = getattr(trigger, "returned", None)
    if returned is not None:  # OPC UA: the Inspect call's own round trip, as the PLC sees it
        calls = [returned[part] - trigger.sent[part] for part in parts if part in returned]
        row.update(call_p50_ms=percentile_ms(calls, 50), call_p99_ms=percentile_ms(calls, 99),
                   call_failures=len(parts) - len(calls))
    return row


def warm_up(client: LineClient, trigger: Trigger, images: Sequence[str], parts: int, timeout_s: float = 120.0) -> None:
    """Parts one at a time until ``parts`` verdicts came back; a request sent before the station subscribed
    is dropped by the broker (no session yet), so each one is retried under a new part id after 5 s."""
    deadline, done, attempt = time.monotonic() + timeout_s, 0, 0
    while done < parts:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no verdict from the station within {timeout_s:.0f} s (errors: {client.errors[-3:]})")
        part = f"warm-{attempt:03d}"
        trigger.trigger(part, images[attempt % len(images)])
        attempt += 1
        client.wait_for([part], 5.0)
        done += part in client.arrivals


def single(client: LineClient, trigger: Trigger, images: Sequence[str], parts: int, quiet_s: float) -> dict[str, Any]:
    """Parts one after the other, each sent when the previous verdict arrived: the latency with nothing queued."""
    names = [f"single-{number:04d}" for number in range(parts)]
    for number, part in enumerate(names):
        trigger.trigger(part, images[number % len(images)])
        client.wait_for([part], quiet_s)
        time.sleep(0.02)  # let the publisher's mark and the broker settle: no overlap with the next part
    return _figures(client, trigger, names, None)


def at_rate(client: LineClient, trigger: Trigger, images: Sequence[str], parts: int, rate: float, tag: str,
            quiet_s: float) -> dict[str, Any]:
    """``parts`` triggers ``1 / rate`` s apart on a fixed schedule (a late one does not shift the next)."""
    names = [f"{tag}-{number:05d}" for number in range(parts)]
    start = time.perf_counter()
    for number, part in enumerate(names):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        trigger.trigger(part, images[number % len(images)])
    client.wait_for(names, quiet_s)
    return _figures(client, trigger, names, rate)


# ---------------------------------------------------------------------------------------------------- references


def benchmark_app_limits(models: Sequence[Path], precision: str, seconds: float) -> dict[str, Any]:
    """benchmark_app per IR (batch 1; ``THROUGHPUT`` and ``LATENCY`` hints), the limit and the sequential limit."""
    from defect_plugins.deploy.bench.benchmark_app import run_benchmark_app
    from defect_plugins.deploy.ir_files import read_metadata

    rows = []
    for xml in models:
        size = read_metadata(xml).input_size
        tput = run_benchmark_app(xml, size, batch=1, hint="THROUGHPUT", threads=None, seconds=seconds,
                                 precision=precision)
        lat = run_benchmark_app(xml, size, batch=1, hint="LATENCY", threads=None, seconds=seconds,
                                precision=precision)
        rows.append({"model": str(xml), "input_size": list(size), "throughput_fps": tput["throughput_fps"],
                     "throughput_compiled": tput["compiled"], "throughput_command": tput["command"],
                     "latency_median_ms": lat["latency_median_ms"], "latency_compiled": lat["compiled"],
                     "latency_command": lat["command"]})
    return {"models": rows, "limit_per_s": line_limit([row["throughput_fps"] for row in rows]),
            "sequential_limit_per_s": sequential_limit([row["latency_median_ms"] for row in rows])}


def store_probe(verdicts: int) -> dict[str, Any]:
    """ms per verdict of the SQLite writes the station makes for it (record + outbox row, then the mark)."""
    from defect_plugins.station.store import Store

    class Normal(Store):
        """The same store with ``synchronous=NORMAL`` (WAL: a commit no longer waits for the disk)."""

        def _write(self, what: str, work: Any, *, durable: bool = True) -> Any:
            return super()._write(what, work, durable=False)  # every write of the store's own methods

    message = json.dumps({"part_id": "P", "verdict": "OK", "scores": {"a": 0.1, "b": 0.2, "c": 0.3}})
    figures = {}
    for name, kind in (("FULL", Store), ("NORMAL", Normal)):
        with tempfile.TemporaryDirectory(prefix="bench-line-store-") as folder:
            store = kind(Path(folder) / "station.sqlite")
            record, mark = [], []
            for number in range(verdicts):
                started = time.perf_counter()
                store.add_inspection(source="mqtt:part.png", image_sha256="0" * 64, width=200, height=200,
                                     models=[{"name": "m"}] * 3, results=[{"model": "m", "score": 0.1}] * 3,
                                     grade="ok", class_name="ok", score=0.1, view_token="t" * 24,
                                     part_id=f"P{number:05d}", lot="L", verdict="OK",
                                     messages=lambda i, at: [("mqtt", f"{PREFIX}/verdict", message)])
                between = time.perf_counter()
                row = store.outbox_pending("mqtt", 1)[0]
                store.outbox_published(int(row["id"]))
                record.append(between - started)
                mark.append(time.perf_counter() - between)
            store.close()
        figures[name] = {"record_p50_ms": percentile_ms(record, 50), "mark_p50_ms": percentile_ms(mark, 50),
                         "per_verdict_mean_ms": float(np.mean(np.add(record, mark)) * 1000.0)}
    figures["FULL_beside_publisher"] = record_beside_marks(Store, verdicts, message)
    return {"verdicts": verdicts, **figures}


def record_beside_marks(kind: type, verdicts: int, message: str, gap_s: float = 0.005) -> dict[str, Any]:
    """The record's time when a second thread marks each verdict published as soon as it is written, as the
    station's outbox publisher does beside its request worker (both take SQLite's write lock; a writer that finds
    it taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... ms between tries). ``gap_s`` between
    records stands for a short model's inference."""
    with tempfile.TemporaryDirectory(prefix="bench-line-store-") as folder:
        store = kind(Path(folder) / "station.sqlite")
        stop = threading.Event()

        def marker() -> None:
            while not stop.is_set():
                rows = store.outbox_pending("mqtt", 1)
                if rows:
                    store.outbox_published(int(rows[0]["id"]))
                else:
                    time.sleep(0.0005)

        thread = threading.Thread(target=marker, daemon=True)
        thread.start()
        record = []
        for number in range(verdicts):
            started = time.perf_counter()
            store.add_inspection(source="mqtt:part.png", image_sha256="0" * 64, width=200, height=200,
                                 models=[{"name": "m"}], results=[{"model": "m", "score": 0.1}], grade="ok",
                                 class_name="ok", score=0.1, view_token="t" * 24, part_id=f"P{number:05d}", lot="L",
                                 verdict="OK", messages=lambda i, at: [("mqtt", f"{PREFIX}/verdict", message)])
            record.append(time.perf_counter() - started)
            time.sleep(gap_s)
        stop.set()
        thread.join(10)
        store.close()
    return {"record_p50_ms": percentile_ms(record, 50), "record_p99_ms": percentile_ms(record, 99),
            "record_max_ms": max(record) * 1000.0, "record_mean_ms": float(np.mean(record) * 1000.0)}


class CpuMeter:
    """CPU time that processes other than this run's used meanwhile, in cores (0: the CPU was ours alone).

    All busy time of the machine (``/proc/stat``) less this process's and its children's: those it waited
    for (``os.times``) and those still running (``/proc/PID/stat``, e.g. the station before it stops).
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = self._sample(())

    def _sample(self, pids: Sequence[int]) -> tuple[float, float, float]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            # user nice system idle iowait irq softirq steal: busy is all but idle and iowait
            busy = sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7)) / self.tick
        except (OSError, IndexError, ValueError):
            return math.nan, math.nan, time.monotonic()
        own = sum(os.times()[:4])
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                own += (int(stat[11]) + int(stat[12])) / self.tick  # utime, stime
        return busy, own, time.monotonic()

    def others(self, pids: Sequence[int] = ()) -> float:
        """Cores used by other processes on average since this meter started."""
        busy, own, at = self._sample(pids)
        start_busy, start_own, start_at = self.start
        return max(0.0, ((busy - start_busy) - (own - start_own)) / max(at - start_at, 1e-9))


PROBE_VARIANTS = (("one_thread", 1, False), ("one_thread_with_publisher", 1, True), ("two_threads", 2, False))
PROBE_ROUNDS = 3  # the probes alternate their variants this many times: the machine's speed drifts


def _rounds(parts: int) -> list[int]:
    """``parts`` split into :data:`PROBE_ROUNDS` blocks (at least one part each)."""
    return [max(1, parts // PROBE_ROUNDS + (index < parts % PROBE_ROUNDS)) for index in range(PROBE_ROUNDS)]


def inspector_probe(models: Sequence[Path], images: Path, names: Sequence[str], parts: int, precision: str,
                    broker_url: str | None = None) -> dict[str, Any]:
    """Images/s of the station's own per-part work, in this process, three ways (:data:`PROBE_VARIANTS`).

    :meth:`defect_plugins.station.line.parts.PartInspector.inspect_part` as the MQTT request worker calls it
    (decode, every model, the SQLite record with its outbox message, the result cache), without the broker:
    ``one_thread`` is what the station's single request worker does; ``one_thread_with_publisher`` adds the
    station's real :class:`~defect_plugins.station.line.mqtt.OutboxPublisher` draining the outbox to
    ``broker_url`` meanwhile (its SQLite read, publish, PUBACK wait and SQLite mark per verdict), as in the
    station; ``two_threads`` takes two parts at once (the models keep their per-model lock, so two parts are
    never in the same model at once): what a second request worker would give. The variants alternate in
    :data:`PROBE_ROUNDS` rounds; each figure is the median of its rounds.
    """
    from concurrent.futures import ThreadPoolExecutor

    from defect_plugins.deploy.grading.rules import load_rules
    from defect_plugins.station.engine import Station
    from defect_plugins.station.line.links import mqtt_messages
    from defect_plugins.station.line.mqtt import OutboxPublisher, settings_from_options
    from defect_plugins.station.line.parts import ImageRoots, PartInspector
    from defect_plugins.station.store import Store

    rates: dict[str, list[float]] = {name: [] for name, _, _ in PROBE_VARIANTS}
    models_ms: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in PROBE_VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-line-probe-") as tmp:
        store = Store(Path(tmp) / "station.sqlite")
        station = Station(list(models), load_rules(None), store, precision=precision, strict_rules=False)
        inspector = PartInspector(station, ImageRoots([images]), messages=mqtt_messages(f"{PREFIX}/probe"))
        publisher = (OutboxPublisher(settings_from_options(broker_url, prefix=f"{PREFIX}-probe"), store).start()
                     if broker_url is not None else None)
        pools = {count: ThreadPoolExecutor(count) for _, count, _ in PROBE_VARIANTS}
        try:
            for number in range(3):
                inspector.inspect_part(f"warm-{number}", None, names[number % len(names)], origin="probe")
            for round_index, block in enumerate(_rounds(parts)):
                for name, count, with_publisher in PROBE_VARIANTS:
                    if with_publisher and publisher is None:
                        continue
                    inspector.listeners.clear()
                    if with_publisher:
                        inspector.listeners.append(lambda verdict: publisher.notify())
                        publisher.notify()
                        deadline = time.monotonic() + 30
                        while store.outbox_counts("mqtt")["pending"] and time.monotonic() < deadline:
                            time.sleep(0.05)  # the other variants' messages first: timing starts on an empty outbox
                    for model in station.models:
                        model.latencies_ms.clear()
                    tag = f"{name}-{round_index}"
                    started = time.perf_counter()
                    list(pools[count].map(lambda n, tag=tag: inspector.inspect_part(
                        f"{tag}-{n:05d}", None, names[n % len(names)], origin="probe"), range(block)))
                    rates[name].append(block / (time.perf_counter() - started))
                    for model in station.models:
                        models_ms[name].setdefault(model.name, []).append(model.describe()["latency_ms"])
        finally:
            for pool in pools.values():
                pool.shutdown()
            if publisher is not None:
                publisher.stop()
            store.close()
    return {"parts": parts, "rounds": PROBE_ROUNDS,
            **{name: {"per_s": float(np.median(rates[name])), "rounds_per_s": rates[name],
                      "models_ms": {model: float(np.median(values)) for model, values in models_ms[name].items()}}
               for name in rates if rates[name]}}


def alternate(client: LineClient, trigger: Trigger, models: Sequence[Path], images: Path, names: Sequence[str],
              rounds: int, parts: int, rate: float, precision: str, quiet_s: float) -> dict[str, Any]:
    """The station against its own per-part work, in the same minutes: ``rounds`` times, ``parts`` parts sent to
    the station at ``rate`` (above its capacity: the figure is its throughput), then the same number through
    ``PartInspector.inspect_part`` in this process, one after the other (what the station's request worker
    does, without broker, request or publisher). Equal figures say the line links cost nothing; the machine's
    drift moves both alike."""
    from defect_plugins.deploy.grading.rules import load_rules
    from defect_plugins.station.engine import Station
    from defect_plugins.station.line.links import mqtt_messages
    from defect_plugins.station.line.parts import ImageRoots, PartInspector
    from defect_plugins.station.store import Store

    pairs = []
    with tempfile.TemporaryDirectory(prefix="bench-line-alternate-") as tmp:
        store = Store(Path(tmp) / "station.sqlite")
        station = Station(list(models), load_rules(None), store, precision=precision, strict_rules=False)
        inspector = PartInspector(station, ImageRoots([images]), messages=mqtt_messages(f"{PREFIX}/alternate"))
        for number in range(3):
            inspector.inspect_part(f"warm-{number}", None, names[number % len(names)], origin="probe")
        for round_index in range(rounds):
            row = at_rate(client, trigger, names, parts, rate, f"a{round_index}", quiet_s)
            started = time.perf_counter()
            for number in range(parts):
                inspector.inspect_part(f"a{round_index}-{number:05d}", None, names[number % len(names)],
                                       origin="probe")
            pairs.append({"station_per_s": row["throughput_per_s"], "lost": row["lost"],
                          "in_process_per_s": parts / (time.perf_counter() - started)})
        store.close()
    return {"rounds": rounds, "parts": parts, "offered_per_s": rate, "pairs": pairs}


def streams_probe(models: Sequence[Path], images: Path, names: Sequence[str], parts: int,
                  precision: str) -> dict[str, Any]:
    """Images/s of decode + every model's ``DefectInferencer.predict`` per part, two ways, in this process.

    ``one_worker_latency``: one thread takes parts, each model compiled as the station compiles it (LATENCY
    hint: one stream on every core), the station with ``--line-workers 1``. ``workers_throughput``: one thread
    per core takes parts; each model is compiled once with the THROUGHPUT hint (OpenVINO's streams, as
    benchmark_app's limit is measured) with a request per thread, and a part starts every model before it
    collects the first (``Station.run_models`` with ``--line-workers`` above 1): while one part is in
    post-processing or the decoder, the other part's inference has its stream. Same parts, same code
    otherwise; the two alternate in :data:`PROBE_ROUNDS` rounds and each figure is the median of its rounds.
    """
    from concurrent.futures import ThreadPoolExecutor

    from defect_plugins.deploy.inferencer import DefectInferencer
    from defect_plugins.station.imaging import decode_upload

    cores = os.cpu_count() or 1
    data = [(images / name).read_bytes() for name in names]

    def load(hint: str, requests: int) -> list[Any]:
        return [DefectInferencer(xml, precision=precision, performance_hint=hint, max_requests=requests)
                for xml in models]

    def part(inferencers: list[Any], number: int, *, overlap: bool) -> None:
        image = decode_upload(data[number % len(data)], names[number % len(names)], max_pixels=50_000_000)
        if overlap:
            for job in [inferencer.start(image) for inferencer in inferencers]:
                job.result()
        else:
            for inferencer in inferencers:
                inferencer.predict(image)

    shared = load("LATENCY", 1)
    streamed = load("THROUGHPUT", cores)
    part(shared, 0, overlap=False)  # first inference allocates: not timed
    part(streamed, 0, overlap=True)

    latency, throughput = [], []
    with ThreadPoolExecutor(cores) as pool:
        for block in _rounds(parts):
            started = time.perf_counter()
            for number in range(block):
                part(shared, number, overlap=False)
            latency.append(block / (time.perf_counter() - started))
            started = time.perf_counter()
            list(pool.map(lambda number: part(streamed, number, overlap=True), range(block)))
            throughput.append(block / (time.perf_counter() - started))
    return {"parts": parts, "workers": cores, "rounds": PROBE_ROUNDS,
            "one_worker_latency_per_s": float(np.median(latency)), "one_worker_latency_rounds": latency,
            "workers_throughput_per_s": float(np.median(throughput)), "workers_throughput_rounds": throughput}


def hardware() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cpu_count": os.cpu_count(), "machine": platform.machine(), "system": platform.platform()}


def versions(broker: Broker) -> dict[str, str]:
    found = {"python": platform.python_version(), "mosquitto": broker.version()}
    for package in ("defect_plugins", "openvino", "paho-mqtt", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def synthetic_images(folder: Path, count: int = 8, size: int = 200) -> None:
    """Grey textured strips with one dark blob each (the size of a NEU-CLS image), as PNG."""
    import cv2

    rng = np.random.default_rng(0)
    for number in range(count):
        image = cv2.GaussianBlur(rng.normal(150, 6, (size, size)).astype(np.float32), (0, 0), 1.0)
        centre = tuple(int(c) for c in rng.integers(size // 3, 2 * size // 3, 2))
        cv2.circle(image, centre, int(rng.integers(size // 12, size // 7)), 60.0, -1)
        cv2.imwrite(str(folder / f"part{number}.png"), np.clip(image, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    figures: dict[str, Any] = {"command": command, "hardware": hardware(), "count": args.count,
                               "trigger": args.trigger,
                               "opcua_clients": args.clients if args.trigger == "opcua" else None,
                               "models": [str(m) for m in args.models], "precision": args.precision,
                               "load_average": {"start": os.getloadavg()}}
    meter = CpuMeter()
    limits = None if args.no_benchmark_app else benchmark_app_limits(args.models, args.precision, args.bench_seconds)
    figures["benchmark_app"] = limits
    limit = limits["limit_per_s"] if limits else None
    figures["load_average"]["before_station"] = os.getloadavg()
    figures["other_processes_cores"] = {"benchmark_app": meter.others()} if limits else {}
    meter = CpuMeter()
    rates = [rate.resolve(limit) for rate in args.rates]
    with tempfile.TemporaryDirectory(prefix="bench-line-") as tmp:
        folder = Path(tmp)
        images = args.images
        if images is None:
            images = folder / "camera"
            images.mkdir()
            synthetic_images(images)
        names = sorted(p.name for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        if not names:
            raise RuntimeError(f"{images}: no .png / .jpg / .bmp images")
        figures["images"] = {"folder": "synthetic 200x200 PNG" if args.images is None else str(images),
                             "files": len(names)}
        station_command: list[str] = []
        with Broker(folder) as broker:
            figures["versions"] = versions(broker)
            client = LineClient(broker.port, PREFIX)
            opcua_port = free_port() if args.trigger == "opcua" else None
            trigger: Trigger = client
            try:
                station_pid: list[int] = []
                station_log: list[str] = []
                with station(args.models, folder, images, broker.url, args.precision, station_command,
                             opcua_port, station_pid, station_log, args.line_workers) as url:
                    if opcua_port is not None:
                        trigger = OpcUaTrigger(f"opc.tcp://127.0.0.1:{opcua_port}/defect-station/", args.clients)
                    warm_up(client, trigger, names, args.warmup)
                    figures["single"] = single(client, trigger, names, args.single, args.drain_s)
                    figures["single"]["station_model_ms"] = model_medians(url)
                    print(f"single image: p50 {figures['single']['p50_ms']:.1f} ms, "
                          f"p99 {figures['single']['p99_ms']:.1f} ms", flush=True)
                    figures["rates"] = []
                    pids = {"station": station_pid[0], "broker": broker.process.pid, "bench": None}
                    for index, rate in enumerate(rates):
                        before, started = cpu_seconds(pids), time.monotonic()
                        row = at_rate(client, trigger, names, args.count, rate, f"r{index}", args.drain_s)
                        after, wall = cpu_seconds(pids), time.monotonic() - started
                        # cores each process kept busy while the rate ran (the bench: requester and consumer)
                        row["cores_used"] = {name: (after[name] - before[name]) / wall for name in pids}
                        row["station_model_ms"] = model_medians(url)
                        figures["rates"].append(row)
                        print(f"offered {rate:.1f}/s: {row['throughput_per_s'] or 0:.2f}/s, p50 "
                              f"{row['p50_ms'] or 0:.0f} ms, p99 {row['p99_ms'] or 0:.0f} ms, lost {row['lost']}",
                              flush=True)
                        time.sleep(1.0)  # the queue is empty: the next rate starts from rest
                    with urllib.request.urlopen(f"{url}api/status", timeout=30) as response:
                        status = json.loads(response.read())
                    figures["other_processes_cores"]["station"] = meter.others(
                        [station_pid[0], broker.process.pid])
                    figures["station_models"] = [{k: m.get(k) for k in ("name", "family", "precision", "inferences",
                                                                        "latency_ms")} for m in status["models"]]
                    if args.alternate:
                        figures["alternate"] = alternate(client, trigger, args.models, images, names, args.alternate,
                                                         args.alternate_parts, 2.0 * max(rates), args.precision,
                                                         args.drain_s)
                    if isinstance(trigger, OpcUaTrigger):
                        trigger.close()
                        figures["opcua_call_failures"] = trigger.failures
            finally:
                client.close()
            figures["errors_published"] = client.errors
            figures["station_command"] = " ".join(shlex.quote(part) for part in station_command)
            figures["station_log_tail"] = station_log
            figures["database"] = database_check(folder / "station.sqlite")
            recorded = recorded_parts(folder / "station.sqlite")
            for index, row in enumerate(figures["rates"]):
                # a part the station recorded whose verdict never reached the consumer: a lost message; a part it
                # never recorded did not reach the station (e.g. an OPC UA call that failed in the client)
                row["recorded"] = sum(part.startswith(f"r{index}-") for part in recorded)
                row["not_taken"] = row["sent"] - row["recorded"]
                row["lost_after_record"] = row["recorded"] - row["delivered"]
            if args.workers_probe:
                meter = CpuMeter()
                figures["inspector_probe"] = inspector_probe(args.models, images, names, args.workers_probe,
                                                             args.precision, broker.url)
                figures["other_processes_cores"]["inspector_probe"] = meter.others()
            if args.streams_probe:
                figures["streams_probe"] = streams_probe(args.models, images, names, args.streams_probe,
                                                         args.precision)
    figures["load_average"]["end"] = os.getloadavg()
    figures["targets"] = verdict_targets(figures["rates"], figures["single"]["p50_ms"], limit)
    if args.store_probe:
        figures["store_probe"] = store_probe(args.store_probe)
    return figures


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU time (user + system, s) so far of each named process; ``None``: this process (all its threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for name, pid in pids.items():
        if pid is None:
            seconds[name] = sum(os.times()[:2])
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[name] = (int(stat[11]) + int(stat[12])) / tick
        except (OSError, IndexError, ValueError):
            seconds[name] = math.nan
    return seconds


def model_medians(url: str) -> dict[str, float | None]:
    """Each model's median inferencer time in the station (``GET /api/status``: its last 100 inferences)."""
    with urllib.request.urlopen(f"{url}api/status", timeout=30) as response:
        return {model["name"]: model.get("latency_ms") for model in json.loads(response.read())["models"]}


def recorded_parts(path: Path) -> set[str]:
    """The part ids the station recorded."""
    with contextlib.closing(sqlite3.connect(str(path))) as conn:
        return {row[0] for row in conn.execute("SELECT part_id FROM inspections WHERE part_id IS NOT NULL")}


def database_check(path: Path) -> dict[str, int]:
    """What the station recorded: inspections and outbox messages, published or not (every one should be)."""
    with contextlib.closing(sqlite3.connect(str(path))) as conn:
        inspections = conn.execute("SELECT COUNT(*) FROM inspections WHERE part_id IS NOT NULL").fetchone()[0]
        published, pending = conn.execute("SELECT COALESCE(SUM(published_at IS NOT NULL), 0), "
                                          "COALESCE(SUM(published_at IS NULL), 0) FROM outbox").fetchone()
    return {"inspections": int(inspections), "outbox_published": int(published), "outbox_pending": int(pending)}


def _models_ms(row: dict[str, Any]) -> str:
    """The station's per-model medians over the rate's last 100 parts, and their sum."""
    values = [v for v in row.get("station_model_ms", {}).values() if v is not None]
    return " + ".join(f"{v:.1f}" for v in values) + f" = {sum(values):.1f}" if values else "-"


def report(figures: dict[str, Any]) -> str:
    """The table and the reading, as printed."""
    out = []
    hw, limits, targets = figures["hardware"], figures["benchmark_app"], figures["targets"]
    how = ("MQTT requests" if figures["trigger"] == "mqtt" else
           f"OPC UA Inspect calls from {figures['opcua_clients']} clients")
    out.append(f"defect-station line rate, {how}, {len(figures['models'])} model(s), {figures['count']} parts "
               f"per rate, {hw['cpu']} ({hw['cpu_count']} CPUs)")
    if limits:
        for row in limits["models"]:
            out.append(f"  benchmark_app {Path(row['model']).name} {row['input_size'][0]} px: "
                       f"{row['throughput_fps']:.1f} images/s (THROUGHPUT, "
                       f"{row['throughput_compiled']['NUM_STREAMS']} streams, "
                       f"{row['throughput_compiled']['INFERENCE_NUM_THREADS']} threads), "
                       f"{row['latency_median_ms']:.2f} ms (LATENCY, sync)")
        out.append(f"  limit 1/sum(1/Ti) = {limits['limit_per_s']:.2f} images/s; sequential limit 1000/sum(Li) = "
                   f"{limits['sequential_limit_per_s']:.2f} images/s")
    for model in figures.get("station_models", []):
        out.append(f"  station {model['name']}: inferencer median {model['latency_ms']} ms "
                   f"({model['inferences']} inferences)")
    single_row = figures["single"]
    out.append(f"  single image (one at a time, {single_row['delivered']} parts): p50 {single_row['p50_ms']:.1f} ms, "
               f"p99 {single_row['p99_ms']:.1f} ms; models in the station {_models_ms(single_row)} ms")
    out.append("")
    out.append("| offered /s | sent /s | throughput /s | of limit | p50 ms | p99 ms | lost (not taken) | duplicates "
               "| models in the station ms | cores: station / broker / bench |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    limit = limits["limit_per_s"] if limits else None
    for row in figures["rates"]:
        share = f"{100 * row['throughput_per_s'] / limit:.0f} %" if limit and row["throughput_per_s"] else "-"
        out.append(f"| {row['offered_per_s']:.1f} | {row['sent_per_s'] or 0:.1f} | {row['throughput_per_s'] or 0:.2f} "
                   f"| {share} | {row['p50_ms'] or 0:.0f} | {row['p99_ms'] or 0:.0f} "
                   f"| {row['lost_after_record']} ({row['not_taken']}) "
                   f"| {row['duplicates']} | {_models_ms(row)} | "
                   + " / ".join(f"{row['cores_used'][name]:.2f}" for name in ("station", "broker", "bench")) + " |")
    out.append("")
    knee = targets["latency_climbs_at_per_s"]
    if figures["trigger"] == "opcua":
        out.append("Inspect call p50 / p99 ms (what the PLC waits for): " + ", ".join(
            f"{row['call_p50_ms'] or 0:.0f} / {row['call_p99_ms'] or 0:.0f}" for row in [single_row, *figures["rates"]])
            + f" (single, then per rate); failed calls {len(figures.get('opcua_call_failures', []))}")
    out.append(f"latency climbs (p99 > {LATENCY_FACTOR:g} x single p50) from "
               f"{'no rate measured' if knee is None else f'{knee:.1f} images/s'}")
    if limit:
        out.append(f"sustained {targets['sustained_per_s']:.2f} images/s = {100 * targets['sustained_share']:.0f} % "
                   f"of the limit {limit:.2f} (target >= {100 * THROUGHPUT_SHARE:.0f} %, nothing lost): "
                   f"{'met' if targets['throughput_met'] else 'NOT met'}")
        p99 = targets["p99_at_80pct_ms"]
        out.append("p99 at 80 % of the limit: " + ("not measured (add 0.8x to --rates)" if p99 is None else
                   f"{p99:.0f} ms against {targets['p99_bound_ms']:.0f} ms: "
                   f"{'met' if targets['latency_met'] else 'NOT met'}"))
    pairs = figures.get("alternate", {}).get("pairs", [])
    if pairs:
        out.append("station / in-process images/s, alternating: " + ", ".join(
            f"{pair['station_per_s'] or 0:.2f} / {pair['in_process_per_s']:.2f}" for pair in pairs))
    streams = figures.get("streams_probe")
    if streams:
        out.append(f"in-process decode + predict, {streams['parts']} parts per variant in {streams['rounds']} "
                   f"alternating rounds, medians: one worker, LATENCY-compiled models "
                   f"{streams['one_worker_latency_per_s']:.2f} images/s; {streams['workers']} workers, THROUGHPUT-"
                   f"compiled models {streams['workers_throughput_per_s']:.2f} images/s")
    db = figures["database"]
    others = figures["other_processes_cores"]
    out.append("other processes used " + ", ".join(f"{cores:.2f} cores during {phase}" for phase, cores in
                                                    others.items()) + f" (of {hw['cpu_count']})")
    probe = figures.get("inspector_probe")
    if probe:
        out.append(f"in-process PartInspector.inspect_part, {probe['parts']} parts per variant in {probe['rounds']} "
                   f"alternating rounds, median images/s (models ms):")
        for name, _, _ in PROBE_VARIANTS:
            if name in probe:
                models_ms = " + ".join(f"{v:.1f}" for v in probe[name]["models_ms"].values())
                out.append(f"  {name.replace('_', ' ')}: {probe[name]['per_s']:.2f} ({models_ms})")
    out.append(f"database: {db['inspections']} inspections, {db['outbox_published']} messages published, "
               f"{db['outbox_pending']} pending; error answers {len(figures['errors_published'])}")
    probe = figures.get("store_probe")
    if probe:
        full, normal = probe["FULL"]["per_verdict_mean_ms"], probe["NORMAL"]["per_verdict_mean_ms"]
        out.append(f"SQLite per verdict (record + mark, {probe['verdicts']} verdicts): synchronous=FULL {full:.2f} ms, "
                   f"NORMAL {normal:.2f} ms")
        beside = probe["FULL_beside_publisher"]
        out.append(f"the record with the publisher's marks beside it: p50 {beside['record_p50_ms']:.2f} ms, "
                   f"p99 {beside['record_p99_ms']:.2f} ms, mean {beside['record_mean_ms']:.2f} ms "
                   f"(alone: p50 {probe['FULL']['record_p50_ms']:.2f} ms)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", dest="models", action="append", type=Path, required=True, help="model.xml (repeat)")
    parser.add_argument("--line-workers", type=int, default=1,
                        help="the station's --line-workers (default 1: one part at a time; 0: OpenVINO's choice)")
    parser.add_argument("--images", type=Path, help="folder of part images (default: 8 synthetic 200x200 PNGs)")
    parser.add_argument("--count", type=int, default=150, help="parts per rate (default 150)")
    parser.add_argument("--rates", type=parse_rates, default=parse_rates("0.5x,0.8x,1.0x,1.2x"),
                        help="offered rates, images/s or a share of benchmark_app's limit such as 0.8x "
                             "(default 0.5x,0.8x,1.0x,1.2x)")
    parser.add_argument("--trigger", choices=("mqtt", "opcua"), default="mqtt",
                        help="how parts are triggered: MQTT requests (default) or OPC UA Inspect calls")
    parser.add_argument("--clients", type=int, default=4, help="--trigger opcua: concurrent OPC UA clients (4)")
    parser.add_argument("--single", type=int, default=20, help="parts for the single-image latency (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="parts before timing (default 3)")
    parser.add_argument("--precision", default="f32", help="the station's --precision (default f32)")
    parser.add_argument("--bench-seconds", type=float, default=5.0, help="benchmark_app run per IR and hint (s)")
    parser.add_argument("--no-benchmark-app", action="store_true", help="skip benchmark_app (no limit, no 'x' rates)")
    parser.add_argument("--drain-s", type=float, default=20.0,
                        help="a part is lost when no verdict arrived for this long after the last (default 20 s)")
    parser.add_argument("--store-probe", type=int, default=200,
                        help="verdicts for the SQLite timing (default 200; 0: skip)")
    parser.add_argument("--workers-probe", type=int, default=60,
                        help="parts for the in-process probe of 1 and 2 threads taking parts (default 60; 0: skip)")
    parser.add_argument("--streams-probe", type=int, default=60,
                        help="parts for the in-process probe of one worker with LATENCY-compiled models against one "
                             "worker per core with THROUGHPUT-compiled models (default 60; 0: skip)")
    parser.add_argument("--alternate", type=int, default=0, metavar="ROUNDS",
                        help="after the rates, alternate station bursts (at twice the highest rate) with the same "
                             "per-part work in this process, ROUNDS times (default 0: skip)")
    parser.add_argument("--alternate-parts", type=int, default=50, help="parts per burst of --alternate (50)")
    parser.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)
    if args.count < 2 or args.single < 1 or args.warmup < 1 or args.clients < 1:
        parser.error("need --count >= 2, --single >= 1, --warmup >= 1, --clients >= 1")
    missing = [str(m) for m in args.models if not m.is_file()]
    if missing:
        parser.error(f"model not found: {', '.join(missing)}")
    if args.no_benchmark_app and any(rate.relative for rate in args.rates):
        parser.error("rates written as a share of the limit (0.8x) need benchmark_app")
    command = " ".join(shlex.quote(part) for part in ["python", "experiments/station/bench_line.py",
                                                      *(sys.argv[1:] if argv is None else argv)])
    figures = run(args, command)
    print(report(figures))
    if args.out:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.out, figures, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
