"""deploy/: the alerting rules, the Grafana dashboard and the docker-compose stack.

The rules and the dashboard may only name metrics bot/metrics.py really exports (read from
a real scrape of :class:`~bot.metrics.Metrics`, not from a list kept here); promtool checks
the rules' syntax, runs their unit tests (deploy/prometheus/alerts_test.yml) and parses
every dashboard query. No Docker engine runs here, so the compose file is checked as data.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.config import SETTINGS_TABLE
from bot.metrics import create_metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "starpod-bot.json"
COMPOSE = DEPLOY / "docker-compose.yml"
BOTS = ("bot-1", "bot-2")

_METRIC = re.compile(r"\bstarpod_[a-z0-9_]+")
# Grafana's variables, replaced as Grafana would before the query reaches Prometheus.
_GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package prometheus; .ci/run installs it)",
)


async def exported_names() -> set[str]:
    """Every sample name a scrape of the bot's metrics shows, once each kind was observed."""
    metrics = create_metrics()
    metrics.observe_backend("list", "500", 0.1)
    metrics.observe_sweep(0.5, ok=True)
    metrics.observe_command("list", "ok")
    metrics.observe_ack(0.01)
    metrics.observe_notification("sent")
    metrics.observe_notification("failed")
    text = (await metrics.render()).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def unknown_metrics(expr: str, known: set[str]) -> set[str]:
    return {name for name in _METRIC.findall(expr) if name not in known}


def dashboard_exprs() -> list[tuple[str, str]]:
    data = json.loads(DASHBOARD.read_text())
    out = []
    for panel in data["panels"]:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            out.append((panel["title"], target["expr"]))
    return out


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent
    )


# -- the names --------------------------------------------------------------------------------


async def test_the_check_sees_a_metric_that_does_not_exist() -> None:
    known = await exported_names()
    assert "starpod_ready" in known and "starpod_sweep_duration_seconds_bucket" in known
    assert unknown_metrics("rate(starpod_sweeps_total[5m])", known) == set()
    # A renamed or misspelt metric is an empty panel or an alert that never fires.
    assert unknown_metrics("rate(starpod_sweep_total[5m])", known) == {"starpod_sweep_total"}
    assert unknown_metrics("starpod_notifications_pending_total", known) == {
        "starpod_notifications_pending_total"
    }


async def test_every_dashboard_query_names_only_exported_metrics() -> None:
    known = await exported_names()
    exprs = dashboard_exprs()
    assert exprs
    for title, expr in exprs:
        assert _METRIC.search(expr), f"{title!r} reads none of the bot's metrics: {expr}"
        assert unknown_metrics(expr, known) == set(), f"{title!r}: {expr}"


async def test_every_metric_the_bot_exports_is_on_the_dashboard() -> None:
    shown = {name for _, expr in dashboard_exprs() for name in _METRIC.findall(expr)}
    families = {re.sub(r"_(bucket|count|sum|created|total)$", "", n) for n in shown}
    for name in await exported_names():
        if name.endswith("_created"):
            continue
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert base in families, f"{name} is exported but on no dashboard panel"


def test_the_dashboard_is_grafana_json() -> None:
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in data["panels"]:
        assert panel["type"] in {"stat", "timeseries", "gauge", "table"}, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


async def test_every_rule_names_only_exported_metrics_and_every_topic_is_covered() -> None:
    known = await exported_names()
    alerts = {rule["alert"]: rule for rule in rules()}
    for name, rule in alerts.items():
        assert unknown_metrics(rule["expr"], known) == set(), name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
    # What the issue asks the rules to watch, each by the metric that says it.
    topics = {
        "StarpodBotNotReady": "starpod_ready",
        "StarpodBotSweepsStalled": "starpod_monitor_stalled",
        "StarpodBotNoRecentSweep": "starpod_last_sweep_timestamp_seconds",
        "StarpodBotNotificationsFailing": "starpod_notifications_failed_total",
        "StarpodBotOutboxBacklog": "starpod_notifications_pending",
        "StarpodBotNoLeader": "starpod_leader",
        "StarpodBotDatabaseUnwritable": "starpod_database_writable",
    }
    for alert, metric in topics.items():
        assert metric in alerts[alert]["expr"], alert


# -- promtool --------------------------------------------------------------------------------


@needs_promtool
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool("check", "config", str(PROMETHEUS))
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # promtool has no "check expr": each query becomes a recording rule it must parse.
    queries = []
    for title, expr in dashboard_exprs():
        for var, value in _GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"{title!r} uses a variable the check cannot fill: {expr}"
        queries.append(expr)
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:query{i}", "expr": q}
                            for i, q in enumerate(queries)
                        ],
                    }
                ]
            }
        )
    )
    checked = promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # And the same check refuses a broken query, so passing means something.
    rule_file.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "d", "rules": [{"record": "x:y", "expr": "sum(rate(a[1m])"}]}]}
        )
    )
    assert promtool("check", "rules", str(rule_file)).returncode != 0


# -- docker-compose ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_two_replicas_on_one_postgresql() -> None:
    services = compose()["services"]
    assert {"postgres", *BOTS, "prometheus", "grafana"} <= set(services)
    urls = set()
    for bot in BOTS:
        service = services[bot]
        env = service["environment"]
        assert service["build"]["context"] == "..", "the image is the repository's Dockerfile"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = env["DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url, url
        urls.add(url)
        # Secrets come from the caller's environment, never from the file.
        assert env["SLACK_BOT_TOKEN"].startswith("${SLACK_BOT_TOKEN:?")
        assert env["SLACK_SIGNING_SECRET"].startswith("${SLACK_SIGNING_SECRET:?")
    assert len(urls) == 1, "both replicas must share one database (the leader lock lives there)"
    db = services["postgres"]["environment"]
    assert urls.pop().endswith(f"@postgres:5432/{db['POSTGRES_DB']}")
    host_ports = [p.split(":")[0] for bot in BOTS for p in services[bot]["ports"]]
    assert len(host_ports) == len(set(host_ports))


def test_compose_sets_only_settings_the_bot_reads() -> None:
    names = {spec.env for spec in SETTINGS_TABLE if spec.env}
    for bot in BOTS:
        env = compose()["services"][bot]["environment"]
        assert set(env) <= names, set(env) - names


def test_prometheus_scrapes_both_replicas_where_they_serve_metrics() -> None:
    services = compose()["services"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "starpod-bot"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{bot}:{services[bot]['environment']['PORT']}" for bot in BOTS}
    assert targets == expected
    # The rule file is where the mounted folder puts it, and the alerts' job label matches.
    mounts = {
        dst: DEPLOY / src
        for src, dst, *_ in (v.split(":") for v in services["prometheus"]["volumes"])
        if src.startswith(".")
    }
    assert (mounts["/etc/prometheus"] / "prometheus.yml").samefile(PROMETHEUS)
    (rule_file,) = config["rule_files"]
    assert (mounts["/etc/prometheus"] / rule_file).samefile(RULES)
    assert '{job="starpod-bot"}' in RULES.read_text()


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    services = compose()["services"]
    mounts = {
        dst: (DEPLOY / src).resolve()
        for src, dst, *_ in (v.split(":") for v in services["grafana"]["volumes"])
        if src.startswith(".")
    }
    provisioning = mounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "starpod.yml").read_text())
    (provider,) = providers["providers"]
    path = provider["options"]["path"]
    assert mounts[path] == DASHBOARD.parent.resolve()


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_the_file() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin here")
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
