"""deploy/kubernetes, checked offline: kustomize renders it, every core object matches its kind's
schema (kubernetes-validate's bundled schemas, strict: an unknown field fails), every command line
is one the binary accepts, and the wiring holds (probes, the token from the Secret, each pod's own
address, KEDA scaling Deployments that exist)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
# The Kubernetes the schemas are checked at: the runners' preStop `sleep` action needs 1.30 or
# later (beta there, on by default).
KUBERNETES = "1.32"


def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing: scripts/setup-system.sh installs it (kubernetes-client)")
    output = subprocess.run([kubectl, "kustomize", str(MANIFESTS)], check=True, capture_output=True,
                            text=True, timeout=60).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, container) for name, deployment in by_kind(objects, "Deployment").items()
            for container in deployment["spec"]["template"]["spec"]["containers"]]


def switchyard_binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN", str(REPO / "target" / "debug" / "switchyard"))
    assert os.access(path, os.X_OK), f"no switchyard binary at {path}"
    return path


def test_kustomize_renders_every_component_in_the_namespace() -> None:
    objects = rendered()
    assert set(by_kind(objects, "Deployment")) == {"discovery", "controller", "runner-vision", "runner-language"}
    assert set(by_kind(objects, "Service")) == {"discovery"}
    assert {o["metadata"].get("namespace") for o in objects} == {"switchyard"}


def test_every_core_object_matches_its_schema() -> None:
    core = [o for o in rendered() if not o["apiVersion"].startswith("keda.sh/")]
    assert core
    for document in core:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_wrong_field_would_be_caught() -> None:
    deployment = by_kind(rendered(), "Deployment")["discovery"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_every_command_line_is_one_the_binary_accepts() -> None:
    for name, container in containers(rendered()):
        args = [arg.replace("$(POD_IP)", "10.0.0.7") for arg in container["args"]]
        result = subprocess.run([switchyard_binary(), *args, "--help"], capture_output=True, text=True,
                                timeout=30, env={**os.environ, "SWITCHYARD_CONFIG": "/nonexistent.toml"})
        assert result.returncode == 0, f"{name}: {args}: {result.stderr}"


def test_probes_resources_and_the_token_from_the_secret() -> None:
    objects = rendered()
    for name, container in containers(objects):
        assert {"readinessProbe", "livenessProbe"} <= set(container), name
        assert container["resources"]["requests"], name
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["SWITCHYARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "switchyard", "key": "token"}, name
    runners = [(name, c) for name, c in containers(objects) if name.startswith("runner-")]
    assert len(runners) == 2
    for name, container in runners:
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        assert "http://$(POD_IP):8000" in container["args"], name
        assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", name
        assert "preStop" in container["lifecycle"], name


def test_keda_scales_deployments_that_exist_on_the_task_queue() -> None:
    objects = rendered()
    deployments = by_kind(objects, "Deployment")
    authentications = by_kind(objects, "TriggerAuthentication")
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == {"controller", "runner-vision", "runner-language"}
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments, name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == "tasks", name
        assert trigger["metadata"]["mode"] == "QueueLength" and int(trigger["metadata"]["value"]) > 0, name
        assert trigger["authenticationRef"]["name"] in authentications, name
    (secret_ref,) = authentications["rabbitmq"]["spec"]["secretTargetRef"]
    assert secret_ref == {"parameter": "host", "name": "switchyard", "key": "amqp-url"}
