"""The station's line links from its command line: part triggers in, verdicts out, started and stopped together.

:class:`LineLinks` builds what the options ask for and nothing more:

* ``--image-root DIR`` (repeatable; the watched folder counts too): the folders a trigger's ``image_path``
  may name (:class:`.parts.ImageRoots`);
* ``--mqtt URL`` (:mod:`.mqtt`): the outbox publisher (every verdict's message, written with its record) and
  the request subscriber (``PREFIX/request`` -> :meth:`.parts.PartInspector.inspect_part`);
* ``--opcua-port PORT`` (:mod:`.opcua`): the server whose ``Inspect`` method is a trigger and whose
  variables show every verdict, from whichever input; logins are the station's accounts;
* ``--watch DIR --watch-pattern REGEX`` (:mod:`.folder`): each new image is a part named by its file.

Every verdict, whatever its input, reaches every link: the publisher is woken (its message is already
in the outbox) and the OPC UA variables are updated. Uploads on the engineer's page are not line parts:
they are recorded, not published.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .parts import ImageRoots, PartInspector

log = logging.getLogger("defect_plugins.station.line")


def add_line_arguments(parser: argparse.ArgumentParser) -> None:
    """``--line``, ``--image-root``, ``--watch-pattern``, ``--shifts`` and the MQTT and OPC UA options."""
    from .mqtt import add_mqtt_arguments
    from .opcua import add_opcua_arguments
    from .shift import DEFAULT_SHIFTS

    group = parser.add_argument_group("production line (part triggers with an identity, verdicts to the PLC)")
    group.add_argument("--line", default="line1", metavar="NAME",
                       help="the line's name: the line page's title and the OPC UA object Line_NAME (default line1)")
    group.add_argument("--image-root", action="append", type=Path, default=[], metavar="DIR",
                       help="a folder the line's triggers may name images in (repeatable; --watch counts too); "
                            "an image_path outside them is refused with an ERROR verdict")
    group.add_argument("--watch-pattern", metavar="REGEX",
                       help="make --watch a line trigger: each new image is a part, its id and lot read from the "
                            "file name by REGEX with the groups (?P<part_id>...) and optionally (?P<lot>...)")
    group.add_argument("--line-workers", type=int, default=1, metavar="N",
                       help="parts inspected at once (default 1: one part at a time, LATENCY-compiled models; "
                            "N > 1: THROUGHPUT-compiled models with a request per part; 0: OpenVINO's optimal "
                            "number of requests, one per stream)")
    group.add_argument("--shifts", default=DEFAULT_SHIFTS, metavar="HH:MM,...",
                       help=f"shift start times for the line page's counters (default {DEFAULT_SHIFTS})")
    add_mqtt_arguments(parser)
    add_opcua_arguments(parser)


def mqtt_messages(topic: str, drift_topic: str | None = None, *, line: str | None = None,
                  station: str | None = None) -> Callable[[dict[str, Any]], list[tuple[str, str, str]]]:
    """The outbox rows of one verdict (:func:`.mqtt.verdict_message` on ``topic``) and of the drift changes
    its part caused (:func:`.mqtt.drift_message` on ``drift_topic``)."""
    from .mqtt import CHANNEL, drift_message, verdict_message

    def messages(verdict: dict[str, Any]) -> list[tuple[str, str, str]]:
        rows = [(CHANNEL, topic, verdict_message(
            inspection_id=verdict["inspection_id"], part_id=verdict["part_id"], lot=verdict["lot"],
            verdict=verdict["verdict"], grade=verdict["grade"], class_name=verdict["class"],
            scores=verdict["scores"], versions=verdict["models"], timestamp=verdict["at"], error=verdict["error"]))]
        if drift_topic is not None:
            rows += [(CHANNEL, drift_topic, drift_message(change, inspection_id=verdict["inspection_id"],
                                                          timestamp=verdict["at"], line=line, station=station))
                     for change in verdict.get("drift_changes") or []]
        return rows

    return messages


class LineLinks:
    """The parts of the line the options ask for, around ``station`` (an :class:`..engine.Station`)."""

    def __init__(self, station: Any, args: argparse.Namespace, *,  # noqa: ANN401
                 authenticate: Callable[[str, str], bool] | None) -> None:
        from . import mqtt, opcua
        from .folder import FolderTrigger, compile_pattern
        from .shift import parse_shifts

        self.line = args.line
        self.shifts = parse_shifts(args.shifts)
        roots = list(args.image_root) + ([station.watch] if station.watch else [])
        self.mqtt_settings = mqtt.settings_from_args(args)
        # the OPC UA certificates go next to an SQLite --db; with a database URL, into the working folder
        db = args.db if isinstance(args.db, Path) else Path("station")
        self.opcua_settings = opcua.settings_from_args(args, db=db, line=args.line)
        messages = (mqtt_messages(self.mqtt_settings.verdict_topic, self.mqtt_settings.drift_topic, line=args.line,
                                  station=getattr(station.store, "station", None))
                    if self.mqtt_settings else None)
        self.inspector = PartInspector(station, ImageRoots(roots), messages=messages)
        self.publisher = mqtt.OutboxPublisher(self.mqtt_settings, station.store) if self.mqtt_settings else None
        self.subscriber = (mqtt.RequestSubscriber(self.mqtt_settings, self.inspector.inspect_part,
                                                  workers=station.workers) if self.mqtt_settings else None)
        self.opcua = None
        if self.opcua_settings:
            self.opcua = opcua.OpcUaServer(
                self.inspector.inspect_part, authenticate, cert_dir=self.opcua_settings.cert_dir, host=args.host,
                port=self.opcua_settings.port, line=self.line, insecure=self.opcua_settings.insecure,
                trusted_clients_dir=self.opcua_settings.trusted_clients_dir, workers=station.workers,
                model_version=", ".join(f"{m.name} {m.version}" for m in station.models))
        self.folder = None
        if args.watch_pattern:
            if station.watch_folder is None:
                raise ValueError("--watch-pattern needs --watch DIR (the folder the camera writes into)")
            self.folder = FolderTrigger(station.watch_folder, compile_pattern(args.watch_pattern), self.inspector)
        if self.publisher is not None:
            self.inspector.add_listener(lambda verdict: self.publisher.notify())
        if self.opcua is not None:
            self.inspector.add_listener(self.opcua.publish)

    @property
    def active(self) -> bool:
        return any(link is not None for link in (self.publisher, self.opcua, self.folder))

    def start(self) -> list[str]:
        """Start every link; the lines the command line prints (endpoints, warnings)."""
        lines = []
        if self.publisher is not None:
            self.publisher.start()
            self.subscriber.start()
            lines.append(f"  MQTT: {self.mqtt_settings.url}, verdicts to {self.mqtt_settings.verdict_topic}, "
                         f"requests on {self.mqtt_settings.request_topic}")
        if self.opcua is not None:
            self.opcua.start()
            lines.append(f"  OPC UA: {self.opcua.endpoint} (object Line_{self.line}), server certificate "
                         f"thumbprint {self.opcua.thumbprint}")
            lines += [f"WARNING: {warning}" for warning in self.opcua.warnings()]
        if self.folder is not None:
            self.folder.start()
            lines.append(f"  watched folder {self.folder.folder.folder}: each new image is a part "
                         f"(pattern {self.folder.pattern.pattern})")
        if self.inspector.roots.folders:
            lines.append("  line images from: " + ", ".join(str(f) for f in self.inspector.roots.folders))
        return lines

    def stop(self) -> None:
        """Stop the inputs first (no new parts), then the outputs (the publisher sends what it can)."""
        for name, link in (("folder", self.folder), ("mqtt requests", self.subscriber), ("opcua", self.opcua),
                           ("mqtt verdicts", self.publisher)):
            if link is None:
                continue
            try:
                link.stop()
            except Exception:  # stopping one link must not keep the others running
                log.exception("stopping the %s link failed", name)

    def state(self) -> dict[str, str]:
        """One line of text per link for the pages."""
        links = {}
        if self.publisher is not None:
            state = self.publisher.state()
            links["MQTT"] = (("connected" if state.get("connected") else "NOT connected") +
                             f", {state.get('pending', 0)} waiting" +
                             (f", last error: {state['last_error']}" if state.get("last_error") else ""))
        if self.opcua is not None:
            links["OPC UA"] = f"{self.opcua.endpoint} ({'running' if self.opcua.running else 'stopped'})"
        if self.folder is not None:
            links["folder"] = f"{self.folder.handled} images taken"
        return links
