"""Results to the plant's message bus: each result line, and the health report, published over
MQTT (``vigil score ... --mqtt mqtt://HOST:PORT/TOPIC``).

Publishing never blocks scoring: lines go to the client's bounded queue and a network thread sends
them with QoS 1 (at least once: kept until the broker acknowledges them, sent again after a
reconnect). When the broker is gone the queue fills up to ``buffer`` messages (result lines: of
the health reports only the latest is kept, apart); past that, new lines
are dropped and counted, never waited for. The client reconnects on its own with backoff.

Needs the ``paho-mqtt`` package (``pip install 'vigil-edge[mqtt]'``); nothing else of the runtime
does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

from .output import strict_json
from .redact import redact
from .report import MissingDependency

log = logging.getLogger("vigil")

DEFAULT_BUFFER = 10_000
MAX_BUFFER = 65_534  # packet identifiers are 16-bit: more would collide in paho's queue (one
# slot beyond the buffer is kept for a health report)
HEALTH_SUFFIX = "/health"
# seconds between MQTT pings: a broker declares a silent client gone (and publishes its last
# will, the "lost" health report) after 1.5 times this; a killed process's socket closes at once
KEEPALIVE_S = 30
# the password of mqtt://USER@HOST/...: an environment variable (a systemd EnvironmentFile), not
# the URL, whose password any user of the machine can read in the process list
PASSWORD_VARIABLE = "VIGIL_MQTT_PASSWORD"


@dataclass(frozen=True)
class MqttTarget:
    """Where to publish: ``mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC`` (``mqtts://`` for TLS;
    with a user and no password, the password is ``$VIGIL_MQTT_PASSWORD``)."""

    host: str
    port: int
    topic: str
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def health_topic(self) -> str:
        return self.topic + HEALTH_SUFFIX

    @classmethod
    def parse(cls, url: str) -> "MqttTarget":
        example = "mqtt://HOST:PORT/TOPIC, e.g. mqtt://127.0.0.1:1883/line1/vigil"
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"`mqtt` must be a URL like {example}; received {redact(url)!r} (scheme "
                             f"{parts.scheme or 'missing'!r}, expected mqtt or mqtts)")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"`mqtt` {redact(url)!r} has a port that is not a number 0-65535; expected "
                             f"{example}") from None
        topic = unquote(parts.path.lstrip("/"))
        if parts.fragment or parts.query or url.endswith(("#", "?")):
            topic += "#"  # a URL ends its path at # or ?: refused below with the wildcards
        if not parts.hostname:
            raise ValueError(f"`mqtt` {redact(url)!r} names no host; expected {example}")
        if port == 0:
            raise ValueError(f"`mqtt` {redact(url)!r} names port 0, which no broker listens on; give the "
                             f"broker's port (1883, 8883 for mqtts) or none; expected {example}")
        if not topic or any(c in topic for c in "+#\0"):
            raise ValueError(f"`mqtt` {redact(url)!r} needs a topic to publish to, without the wildcards "
                             f"+ and #; expected {example}")
        password = unquote(parts.password) if parts.password else None
        if parts.username and password is None:
            # kept off the command line, which `ps` and `systemctl status` show to everyone
            password = os.environ.get(PASSWORD_VARIABLE) or None
        return cls(parts.hostname, port or (8883 if parts.scheme == "mqtts" else 1883), topic,
                   parts.scheme == "mqtts", unquote(parts.username) if parts.username else None,
                   password)

    def __str__(self) -> str:  # never the password
        return f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}/{self.topic}"


class MqttPublisher:
    """Publishes result lines to ``target.topic`` and health reports (retained) to
    ``target.topic + '/health'``, QoS 1, from a network thread of its own.

    Args:
        target: where to publish.
        buffer: messages kept while they wait for the broker (sent or not yet acknowledged);
            past that, new ones are dropped and counted.
        client_id: the MQTT client id (default: ``vigil-`` and a random suffix).
        source: what the scorer reads (its address with credentials hidden), named in the last
            will, so that a will on a topic that several scorers share by mistake says whose
            it is (review r5: it named a pid and a host alone).
    """

    def __init__(self, target: MqttTarget, buffer: int = DEFAULT_BUFFER,
                 client_id: str | None = None, source: str | None = None) -> None:
        if (isinstance(buffer, bool) or not isinstance(buffer, int)
                or not 1 <= buffer <= MAX_BUFFER):
            raise ValueError(f"`mqtt_buffer` must be a number of messages from 1 to {MAX_BUFFER} "
                             f"(MQTT numbers a client's messages in flight in 16 bits); received "
                             f"{buffer!r}")
        try:
            import paho.mqtt.client as paho
        except ImportError:
            raise MissingDependency("--mqtt needs the paho-mqtt package, which is not installed: "
                                    "pip install 'vigil-edge[mqtt]'") from None
        self.target, self.buffer = target, buffer
        self._paho = paho
        self._lock = threading.Lock()
        self.published = self.acknowledged = self.dropped = 0
        self.connections = 0
        self.connected = False
        self.last_error: str | None = None
        self._client_id = client_id  # given by the user (None: a random one)
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"vigil-{uuid.uuid4().hex[:12]}")
        # one slot beyond the results': a health report (the will's replacement after an outage)
        # always finds room, since paho frees an acknowledged message's slot only after the
        # acknowledgement's callback (where a held report is sent)
        self._client.max_queued_messages_set(buffer + 1)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        if target.username is not None:
            self._client.username_pw_set(target.username, target.password)
        if target.tls:
            self._client.tls_set()
        # The broker publishes this, retained, where the connection ends without a goodbye (the
        # process killed, the device's power or network lost): a dashboard then sees the
        # scorer lost, not its last "running" report for ever. A clean end sends its own report.
        self._client.will_set(target.health_topic, strict_json({
            "status": "lost", "pid": os.getpid(), "host": socket.gethostname(), "source": source,
            "reason": "the broker lost this scorer's connection without a goodbye: the process "
                      "was killed or crashed, or the device lost power or its network"}),
            qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._full = False  # the buffer is full now (warned once per time it fills)
        self._held_health: str | None = None  # the latest health report while disconnected
        self._last_health: str | None = None  # the latest health report
        self._client.on_publish = self._on_publish
        self._started = False
        # lines published before the first connection, in order (None once it is made): paho
        # sends what it holds only after the connection's callback, so a line published in
        # that instant went out first (1 run of 60 on a loaded machine had lines out of order)
        self._before_connecting: deque[tuple[str, str, bool]] | None = deque()

    def start(self) -> "MqttPublisher":
        """Begin connecting in the background; results published before the broker answers wait
        in the buffer."""
        self._client.connect_async(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        self._started = True
        return self

    def publish_line(self, line: str) -> None:
        """Publish one result line (never blocks; dropped and counted when the buffer is full)."""
        self._publish(self.target.topic, line.rstrip("\n"), retain=False)

    def publish_health(self, report: dict) -> None:
        """Publish a health report, retained, so a dashboard that connects later sees the last.
        While the broker is away only the latest report is kept, outside the buffer, and sent
        once it is back: reports that a later one replaces never take a result line's place."""
        payload = strict_json(report)  # a dashboard parses it: RFC 8259 only
        with self._lock:
            self._last_health = payload  # sent again at each reconnect (a will may stand there)
            if not self.connected:
                self._held_health = payload
                return
        self._send_health(payload)

    def _send_health(self, payload: str) -> None:
        """Publish a health report, retained; where the buffer is full of result lines (a
        reconnect after an outage) it is held, never dropped, and sent as soon as the broker
        acknowledges a message: the will's "lost" must not stand over a scorer that is back."""
        try:
            info = self._client.publish(self.target.health_topic, payload, qos=1, retain=True)
        except Exception as error:  # publishing must never take scoring down
            with self._lock:
                self.last_error = f"publish to {self.target.health_topic!r} failed: {error}"
            return
        with self._lock:
            if info.rc == self._paho.MQTT_ERR_QUEUE_SIZE:
                self._held_health = self._last_health or payload  # the latest, when room is made
            else:
                self.published += 1
                self._held_health = None  # the latest is on its way

    def _publish(self, topic: str, payload: str, retain: bool) -> None:
        with self._lock:
            full = self.published - self.acknowledged >= self.buffer  # (the rest is health's)
            if not full and self._before_connecting is not None:
                self._before_connecting.append((topic, payload, retain))  # sent at connection
                self._count_published()  # with the line held: pending never goes below 0
                return
        try:
            info = (SimpleNamespace(rc=self._paho.MQTT_ERR_QUEUE_SIZE) if full
                    else self._client.publish(topic, payload, qos=1, retain=retain))
        except Exception as error:  # publishing must never take scoring down
            with self._lock:
                self.dropped += 1
                self.last_error = f"publish to {topic!r} failed: {error}"
            return
        with self._lock:
            if info.rc == self._paho.MQTT_ERR_QUEUE_SIZE:
                self.dropped += 1
                if not self._full:  # each time it fills, not only the first
                    log.warning("MQTT buffer of %d messages is full (broker %s unreachable?): "
                                "new results are dropped and counted until it drains (%d "
                                "dropped so far)", self.buffer, self.target, self.dropped)
                self._full = True
            else:
                self._count_published()

    def _count_published(self) -> None:
        """Count a result line handed on (under ``_lock``)."""
        self.published += 1
        if self._full and self.published - self.acknowledged <= self.buffer // 2:
            self._full = False  # drained: the next time it fills is warned again

    def pending(self) -> int:
        """Messages published here that the broker has not acknowledged yet."""
        with self._lock:
            return self.published - self.acknowledged

    def stats(self) -> dict:
        """For the summary and the health report."""
        with self._lock:
            return {"broker": str(self.target), "connected": self.connected,
                    "published": self.published, "acknowledged": self.acknowledged,
                    "pending": self.published - self.acknowledged, "dropped": self.dropped,
                    "connections": self.connections, "last_error": self.last_error}

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait up to ``timeout_s`` for the broker to acknowledge what is pending."""
        if self._started:
            deadline = time.monotonic() + timeout_s
            while self.pending() and time.monotonic() < deadline:
                time.sleep(0.05)

    def close(self, timeout_s: float = 10.0) -> dict:
        """Wait up to ``timeout_s`` for the broker to acknowledge what is pending, then
        disconnect; returns the final ``stats()``."""
        if self._started:
            self.drain(timeout_s)
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        stats = self.stats()
        if stats["pending"]:
            log.warning("MQTT: %d messages were not acknowledged by %s before the run ended%s",
                        stats["pending"], self.target,
                        f" ({stats['last_error']})" if stats["last_error"] else "")
        return stats

    # paho's callbacks, on its network thread

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            if reason_code.is_failure:
                first = self.last_error is None or "refused the connection" not in self.last_error
                self.last_error = (f"broker {self.target} refused the connection: {reason_code} "
                                   f"(check the user name and password in --mqtt, and the "
                                   f"broker's access rules for this client); retrying, results "
                                   f"wait in the buffer")
                if first:  # said once, not at each retry
                    log.warning("MQTT: %s", self.last_error)
                return
            self.connected = True
            self.connections += 1
            if self.last_error and self.last_error.startswith("cannot reach the broker"):
                self.last_error = None  # reached now
            again = self.connections > 1
            held, self._held_health = self._held_health, None
            if held is None and again:
                # the broker may have published the will when the connection broke: the
                # latest report replaces it at once, not at the next interval
                held = self._last_health
        self._send_lines_held()
        if held is not None:  # the latest report while it was away
            self._send_health(held)
        if again:
            log.info("MQTT: reconnected to %s", self.target)

    def _send_lines_held(self) -> None:
        """Hand paho the lines published before the first connection, in order (on its network
        thread, in the connection's callback); lines published after them go to paho directly."""
        while True:
            with self._lock:
                if not self._before_connecting:  # none held, or all sent: lines go direct now
                    self._before_connecting = None
                    return
                held = list(self._before_connecting)
                self._before_connecting.clear()
            for topic, payload, retain in held:
                try:
                    failed = self._client.publish(topic, payload, qos=1, retain=retain).rc \
                        == self._paho.MQTT_ERR_QUEUE_SIZE
                    why = "paho's queue was full"
                except Exception as error:  # publishing must never take scoring down
                    failed, why = True, f"{error}"
                if failed:
                    with self._lock:
                        self.published -= 1
                        self.dropped += 1
                        self.last_error = f"publish to {topic!r} failed: {why}"

    def _on_connect_fail(self, client, userdata) -> None:
        why = _unreachable_reason(self.target.host, self.target.port, self.target.tls)
        with self._lock:
            first = self.last_error is None or not self.last_error.startswith("cannot reach")
            self.last_error = (f"cannot reach the broker {self.target} ({why}); retrying, "
                               f"results wait in the buffer")
        if first:  # said once per outage, not at each retry
            log.warning("MQTT: %s", self.last_error)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was = self.connected
            self.connected = False
            refused = self.last_error is not None and "refused the connection" in self.last_error
            if reason_code.is_failure and (was or not refused):  # a refusal's reason stays
                self.last_error = f"lost the broker {self.target}: {reason_code}"
        if was and reason_code.is_failure:
            # a broker closes the older of two connections with one client id, and the two then
            # take turns, each lost every few seconds "(Unspecified error)" (review r5)
            shared = (f"; if another client connects with the client id {self._client_id!r}, "
                      f"the broker drops one of the two at each connection: give each scorer "
                      f"its own --mqtt-client-id" if self._client_id is not None else "")
            log.warning("MQTT: lost %s (%s); reconnecting, results wait in the buffer%s",
                        self.target, reason_code, shared)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self.acknowledged += 1
            held = self._held_health if self.connected else None  # room for a held report
            if held is not None:
                self._held_health = None
        if held is not None:
            self._send_health(held)


def _unreachable_reason(host: str, port: int, tls: bool) -> str:
    """Why a connection to ``host:port`` failed, as far as a name lookup can tell (paho says
    nothing): a name that does not resolve, or an address that refused, timed out or (with
    TLS) failed the handshake."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return f"the name {host!r} does not resolve: {error}"
    return ("refused, timed out, or the TLS handshake failed: is it an mqtts:// listener?"
            if tls else "refused or timed out")
