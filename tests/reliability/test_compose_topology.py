"""deploy/compose.yaml's topology, run as local processes on the machine's PostgreSQL.

The compose file is read for what each planbot service runs and how many of it: `db upgrade`
once, then two `serve --no-delivery` replicas and one `deliver`. Each runs here as the command
the file names, with the compose network's names swapped for this machine's (a scratch
PostgreSQL database, the fake Slack, free loopback ports) and the file's own environment
(JSON logs). A Confirm click, sent to both replicas at once, is applied exactly once and its
audit message delivered exactly once, by the worker alone; with the worker stopped the change
waits in the outbox (seen in the servers' /metrics), and is delivered once it is back.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    AUDIT,
    PLANBOT,
    TEAM,
    Served,
    card_text,
    child_pids,
    free_port,
    planbot_env,
    seed_csv,
)
from tests.reliability.conftest import (
    Starting,
    query,
    ready,
    record,
    stop_all,
    wait_outbox_drained,
)
from tests.support.waiting import settled

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
#: Confirm clicks on one request, spread over the replicas, all at once
CLICKS = 10


def localize(command: list[str], ports: dict[str, int]) -> list[str]:
    """The compose command with this machine's host and ports (`--port`, `--metrics-port`)."""
    local = list(command)
    for i, word in enumerate(local[:-1]):
        if word == "--host":
            local[i + 1] = "127.0.0.1"
        elif word in ports:
            local[i + 1] = str(ports[word])
    return local


@dataclass
class Topology:
    """The compose services, running here."""

    servers: list[Served]
    worker_url: str
    tmp: Path
    env: dict[str, str]
    worker_command: list[str]
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        log = open(self.tmp / "deliver.log", "ab")  # noqa: SIM115  (kept open for the process)
        self.worker = subprocess.Popen(
            [PLANBOT, *self.worker_command],
            env=self.env,
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.worker_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.worker.poll() is None, (self.tmp / "deliver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "planbot deliver did not start"
            time.sleep(0.1)

    def stop_worker(self) -> None:
        assert self.worker is not None
        self.worker.terminate()
        assert self.worker.wait(15) == 0, (self.tmp / "deliver.log").read_text()[-3000:]


def compose_services() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    return dict(loaded["services"])


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack, postgres_url: str
) -> Iterator[Topology]:
    services = compose_services()
    tmp = tmp_path_factory.mktemp("compose")
    compose_env = {
        k: str(v) for k, v in services["serve"]["environment"].items() if k != "DATABASE_URL"
    }
    env = planbot_env(slack, postgres_url, {**compose_env, "PLANBOT_LOG_LEVEL": "INFO"})

    # migrate: the one-off schema upgrade, then the apps (`planbot apps import`, as an operator)
    migrated = subprocess.run(
        [PLANBOT, *services["migrate"]["command"]],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "schema at revision" in migrated.stdout
    (tmp / "seed.csv").write_text(seed_csv())
    subprocess.run(
        [PLANBOT, "apps", "import", str(tmp / "seed.csv")],
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
    )

    # serve: the replicas, without delivery
    replicas = int(services["serve"]["deploy"]["replicas"])
    starting = []
    for n in range(replicas):
        port = free_port()
        command = localize(services["serve"]["command"], {"--port": port})
        log = tmp / f"serve-{n}.log"
        process = subprocess.Popen(
            [PLANBOT, *command],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "ab"),  # noqa: SIM115  (kept open for the process)
        )
        starting.append(Starting(process, f"http://127.0.0.1:{port}", log, slack, postgres_url))
    servers = [ready(s) for s in starting]

    # deliver: the one worker, with its own metrics port
    metrics_port = free_port()
    topology = Topology(
        servers=servers,
        worker_url=f"http://127.0.0.1:{metrics_port}",
        tmp=tmp,
        env=env,
        worker_command=localize(services["deliver"]["command"], {"--metrics-port": metrics_port}),
    )
    topology.start_worker()
    yield topology
    if topology.worker is not None and topology.worker.poll() is None:
        topology.worker.terminate()
        topology.worker.wait(15)
    stop_all(*servers)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_compose_topology_runs_two_servers_without_delivery_and_one_worker(
    topology: Topology,
) -> None:
    assert len(topology.servers) == 2
    for served in topology.servers:
        assert child_pids(served.process.pid) == []  # no delivery worker of its own
        samples = metrics(served.url)
        assert samples[("planbot_processes", (("role", "server"),))] == 1
        assert ("planbot_processes", (("role", "deliver"),)) not in samples
    worker = metrics(topology.worker_url)
    assert worker[("planbot_processes", (("role", "deliver"),))] == 1
    assert worker[("planbot_database_up", ())] == 1


def test_a_confirmation_through_the_topology_is_applied_and_announced_once(
    topology: Topology, slack: FakeSlack
) -> None:
    first = topology.servers[0]
    _, request_id = first.preview("upgrade 1400000001 premium", response="compose")
    with concurrent.futures.ThreadPoolExecutor(CLICKS) as pool:
        statuses = list(
            pool.map(
                lambda i: (
                    topology.servers[i % 2]
                    .click("plan_confirm", request_id, response="compose")
                    .status_code
                ),
                range(CLICKS),
            )
        )
    assert statuses == [200] * CLICKS
    app = first.app("1400000001")
    assert (app.plan, app.version) == ("premium", 2)
    applied = query(
        first.database_url,
        "SELECT seq FROM audit_event WHERE request_id = :r AND outcome = 'applied'",
        r=request_id,
    )
    assert len(applied) == 1

    wait_outbox_drained(first.database_url, timeout=30)
    settled(lambda: slack.responses("compose"), 10, until=lambda r: len(r) >= CLICKS, every=0.1)
    time.sleep(1.0)  # a second delivery would show up now
    replies = [card_text(r) for r in slack.responses("compose")]
    assert len(replies) == CLICKS
    assert sum("upgraded" in r for r in replies) == 1, replies
    assert sum("already done" in r for r in replies) == CLICKS - 1, replies
    for channel in (AUDIT, TEAM):
        about = [
            m
            for m in slack.messages(channel)
            if request_id in json.dumps(m) or "1400000001" in json.dumps(m)
        ]
        assert len(about) == 1, (channel, about)
    delivered = metrics(topology.worker_url)
    assert (
        delivered[
            (
                "planbot_deliveries_total",
                (("destination", "audit_channel"), ("result", "delivered")),
            )
        ]
        >= 1
    )
    record(
        "compose topology: one Confirm clicked on both replicas",
        clicks=CLICKS,
        changes=1,
        audit_messages_per_channel=1,
        card_replacements=1,
    )


def test_without_the_worker_changes_wait_in_the_outbox_and_leave_once_it_is_back(
    topology: Topology, slack: FakeSlack
) -> None:
    first, second = topology.servers
    topology.stop_worker()
    _, request_id = second.preview("upgrade 1400000002 standard", response="compose-later")
    assert first.click("plan_confirm", request_id, response="compose-later").status_code == 200
    assert first.app("1400000002").plan == "standard"  # applied when acked, by the server
    time.sleep(1.0)
    assert slack.responses("compose-later") == []
    waiting = metrics(second.url)
    assert waiting[("planbot_outbox_pending", ())] >= 3  # audit, owner channel, card
    assert waiting[("planbot_outbox_oldest_seconds", ())] >= 1.0

    topology.start_worker()
    wait_outbox_drained(first.database_url, timeout=30)
    assert "upgraded" in card_text(slack.wait_for_response("compose-later", timeout=10))
    time.sleep(1.0)
    assert len(slack.responses("compose-later")) == 1
    for channel in (AUDIT, TEAM):
        about = [m for m in slack.messages(channel) if "1400000002" in json.dumps(m)]
        assert len(about) == 1, (channel, about)
    assert metrics(first.url)[("planbot_outbox_pending", ())] == 0
    # the compose file asks for JSON logs: every line each process wrote is one JSON object
    for log in sorted(topology.tmp.glob("*.log")):
        for line in log.read_text().splitlines():
            assert isinstance(json.loads(line), dict), (log.name, line)
