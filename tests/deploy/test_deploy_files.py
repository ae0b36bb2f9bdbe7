"""The deployment recipe in deploy/ holds together, checked without Docker or a cluster.

The Kubernetes manifests are validated offline against the API's schemas (kubernetes-validate
ships them; the network is cut while it runs); the compose file's topology, the Dockerfile, the
Prometheus rules and the Grafana dashboard are read and checked against planbot itself: its
commands parse, its ports and probes match, and every metric they name is one planbot exposes.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from bot import metrics
from bot.cli import _parser
from bot.metrics import BacklogCollector
from core import SqlStore, make_engine, upgrade_schema

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
#: the oldest Kubernetes the manifests are meant for, and the newest whose schemas are shipped
K8S_VERSIONS = ("1.28", kubernetes_validate.latest_version())
#: settings that are secret: never in a ConfigMap or a compose file, always by reference
SECRETS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DATABASE_URL",
    "PLANBOT_METRICS_TOKEN",
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
)


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def by_kind(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


# --- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_manifest_validates_offline(version: str, offline: None) -> None:
    names = [f"{d['kind']}/{d['metadata']['name']}" for _, d in manifests()]
    assert sorted(names) == [
        "ConfigMap/planbot",
        "Deployment/planbot-deliver",
        "Deployment/planbot-serve",
        "Job/planbot-migrate",
        "PodDisruptionBudget/planbot-serve",
        "Service/planbot",
    ]
    for filename, document in manifests():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{filename} against {version}: {'.'.join(map(str, err.path))}: {err}")


def test_the_validation_catches_a_broken_manifest(offline: None) -> None:
    broken = copy.deepcopy(by_kind("Deployment", "planbot-serve"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)
    misspelt = copy.deepcopy(by_kind("Deployment", "planbot-serve"))
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, K8S_VERSIONS[0], strict=True)


def test_kustomization_applies_every_manifest_and_sets_the_image() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    (image,) = kustomization["images"]
    containers = [
        c
        for _, d in manifests()
        if "template" in d.get("spec", {})
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    assert len(containers) == 3
    assert {c["image"] for c in containers} == {image["name"]}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return found


def planbot_args(args: list[str]) -> Any:
    """The command line parsed by planbot's own parser (SystemExit if it does not parse)."""
    return _parser().parse_args(args)


def test_the_servers_answer_slack_only_and_are_probed_on_healthz() -> None:
    serve = by_kind("Deployment", "planbot-serve")
    box = container(serve)
    args = planbot_args(box["args"])
    assert (args.command, args.no_delivery, args.port) == ("serve", True, 3000)
    port = {p["name"]: p["containerPort"] for p in box["ports"]}
    assert port == {"http": 3000}
    for probe in ("readinessProbe", "livenessProbe"):
        assert box[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert serve["spec"]["replicas"] >= 2
    annotations = serve["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        "3000",
        "/metrics",
    )


def test_one_delivery_worker_runs_apart_with_its_own_probe_and_metrics() -> None:
    deliver = by_kind("Deployment", "planbot-deliver")
    box = container(deliver)
    args = planbot_args(box["args"])
    assert (args.command, args.metrics_port) == ("deliver", 9102)
    assert {p["name"]: p["containerPort"] for p in box["ports"]} == {"metrics": 9102}
    assert box["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert deliver["spec"]["replicas"] == 1
    assert deliver["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9102"


def test_the_migration_job_upgrades_the_schema() -> None:
    job = by_kind("Job", "planbot-migrate")
    (box,) = job["spec"]["template"]["spec"]["containers"]
    args = planbot_args(box["args"])
    assert (args.command, args.db_command) == ("db", "upgrade")
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_the_service_and_the_disruption_budget_select_the_servers() -> None:
    serve_labels = by_kind("Deployment", "planbot-serve")["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service", "planbot")
    assert service["spec"]["selector"].items() <= serve_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    budget = by_kind("PodDisruptionBudget", "planbot-serve")
    assert budget["spec"]["selector"]["matchLabels"].items() <= serve_labels.items()
    assert budget["spec"]["minAvailable"] >= 1
    deliver_labels = by_kind("Deployment", "planbot-deliver")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert not service["spec"]["selector"].items() <= deliver_labels.items()


def test_secrets_are_referenced_never_written_and_pods_run_unprivileged() -> None:
    assert all(d["kind"] != "Secret" for _, d in manifests())
    config = by_kind("ConfigMap", "planbot")
    assert not set(config["data"]) & set(SECRETS)
    for name in ("planbot-serve", "planbot-deliver"):
        spec = by_kind("Deployment", name)["spec"]["template"]["spec"]
        assert {"secretRef": {"name": "planbot"}} in spec["containers"][0]["envFrom"]
    for _, document in manifests():
        if "template" not in document.get("spec", {}):
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        for box in pod["containers"]:
            assert box["securityContext"]["allowPrivilegeEscalation"] is False
            assert box["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"name": "tmp", "mountPath": "/tmp"} in box["volumeMounts"]  # metrics files
            assert "env" not in box or not {e["name"] for e in box["env"]} & set(SECRETS)


# --- compose -----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_the_topology_of_the_recipe() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "serve", "deliver", "proxy", "prometheus"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])

    migrate = planbot_args(services["migrate"]["command"])
    assert (migrate.command, migrate.db_command) == ("db", "upgrade")
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    serve = planbot_args(services["serve"]["command"])
    assert (serve.command, serve.no_delivery, serve.port) == ("serve", True, 3000)
    assert services["serve"]["deploy"]["replicas"] == 2
    deliver = planbot_args(services["deliver"]["command"])
    assert (deliver.command, deliver.metrics_port) == ("deliver", 9102)
    assert services["deliver"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("serve", "deliver"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert "9102/healthz" in " ".join(services["deliver"]["healthcheck"]["test"])
    assert services["prometheus"]["profiles"] == ["monitoring"]


def test_every_planbot_service_is_the_same_image_with_the_secrets_from_env_file() -> None:
    services = compose()["services"]
    for name in ("migrate", "serve", "deliver"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["env_file"] == [{"path": ".env", "required": True}]
        environment = service["environment"]
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert "${POSTGRES_PASSWORD" in environment["DATABASE_URL"]
        assert not {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} & set(environment)
    example = (DEPLOY / "env.example").read_text()
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD"):
        assert re.search(rf"^{variable}=", example, re.MULTILINE), variable
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored  # deploy/.env, with the real secrets, is never committed


def test_the_proxy_spreads_slack_over_the_replicas_and_keeps_metrics_inside() -> None:
    proxy = compose()["services"]["proxy"]
    (mount,) = proxy["volumes"]
    source = DEPLOY / mount.split(":")[0]
    config = source.read_text()
    assert "http://serve:3000" in config
    assert "location = /slack/events" in config
    assert "metrics" not in re.sub(r"#.*", "", config)
    assert proxy["depends_on"] == {"serve": {"condition": "service_healthy"}}


def test_prometheus_in_compose_scrapes_both_roles_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {
        (job["job_name"], sd["names"][0], sd["port"])
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
    }
    assert targets == {("planbot-serve", "serve", 3000), ("planbot-deliver", "deliver", 9102)}


# --- the image -----------------------------------------------------------------------------------


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_image_is_built_in_stages_and_runs_planbot_unprivileged_with_a_healthcheck() -> None:
    lines = dockerfile()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    final = lines[lines.index(stages[1]) :]
    assert any(line.startswith("COPY --from=build ") for line in final)
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user.split(":")[0] == "10001"  # the uid the Kubernetes pods run as
    (health,) = [line for line in final if line.startswith("HEALTHCHECK ")]
    assert "http://127.0.0.1:3000/healthz" in health
    assert "EXPOSE 3000" in final
    (entry,) = [line for line in final if line.startswith("ENTRYPOINT ")]
    assert json.loads(entry.split(None, 1)[1]) == ["planbot"]
    (cmd,) = [line for line in final if line.startswith("CMD ")]
    default = planbot_args(json.loads(cmd.split(None, 1)[1]))
    assert (default.command, default.port) == ("serve", 3000)


def test_what_the_image_copies_exists_and_is_in_the_build_context() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for line in dockerfile():
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        sources = line.split()[1:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, source


# --- alerts and the dashboard --------------------------------------------------------------------


def exposed_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name planbot can expose."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name, kind = value._name, value._type
            if kind == "counter":
                names.add(f"{name}_total")
            elif kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            else:
                names.add(name)
    engine = make_engine(f"sqlite:///{tmp_path / 'planbot.sqlite3'}")
    try:
        upgrade_schema(engine)
        names |= {family.name for family in BacklogCollector(SqlStore(engine)).collect()}
    finally:
        engine.dispose()
    return names


def referenced_metrics(expression: str) -> set[str]:
    return set(re.findall(r"\bplanbot_[a-z_]+", expression))


def test_the_alert_rules_watch_the_outbox_the_acks_and_dead_deliveries(tmp_path: Path) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    (group,) = rules["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    assert "planbot_outbox_oldest_seconds" in alerts["PlanbotOutboxStuck"]["expr"]
    assert "planbot_ack_seconds_bucket" in alerts["PlanbotAckSlow"]["expr"]
    assert 'result="dead"' in alerts["PlanbotDeadDeliveries"]["expr"]
    exposed = exposed_metric_names(tmp_path)
    for name, rule in alerts.items():
        assert referenced_metrics(rule["expr"]) <= exposed, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name


def test_the_dashboard_shows_only_metrics_planbot_exposes(tmp_path: Path) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "planbot-dashboard.json").read_text())
    assert dashboard["uid"] == "planbot"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    exposed = exposed_metric_names(tmp_path)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    shown: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            used = referenced_metrics(target["expr"])
            assert used and used <= exposed, (panel["title"], used - exposed)
            shown |= used
    # every metric planbot exposes is on the dashboard
    assert {re.sub(r"_(bucket|count|sum)$", "", n) for n in exposed} <= {
        re.sub(r"_(bucket|count|sum)$", "", n) for n in shown
    }


def test_the_alert_rules_fire_when_they_should() -> None:
    """promtool's own unit tests of the rules (alerts.test.yml), where promtool is installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    directory = DEPLOY / "prometheus"
    checked = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=directory, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
