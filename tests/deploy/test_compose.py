"""docker-compose.yaml, Dockerfile and .env.example: parsed and checked (no Docker engine needed)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE,
    DEPLOY_FILES,
    DOCKERFILE,
    ENV_EXAMPLE,
    FAB_AUTH_MANAGER,
    POOLS,
    ROOT,
    TWELVE_HOURS_IN_MINUTES,
    airflow_pin,
    parse_env_file,
    secret_findings_in_env,
    secret_findings_in_mapping,
    secret_findings_in_text,
)

pytestmark = pytest.mark.unit

#: The role of each service and the Airflow command it runs.
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
INIT = "airflow-init"
INIT_SCRIPT = ROOT / "deploy" / "airflow-init.sh"
STORE_INIT = ROOT / "deploy" / "postgres-init" / "01-sanvi-ops-store.sh"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _airflow(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every service built from the Airflow image (the x-airflow-common anchor)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def _cfg() -> Any:
    from sanvi_ops.core.config import load_config

    return load_config(ROOT / "include" / "config" / "maintenance.yaml")


def test_services_exist_and_run_their_component(services: dict[str, dict[str, Any]]) -> None:
    for name, command in AIRFLOW_SERVICES.items():
        assert name in services, f"service {name} missing"
        assert services[name]["command"] == command, name
    for name in ("postgres", "redis", INIT):
        assert name in services, f"service {name} missing"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    long_running = [name for name in services if name != INIT]
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis"} <= set(long_running)
    for name in long_running:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "always", name


def test_start_order_waits_for_healthy_dependencies_and_init(services: dict[str, dict[str, Any]]) -> None:
    assert services[INIT]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services[INIT]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps[INIT]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_image_is_pinned_to_the_airflow_version_in_requirements(services: dict[str, dict[str, Any]]) -> None:
    pin = airflow_pin()
    base = f"apache/airflow:slim-{pin}-python3.11"  # core only: every other package from the lock
    for name, svc in _airflow(services).items():
        assert svc["build"]["args"]["AIRFLOW_IMAGE"] == base, name
        assert svc["build"]["dockerfile"] == "Dockerfile", name
        assert f":{pin}-" in svc["image"], f"{name}: image tag {svc['image']!r} is not Airflow {pin}"
    dockerfile = DOCKERFILE.read_text()
    assert re.search(rf"^ARG AIRFLOW_IMAGE={re.escape(base)}$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", dockerfile, re.MULTILINE)


def test_celery_executor_with_redis_broker_and_postgres_metadata(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow(services).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        # the workers import the project once before forking (tests/airflow_kit/test_worker_preload.py)
        options = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
        module, _, attr = options.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr), dict), options


def test_worker_scales_with_compose_scale(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
    worker = services["airflow-worker"]
    assert "ports" not in worker, "a published port would collide between worker replicas"
    assert "hostname" not in worker
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown of Celery


def test_project_directories_are_mounted_and_importable(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow(services).items():
        targets = {}
        for volume in svc["volumes"]:
            source, target = volume.split(":")[:2]
            targets[target] = source
        for sub in ("dags", "plugins", "include"):
            assert targets.get(f"/opt/airflow/{sub}") == f"./{sub}", f"{name}: ./{sub} not mounted"
            assert (ROOT / sub).is_dir()
        env = svc["environment"]
        assert env["PYTHONPATH"] == "/opt/airflow/include:/opt/airflow/plugins", name
        assert env["SANVI_OPS_CONFIG"].startswith("${SANVI_OPS_CONFIG:-/opt/airflow/include/"), name


def test_fab_auth_manager_with_a_twelve_hour_idle_session(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow(services).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
        assert int(env["AIRFLOW__FAB__SESSION_LIFETIME_MINUTES"]) == TWELVE_HOURS_IN_MINUTES, name
        assert int(env["AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME"]) == TWELVE_HOURS_IN_MINUTES * 60, name
    # The auth manager class and the option exist in the pinned provider.
    module, _, cls = FAB_AUTH_MANAGER.rpartition(".")
    assert hasattr(importlib.import_module(module), cls)
    info = importlib.import_module("airflow.providers.fab.get_provider_info").get_provider_info()
    assert "session_lifetime_minutes" in info["config"]["fab"]["options"]


def test_airflow_secrets_are_required_from_env(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow(services).items():
        env = svc["environment"]
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            assert env[key] == f"${{{key}:?set {key} in .env}}", f"{name}: {key}"
        assert svc["env_file"] == [".env"], name


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    published = 0
    for name, svc in services.items():
        for port in svc.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is reachable from other hosts"
    assert published >= 1
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


def test_every_configured_connection_is_in_env_example(services: dict[str, dict[str, Any]]) -> None:
    text = ENV_EXAMPLE.read_text()
    active = parse_env_file(text)
    compose_env = services["airflow-scheduler"]["environment"]
    for field, conn_id in _cfg().connections.model_dump().items():
        var = f"AIRFLOW_CONN_{conn_id.upper()}"
        assert re.search(rf"^(# )?{var}=", text, re.MULTILINE), f"{var} ({field}) missing in .env.example"
        assert var in active or var in compose_env, f"{var} is set neither in .env.example nor in compose"


def test_results_store_is_its_own_database(services: dict[str, dict[str, Any]]) -> None:
    var = f"AIRFLOW_CONN_{_cfg().connections.store.upper()}"
    conn = services["airflow-worker"]["environment"][var]
    assert re.fullmatch(
        r"postgresql://sanvi_ops:\$\{SANVI_STORE_PASSWORD:\?[^}]*\}@postgres:5432/sanvi_ops_store", conn
    )
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    script = STORE_INIT.read_text()
    assert "CREATE DATABASE sanvi_ops_store OWNER sanvi_ops;" in script
    assert "\\getenv store_password SANVI_STORE_PASSWORD" in script  # never on a command line
    assert services["postgres"]["environment"]["SANVI_STORE_PASSWORD"].startswith("${SANVI_STORE_PASSWORD:?")


def test_init_migrates_creates_the_admin_and_imports_the_pools(services: dict[str, dict[str, Any]]) -> None:
    init = services[INIT]
    assert init["command"] == ["bash", "/opt/airflow/deploy/airflow-init.sh"]
    assert "restart" not in init or init["restart"] == "no"
    for key in ("SANVI_ADMIN_USERNAME", "SANVI_ADMIN_EMAIL", "SANVI_ADMIN_PASSWORD"):
        assert init["environment"][key].startswith(f"${{{key}:?"), key
    assert "./deploy/pools.json:/opt/airflow/deploy/pools.json:ro" in init["volumes"]
    script = INIT_SCRIPT.read_text()
    assert "airflow db migrate" in script
    assert "\npython -m sanvi_ops migrate\n" in script  # the results store: never by a task
    # The public CLI; the password reaches its getpass prompt on stdin, never an argument.
    assert "| setsid airflow users create --role Admin" in script
    assert "--password" not in script and "cli_commands" not in script
    assert 'printf \'%s\\n%s\\n\' "${SANVI_ADMIN_PASSWORD}" "${SANVI_ADMIN_PASSWORD}"' in script
    assert 'airflow pools import "${POOLS_FILE}"' in script
    assert 'POOLS_FILE="${SANVI_POOLS_FILE:-/opt/airflow/deploy/pools.json}"' in script
    assert "COPY --chown=airflow:0 deploy/airflow-init.sh deploy/pools.json /opt/airflow/deploy/" in (
        DOCKERFILE.read_text()
    )
    assert _cfg().tasks.database_maintenance.settings.pool in json.loads(POOLS.read_text())


def test_links_use_the_base_url_from_env(services: dict[str, dict[str, Any]]) -> None:
    """[api] base_url: every link in Slack and the reports; required, so nobody ships localhost links."""
    for name, svc in _airflow(services).items():
        env = svc["environment"]
        assert (
            env["AIRFLOW__API__BASE_URL"] == "${AIRFLOW__API__BASE_URL:?set AIRFLOW__API__BASE_URL in .env}"
        ), name
    example = parse_env_file(ENV_EXAMPLE.read_text())
    assert example["AIRFLOW__API__BASE_URL"].startswith(("http://", "https://"))
    assert not example["AIRFLOW__API__BASE_URL"].endswith("/")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("script", [INIT_SCRIPT, STORE_INIT])
def test_shell_scripts_parse(script: Any) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_secrets_stay_out_of_the_image_and_git() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert patterns[0] == "*", "the build context is an allow-list"
    assert not any(p.startswith("!.env") for p in patterns)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_no_secret_literal_in_committed_deployment_files() -> None:
    findings: list[str] = []
    for path in DEPLOY_FILES:
        text = path.read_text()
        where = str(path.relative_to(ROOT))
        findings += secret_findings_in_text(text, where)
        if path.suffix == ".yaml":
            findings += secret_findings_in_mapping(yaml.safe_load(text), where)
        if path == ENV_EXAMPLE:
            findings += secret_findings_in_env(text, where)
    assert findings == []


def test_secret_scanner_catches_secrets() -> None:
    """The scanner is not vacuous: each kind of leak is reported (fake values built at run time)."""
    slack = "xoxb-" + "1234567890-abcdefghijklmnop"
    fernet = "A" * 43 + "="
    assert secret_findings_in_text(f"token: {slack}", "t")
    assert secret_findings_in_text(f"AIRFLOW__CORE__FERNET_KEY={fernet}", "t")
    assert secret_findings_in_text("postgresql://airflow:hunter2@db/airflow", "t")
    assert not secret_findings_in_text("postgresql://airflow:${POSTGRES_PASSWORD:?set it}@db/airflow", "t")
    assert secret_findings_in_mapping({"env": {"POSTGRES_PASSWORD": "hunter2"}}, "t")
    assert not secret_findings_in_mapping({"jwtSecretName": "sanvi-ops-airflow-jwt-secret"}, "t")
    assert secret_findings_in_env("SANVI_ADMIN_PASSWORD=hunter2\n", "t")
    assert secret_findings_in_env("""AIRFLOW_CONN_X='{"conn_type": "slack", "password": "hunter2"}'\n""", "t")
    assert not secret_findings_in_env("SANVI_ADMIN_PASSWORD=change-me\n", "t")
