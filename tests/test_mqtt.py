"""Results to the plant over MQTT, against a real broker (Debian's Mosquitto, started here on
127.0.0.1 and stopped after): every line arrives, a broker restart loses nothing within the
buffer, a missing broker never blocks scoring and what it drops is counted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from vigil.cli import commands as cli

from conftest import require  # noqa: E402

paho = require("paho.mqtt.client")

from vigil.runtime.core.mqtt import MqttPublisher, MqttTarget  # noqa: E402

TOPIC = "plant/line1/vigil"


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)
    if found is None:
        reason = "Mosquitto is not installed (apt-get install mosquitto); .ci/run installs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A Mosquitto on 127.0.0.1 with persistence, so subscribers' sessions survive a restart."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                               f"persistence true\npersistence_location {folder}/\n"
                               # Mosquitto drops QoS 1 messages beyond 1,000 queued for a
                               # subscriber by default; a subscriber slowed by a busy CI machine
                               # then misses some of the 1,500 lines a test publishes at once.
                               "max_queued_messages 0\n"
                               "log_dest none\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([_mosquitto(), "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # it saves its persistence file on the way out
            self.process.wait(timeout=10)
        self.process = None

    def url(self, topic: str = TOPIC) -> str:
        return f"mqtt://127.0.0.1:{self.port}/{topic}"


@pytest.fixture
def broker(tmp_path):
    running = Broker(tmp_path / "broker")
    running.start()
    yield running
    running.stop()


class Subscriber:
    """A persistent-session QoS 1 subscriber that keeps every payload per topic, in order."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.received: dict[str, list[str]] = {}
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-subscriber",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._keep
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the subscription was not confirmed"

    def _keep(self, client, userdata, message) -> None:
        self.received.setdefault(message.topic, []).append(message.payload.decode())

    def wait_for(self, topic: str, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.received.get(topic, [])) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received.get(topic, [])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_score_publishes_every_result_line_and_the_health_report(broker, sensor_artifacts,
                                                                 tmp_path, capsys):
    subscriber = Subscriber(broker, TOPIC + "/#")
    try:
        out = tmp_path / "scores.jsonl"
        assert cli.main(["score", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                         "--jsonl", str(out), "--mqtt", broker.url(),
                         "--health", str(tmp_path / "health.json")]) == 0
        lines = out.read_text().splitlines()
        received = subscriber.wait_for(TOPIC, len(lines))
        assert received == lines  # every line, in order, as written to the file
        health = json.loads(subscriber.wait_for(TOPIC + "/health", 1)[-1])
        assert health["status"] == "stopped" and health["mqtt"]["broker"] == broker.url()
        # the final report is written again once the broker acknowledged the results: every
        # result line counted as acknowledged (it said them pending while in flight)
        final = json.loads((tmp_path / "health.json").read_text())
        assert final["status"] == "stopped" and final["mqtt"]["pending"] == 0
        assert final["mqtt"]["acknowledged"] >= len(lines)
    finally:
        subscriber.close()
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["mqtt"]["dropped"] == 0 and summary["mqtt"]["pending"] == 0
    # every line plus the health reports (at the start and at the end), all acknowledged
    assert summary["mqtt"]["acknowledged"] == summary["mqtt"]["published"] >= len(lines) + 2


def test_a_killed_scorer_is_reported_lost_on_its_health_topic(broker, tmp_path):
    """After kill -9 (or the OOM killer, a power cut), the retained health report said "running"
    for ever to a dashboard reading MQTT (a review). The broker now publishes the scorer's last
    will, retained: status "lost"."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "publisher.py"
    script.write_text(
        "import sys, time\n"
        "from vigil.runtime.core.mqtt import MqttPublisher, MqttTarget\n"
        "p = MqttPublisher(MqttTarget.parse(sys.argv[1]), source='rtsp://cam-4/s').start()\n"
        "deadline = time.monotonic() + 10\n"
        "while not p.connected and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "p.publish_health({'status': 'running'})\n"
        "p.drain(10)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, str(script), broker.url()], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        subscriber = Subscriber(broker, TOPIC + "/health")  # a dashboard connecting later
        try:
            deadline = time.monotonic() + 20
            reports: list[dict] = []
            while time.monotonic() < deadline:
                reports = [json.loads(r) for r in subscriber.received.get(TOPIC + "/health", [])]
                if reports and reports[-1]["status"] == "lost":
                    break
                time.sleep(0.1)
        finally:
            subscriber.close()
    finally:
        if child.poll() is None:
            child.kill()
    assert reports and reports[-1]["status"] == "lost" and reports[-1]["pid"] == child.pid
    assert "without a goodbye" in reports[-1]["reason"]
    assert reports[-1]["source"] == "rtsp://cam-4/s"  # whose will, on a topic shared by mistake


def test_a_reconnect_replaces_a_standing_lost_report_with_the_latest_at_once(broker):
    """The broker publishes the will when a connection breaks, even if the scorer reconnects:
    the retained report then said "lost" until the next interval (a review: 30 s)."""
    publisher = MqttPublisher(MqttTarget.parse(broker.url()), buffer=100).start()
    try:
        deadline = time.monotonic() + 10
        while not publisher.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        publisher.publish_health({"status": "running", "rows_in": 7})
        publisher.drain(10)
        other = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="will-stand-in")
        other.connect("127.0.0.1", broker.port)
        other.loop_start()
        other.publish(TOPIC + "/health", json.dumps({"status": "lost"}), qos=1,
                      retain=True).wait_for_publish(10)
        other.disconnect()
        other.loop_stop()
        broker.stop()
        broker.start()  # the publisher reconnects
        deadline = time.monotonic() + 20
        while publisher.stats()["connections"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        publisher.drain(10)
        subscriber = Subscriber(broker, TOPIC + "/health")  # a dashboard connecting now
        try:
            reports = subscriber.wait_for(TOPIC + "/health", 1)
        finally:
            subscriber.close()
    finally:
        publisher.close(timeout_s=5)
    assert reports and json.loads(reports[-1]) == {"status": "running", "rows_in": 7}


def test_a_broker_restart_mid_run_loses_nothing_within_the_buffer(broker):
    subscriber = Subscriber(broker, TOPIC)
    publisher = MqttPublisher(MqttTarget.parse(broker.url()), buffer=1000).start()
    sent = [json.dumps({"index": i, "score": i / 10}) for i in range(300)]
    try:
        for line in sent[:100]:
            publisher.publish_line(line)
        assert subscriber.wait_for(TOPIC, 100)[:100] == sent[:100]
        broker.stop()
        for line in sent[100:200]:  # the broker is gone: these wait in the buffer
            publisher.publish_line(line)
        time.sleep(0.5)
        broker.start()
        for line in sent[200:]:
            publisher.publish_line(line)
        stats = publisher.close(timeout_s=20)
        received = subscriber.wait_for(TOPIC, len(sent))
    finally:
        subscriber.close()
    assert stats["dropped"] == 0 and stats["pending"] == 0 and stats["connections"] >= 2
    assert set(received) == set(sent)  # QoS 1: at least once; nothing lost
    assert [line for line in sent if line not in received] == []


def test_a_broker_that_refuses_the_credentials_is_warned_and_its_reason_kept(tmp_path, caplog):
    """A wrong password: said at once, and the refusal, not a later disconnect, stays the
    last error."""
    running = Broker(tmp_path / "closed")
    running.config.write_text(running.config.read_text().replace("allow_anonymous true",
                                                                 "allow_anonymous false"))
    running.start()
    caplog.set_level("WARNING", logger="vigil")
    target = MqttTarget.parse(f"mqtt://plant:wrong@127.0.0.1:{running.port}/{TOPIC}")
    publisher = MqttPublisher(target, buffer=10).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "refused" not in (publisher.stats()["last_error"]
                                                                or ""):
            time.sleep(0.05)
        publisher.publish_line('{"index": 0}')
        time.sleep(1.5)  # paho retries (and is refused) again meanwhile
        stats = publisher.close(timeout_s=1)
    finally:
        running.stop()
    assert "refused the connection" in stats["last_error"]
    assert "user name and password" in stats["last_error"] and "wrong" not in stats["last_error"]
    warned = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith("MQTT: broker") and "refused" in r.getMessage()]
    assert len(warned) == 1  # once, not at each retry


def test_a_broker_that_drops_the_connection_before_answering_is_the_last_error():
    """A plain mqtt:// URL at a TLS listener, say: the server closes before CONNACK."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def close_each():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(1024)
            connection.close()

    import threading

    threading.Thread(target=close_each, daemon=True).start()
    publisher = MqttPublisher(MqttTarget.parse(f"mqtt://127.0.0.1:{port}/{TOPIC}"),
                              buffer=10).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not publisher.stats()["last_error"]:
            time.sleep(0.05)
        stats = publisher.close(timeout_s=1)
    finally:
        listener.close()
    assert stats["last_error"] and str(port) in stats["last_error"]


def test_without_a_broker_scoring_never_waits_and_drops_are_counted():
    target = MqttTarget.parse(f"mqtt://127.0.0.1:{_free_port()}/{TOPIC}")  # nobody listens
    publisher = MqttPublisher(target, buffer=50).start()
    started = time.perf_counter()
    for i in range(2000):
        publisher.publish_line(json.dumps({"index": i}))
    elapsed = time.perf_counter() - started
    stats = publisher.close(timeout_s=0.2)
    assert elapsed < 5  # a generous bound: publishing queues, it never waits for a broker
    assert stats["published"] == 50 and stats["dropped"] == 1950
    assert stats["connected"] is False and stats["pending"] == 50
    assert "cannot reach the broker" in (stats["last_error"] or "")


def test_health_reports_during_an_outage_never_take_a_result_lines_place(broker):
    """A quiet line in an outage: each periodic report would queue beside the results; only the
    latest is kept, and sent when the broker answers."""
    target = MqttTarget.parse(f"mqtt://127.0.0.1:{_free_port()}/{TOPIC}")  # nobody listens
    publisher = MqttPublisher(target, buffer=5).start()
    for i in range(100):
        publisher.publish_health({"report": i})
    for i in range(5):
        publisher.publish_line(json.dumps({"index": i}))
    stats = publisher.close(timeout_s=0.2)
    assert stats["published"] == 5 and stats["dropped"] == 0
    # with a broker, the report held while connecting is the one sent, once
    subscriber = Subscriber(broker, TOPIC + "/#")
    try:
        publisher = MqttPublisher(MqttTarget.parse(broker.url()), buffer=5)
        for i in range(3):
            publisher.publish_health({"report": i})  # before it connects
        publisher.start()
        assert [json.loads(m) for m in subscriber.wait_for(TOPIC + "/health", 1)] == [
            {"report": 2}]
        publisher.close()
    finally:
        subscriber.close()


def test_a_health_report_meeting_a_full_buffer_is_held_and_sent_when_room_is_made():
    """At a reconnect the buffer may be full of an outage's result lines: a health report
    (which replaces the will's "lost") has a slot of its own beyond the results'; a later one
    meeting that taken is held, not dropped, and sent at an acknowledgement that finds room
    (paho calls back before it frees the acknowledged message's slot)."""
    from types import SimpleNamespace

    import paho.mqtt.client as paho

    class Queue:  # paho's client, as far as publishing goes: a queue of buffer + 1
        def __init__(self):
            self.sent = []

        def publish(self, topic, payload, qos, retain):
            if len(self.sent) >= 3:
                return SimpleNamespace(rc=paho.MQTT_ERR_QUEUE_SIZE)
            self.sent.append((topic, payload, retain))
            return SimpleNamespace(rc=paho.MQTT_ERR_SUCCESS)

    target = MqttTarget.parse(f"mqtt://127.0.0.1:{_free_port()}/{TOPIC}")
    publisher = MqttPublisher(target, buffer=2)
    queue = publisher._client = Queue()
    publisher._on_connect(None, None, None, SimpleNamespace(is_failure=False), None)
    for _ in range(3):
        publisher.publish_line("{}")  # the third meets the results' buffer full: dropped
    assert publisher.stats()["dropped"] == 1 and len(queue.sent) == 2
    publisher.publish_health({"report": 1})  # its own slot
    assert queue.sent[-1] == (target.health_topic, '{"report": 1}', True)
    publisher.publish_health({"report": 2})  # that slot taken: held
    publisher.publish_health({"report": 3})  # a newer one replaces it
    assert publisher.stats()["dropped"] == 1 and len(queue.sent) == 3
    publisher._on_publish(None, None, 1, None, None)  # paho calls back first: still full
    queue.sent.pop(0)  # ... then frees the slot
    publisher._on_publish(None, None, 2, None, None)
    queue.sent.pop(0)
    assert queue.sent[-1] == (target.health_topic, '{"report": 3}', True)
    sent = len(queue.sent)
    publisher._on_publish(None, None, 3, None, None)  # nothing held: nothing sent again
    assert len(queue.sent) == sent


def test_lines_published_as_the_first_connection_is_made_keep_their_order():
    """paho sends the messages it holds only after the connection's callback, so a line
    published in that instant went out before them (1 run of 60 on a loaded machine). Lines
    wait in order until the connection, and one published while they are handed over follows."""
    from types import SimpleNamespace

    import paho.mqtt.client as paho

    class Queue:  # paho's client, as far as publishing goes
        def __init__(self):
            self.sent = []

        def publish(self, topic, payload, qos, retain):
            self.sent.append(payload)
            if payload == "1":  # the scorer publishes while the held lines are handed over
                publisher.publish_line("3")
            return SimpleNamespace(rc=paho.MQTT_ERR_SUCCESS)

    publisher = MqttPublisher(MqttTarget.parse(f"mqtt://127.0.0.1:{_free_port()}/{TOPIC}"),
                              buffer=10)
    queue = publisher._client = Queue()
    publisher.publish_line("1")
    publisher.publish_line("2")
    assert queue.sent == [] and publisher.stats()["pending"] == 2  # waiting, counted
    publisher._on_connect(None, None, None, SimpleNamespace(is_failure=False), None)
    publisher.publish_line("4")
    assert queue.sent == ["1", "2", "3", "4"]
    assert publisher.stats()["published"] == 4 and publisher.stats()["dropped"] == 0


def test_a_refused_broker_is_named_in_the_stats_and_each_fill_of_the_buffer_warned(caplog):
    """Warned when the buffer fills, again only after it has drained (a broker acknowledging one
    message per two results must not warn per result); a broker reached clears the error."""
    from types import SimpleNamespace

    import paho.mqtt.client as paho

    class Queue:  # paho's client, as far as publishing goes: a bounded queue
        def __init__(self):
            self.queued = 0

        def publish(self, topic, payload, qos, retain):
            if self.queued >= 2:
                return SimpleNamespace(rc=paho.MQTT_ERR_QUEUE_SIZE)
            self.queued += 1
            return SimpleNamespace(rc=paho.MQTT_ERR_SUCCESS)

    publisher = MqttPublisher(MqttTarget.parse(f"mqtt://127.0.0.1:{_free_port()}/{TOPIC}"),
                              buffer=2)
    queue = publisher._client = Queue()
    publisher._on_connect(None, None, None, SimpleNamespace(is_failure=False), None)  # (its queue)
    with caplog.at_level("WARNING", logger="vigil"):
        for _ in range(3):
            publisher.publish_line("{}")
        for _ in range(10):  # the broker frees one slot per two results
            queue.queued -= 1
            publisher.acknowledged += 1
            publisher.publish_line("{}")
            publisher.publish_line("{}")
        assert caplog.text.count("MQTT buffer of 2 messages is full") == 1
        queue.queued, publisher.acknowledged = 0, publisher.published  # drained
        for _ in range(3):
            publisher.publish_line("{}")
    assert caplog.text.count("MQTT buffer of 2 messages is full") == 2
    with caplog.at_level("WARNING", logger="vigil"):
        publisher._on_connect_fail(None, None)
        publisher._on_connect_fail(None, None)  # a retry: not warned again
    assert "cannot reach the broker" in publisher.stats()["last_error"]
    assert caplog.text.count("MQTT: cannot reach the broker") == 1
    assert "(refused or timed out)" in publisher.stats()["last_error"]
    publisher._on_connect(None, None, None, SimpleNamespace(is_failure=False), None)
    assert publisher.stats()["last_error"] is None and publisher.stats()["connected"]
    unknown = MqttPublisher(MqttTarget.parse(f"mqtt://no-such-host.invalid/{TOPIC}"))
    unknown._on_connect_fail(None, None)  # a name that does not resolve is said as such
    assert "the name 'no-such-host.invalid' does not resolve" in unknown.stats()["last_error"]


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:1883/t", "scheme 'http'"),
    ("mqtt://127.0.0.1:1883", "needs a topic"),
    ("mqtt://127.0.0.1:1883/line/#", "without the wildcards"),
    ("mqtt://127.0.0.1:99999/t", "port that is not a number"),
    ("mqtt:///t", "names no host"),
    ("mqtt://127.0.0.1:0/t", "names port 0"),
])
def test_a_bad_mqtt_url_is_exit_2_naming_the_form(url, says, sensor_artifacts, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["score", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                  "--mqtt", url])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and says in err and "mqtt://HOST:PORT/TOPIC" in err


def test_target_parsing_keeps_credentials_out_of_its_text():
    target = MqttTarget.parse("mqtts://ops:s3cret@broker.local/plant/a%20b")
    assert (target.host, target.port, target.topic, target.tls) == ("broker.local", 8883,
                                                                     "plant/a b", True)
    assert (target.username, target.password) == ("ops", "s3cret")
    assert "s3cret" not in str(target) and target.health_topic == "plant/a b/health"
    for bad in ("mqtt://bob:S3cretPW@plc:1883", "mqtt://bob:S3cretPW@plc:99999/t",
                "mqtt://bob:S3cretPW@plc:1883/a/#", "http://bob:S3cretPW@plc/t",
                "bob:S3cretPW@plc:1883/t", "mqtt//bob:S3cretPW@plc/t", "mqtt:/bob:S3cretPW@plc/t"):
        with pytest.raises(ValueError) as refused:  # the URL is named, its password not (r3)
            MqttTarget.parse(bad)
        assert "S3cretPW" not in str(refused.value) and "bob:***@plc" in str(refused.value)


def test_the_password_may_come_from_the_environment_not_the_command_line(monkeypatch):
    """mqtt://USER:PASSWORD@... put the password in the process list for every user to read;
    with a user and no password in the URL, VIGIL_MQTT_PASSWORD gives it."""
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "s3cret")
    target = MqttTarget.parse("mqtt://plant@127.0.0.1:1883/line1")
    assert (target.username, target.password) == ("plant", "s3cret")
    assert "s3cret" not in str(target)
    given = MqttTarget.parse("mqtt://plant:other@127.0.0.1:1883/line1")
    assert given.password == "other"  # the URL's own wins
    assert MqttTarget.parse("mqtt://127.0.0.1:1883/line1").password is None  # no user, none
