"""The station's link to the production line (PLC / MES).

:mod:`.parts`: a trigger (part id, lot, image) -> one recorded verdict, told to every link; :mod:`.links`: the
links the command line asks for; :mod:`.opcua`: the OPC UA server (asyncua); :mod:`.folder`: the camera's folder
as a trigger; :mod:`.shift`: the line page's counters.
:mod:`.mqtt`: the settings (``--mqtt mqtt://HOST:PORT`` and friends), the verdict payload,
:class:`~.mqtt.OutboxPublisher` (drains the store's outbox to the broker in order, at least once) and
:class:`~.mqtt.RequestSubscriber` (inspection requests in, malformed ones answered on the error topic); the
standard library and paho-mqtt only. Its names are importable from here; they are loaded on first use, so
that importing another module of this package does not import paho.
"""
from __future__ import annotations

from typing import Any

_MQTT = (
    "CHANNEL",
    "PASSWORD_ENV",
    "InspectionRequest",
    "MqttConfigError",
    "MqttSettings",
    "OutboxPublisher",
    "RequestError",
    "RequestSubscriber",
    "add_mqtt_arguments",
    "check_prefix",
    "parse_mqtt_url",
    "parse_request",
    "settings_from_args",
    "settings_from_options",
    "verdict_message",
    "verdict_messages",
)
__all__ = list(_MQTT)


def __getattr__(name: str) -> Any:  # PEP 562: the MQTT names, imported when first asked for
    if name in _MQTT:
        from . import mqtt

        return getattr(mqtt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
