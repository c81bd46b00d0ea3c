"""Deployment files (deploy/): they parse and refer to files, services and ports that exist.

No container engine or cluster runs here, so these checks stand in for ``docker compose config`` and
``kubectl apply --dry-run``: the structure each tool needs, and every cross-reference between the files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_metrics.engine.thresholds import DEFAULT_METRICS
from llm_metrics.outputs.exporter import exported_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def compose() -> dict[str, Any]:
    [doc] = load_all(DEPLOY / "docker-compose.yml")
    assert isinstance(doc, dict)
    return doc


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for p in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if p.name != "kustomization.yaml":
            docs += load_all(p)
    return docs


def by_kind(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def locustfile_of(args: list[str]) -> str:
    return args[args.index("-f") + 1]


# -- docker compose --------------------------------------------------------------------------------------


def test_compose_has_the_five_services_with_images_or_builds() -> None:
    services = compose()["services"]
    assert set(services) == {"mock", "master", "worker", "prometheus", "grafana"}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name


def test_compose_builds_the_suite_image_from_the_dockerfile_at_the_repo_root() -> None:
    services = compose()["services"]
    for name in ("mock", "master", "worker"):
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file()
        assert services[name]["image"] == services["master"]["image"]


def test_compose_workers_point_at_the_master_service_and_port_and_scale() -> None:
    services = compose()["services"]
    cmd = services["worker"]["command"]
    assert "--worker" in cmd
    assert cmd[cmd.index("--master-host") + 1] == "master"
    assert cmd[cmd.index("--master-port") + 1] == "5557"
    assert services["worker"]["deploy"]["replicas"] >= 1
    assert "--master" in services["master"]["command"]
    assert (ROOT / locustfile_of(cmd)).is_file()
    assert (ROOT / locustfile_of(services["master"]["command"])).is_file()


def test_compose_mock_listens_on_all_interfaces_and_master_targets_it() -> None:
    services = compose()["services"]
    mock = services["mock"]
    assert mock["entrypoint"] == ["python", "-m", "mock_llm"]
    assert mock["command"][mock["command"].index("--host") + 1] == "0.0.0.0"
    port = mock["command"][mock["command"].index("--port") + 1]
    env = services["master"]["environment"]
    assert f"BASE=${{BASE:-http://mock:{port}}}" in env


def test_compose_master_serves_the_exporter_where_prometheus_scrapes() -> None:
    services = compose()["services"]
    env = dict(e.split("=", 1) for e in services["master"]["environment"] if "=" in e)
    assert env["PROMETHEUS_HOST"] == "0.0.0.0"
    prom = load_all(DEPLOY / "prometheus" / "prometheus.yml")[0]
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"master:{env['PROMETHEUS_PORT']}" in targets
    mount = next(v for v in services["prometheus"]["volumes"] if v.endswith(":/etc/prometheus/prometheus.yml:ro"))
    assert (DEPLOY / mount.split(":")[0]).resolve() == DEPLOY / "prometheus" / "prometheus.yml"


def test_compose_gives_the_secrets_to_the_workers_only_and_protects_the_ui() -> None:
    services = compose()["services"]
    # secrets are passed by name from the shell, never written here, and to the workers only
    worker_env = services["worker"]["environment"]
    assert "API_KEY" in worker_env and "LOADTEST_TOKEN" in worker_env
    master_env = services["master"]["environment"]
    assert not [e for e in master_env if e.split("=")[0] in ("API_KEY", "LOADTEST_TOKEN", "ADMIN_PASSWORD")]
    assert "SECRETS_ON_WORKERS=true" in master_env and "SECRETS_ON_WORKERS=true" in worker_env
    assert {e.split("=")[0]: e for e in worker_env}["BASE"] == "BASE=${BASE:-http://mock:8000}"  # binds its secrets
    cmd = services["master"]["command"]
    assert "--web-login" in cmd and cmd[cmd.index("--web-host") + 1] == "0.0.0.0"
    assert any(e.startswith("WEB_LOGIN_PASSWORD=${WEB_LOGIN_PASSWORD:?") for e in master_env)
    assert any(e.startswith("MOCK_CONTROL_TOKEN=") for e in services["mock"]["environment"])


def test_compose_bind_mounts_exist() -> None:
    for name, svc in compose()["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                path = (DEPLOY / src).resolve()
                assert path.exists() or path == (ROOT / "out"), (name, vol)


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


# -- Dockerfile -------------------------------------------------------------------------------------------


def test_dockerfile_copies_paths_that_exist_and_runs_locust() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    copies = re.findall(r"^COPY\s+(.+)$", text, flags=re.M)
    assert copies
    for line in copies:
        *sources, _dest = line.split()
        for src in sources:
            assert (ROOT / src).exists(), src
    packages = re.search(r"include\s*=\s*\[([^\]]*)\]", (ROOT / "pyproject.toml").read_text())
    assert packages is not None
    for pkg in re.findall(r'"([^"*]+)\*?"', packages.group(1)):
        assert f"COPY {pkg}/" in text, f"package {pkg} not copied"
    assert 'ENTRYPOINT ["locust"]' in text
    assert "USER locust" in text


# -- Grafana and Prometheus -------------------------------------------------------------------------------


def test_grafana_provisioning_points_at_the_dashboards_and_the_prometheus_service() -> None:
    services = compose()["services"]
    mounts = dict(tuple(v.split(":")[:2]) for v in services["grafana"]["volumes"])
    assert (DEPLOY / "grafana" / "provisioning").resolve() == (DEPLOY / "./grafana/provisioning").resolve()
    dash_dir = mounts["./grafana/dashboards"]
    [prov] = load_all(DEPLOY / "grafana" / "provisioning" / "dashboards" / "llm-locust.yml")
    assert prov["providers"][0]["options"]["path"] == dash_dir
    [ds] = load_all(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    source = ds["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "llm-locust.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["uid"]}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "llm-locust.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_the_dashboard_only_uses_series_the_exporter_produces() -> None:
    known = exported_names(dict(DEFAULT_METRICS))
    used = {name for e in dashboard_exprs() for name in re.findall(r"\bllm_locust_\w+", e)}
    assert used, "no llm_locust_ series in the dashboard"
    assert used <= known, sorted(used - known)
    # and the headline ones are there
    assert {"llm_locust_ttft_ms", "llm_locust_http_reqs_total", "llm_locust_threshold_ok"} <= used


def test_dashboard_panels_have_unique_ids_and_sane_layout() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "llm-locust.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in p["targets"]), p["title"]
    assert dashboard["uid"] == "llm-locust"


# -- Kubernetes -------------------------------------------------------------------------------------------


def test_every_manifest_has_kind_and_name_and_kustomization_lists_the_files() -> None:
    docs = k8s_docs()
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {
        ("ConfigMap", "llm-locust-config"),
        ("Deployment", "llm-locust-master"),
        ("Service", "llm-locust-master"),
        ("Deployment", "llm-locust-worker"),
    }
    for d in docs:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"]
    [kust] = load_all(DEPLOY / "k8s" / "kustomization.yaml")
    listed = set(kust["resources"])
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_deployments_select_their_own_pods() -> None:
    for d in k8s_docs():
        if d["kind"] == "Deployment":
            selector = d["spec"]["selector"]["matchLabels"]
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), d["metadata"]["name"]


def test_services_select_pods_and_target_named_ports_that_exist() -> None:
    deployments = [d for d in k8s_docs() if d["kind"] == "Deployment"]
    for svc in (d for d in k8s_docs() if d["kind"] == "Service"):
        sel = svc["spec"]["selector"]
        [dep] = [d for d in deployments if sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        port_names = {p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, (svc["metadata"]["name"], port)


def test_workers_reach_the_master_service_and_run_a_locustfile_that_exists() -> None:
    worker = by_kind("Deployment", "llm-locust-worker")
    [c] = worker["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    service = by_kind("Service", "llm-locust-master")
    assert args[args.index("--master-host") + 1] == service["metadata"]["name"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert int(args[args.index("--master-port") + 1]) == ports["master"] == 5557
    assert (ROOT / locustfile_of(args)).is_file()
    master = by_kind("Deployment", "llm-locust-master")
    [mc] = master["spec"]["template"]["spec"]["containers"]
    assert "--master" in mc["args"] and (ROOT / locustfile_of(mc["args"])).is_file()


def test_master_gets_the_configmap_and_exposes_the_exporter_it_configures() -> None:
    cm = by_kind("ConfigMap", "llm-locust-config")
    master = by_kind("Deployment", "llm-locust-master")
    pod = master["spec"]["template"]
    [c] = pod["spec"]["containers"]
    refs = [e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e]
    assert refs == [cm["metadata"]["name"]]
    assert all(isinstance(v, str) for v in cm["data"].values())  # ConfigMap values must be strings
    metrics_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "metrics")
    assert str(metrics_port) == cm["data"]["PROMETHEUS_PORT"] == pod["metadata"]["annotations"]["prometheus.io/port"]
    assert cm["data"]["PROMETHEUS_HOST"] == "0.0.0.0"


def test_the_in_cluster_mock_is_what_base_points_at() -> None:
    cm = by_kind("ConfigMap", "llm-locust-config")
    svc = by_kind("Service", "llm-mock")
    port = svc["spec"]["ports"][0]["port"]
    assert cm["data"]["BASE"] == f"http://{svc['metadata']['name']}:{port}"
    [c] = by_kind("Deployment", "llm-mock")["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["python", "-m", "mock_llm"] and c["args"][c["args"].index("--host") + 1] == "0.0.0.0"


# -- Helm values (deliveryhero/locust) --------------------------------------------------------------------

# Key paths of deliveryhero/locust chart 0.35.0 values.yaml (github.com/deliveryhero/helm-charts,
# stable/locust/values.yaml) that the values file may set; a key outside these would be ignored by the chart.
CHART_KEYS = {
    "loadtest.name",
    "loadtest.locust_locustfile",
    "loadtest.locust_locustfile_path",
    "loadtest.locust_locustfile_configmap",
    "loadtest.locust_lib_configmap",
    "loadtest.locust_host",
    "loadtest.locustCmd",
    "loadtest.headless",
    "loadtest.environment",
    "loadtest.environment_secret",
    "loadtest.environment_external_secret",
    "loadtest.pip_packages",
    "master.image",
    "master.args",
    "master.extraPorts",
    "master.environment",
    "master.resources",
    "worker.image",
    "worker.replicas",
    "worker.args",
    "worker.environment",
    "worker.resources",
}
FREE_FORM = {"loadtest.environment", "loadtest.environment_external_secret", "master.resources", "worker.resources"}


def key_paths(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and path not in FREE_FORM:
            out |= key_paths(v, path + ".")
        else:
            out.add(path)
    return out


def test_helm_values_use_only_the_charts_keys_and_the_images_locustfile() -> None:
    [values] = load_all(DEPLOY / "helm" / "values-deliveryhero-locust.yaml")
    assert key_paths(values) <= CHART_KEYS, sorted(key_paths(values) - CHART_KEYS)
    lt = values["loadtest"]
    # inside the image the repository sits at /app (deploy/Dockerfile: WORKDIR /app)
    assert "WORKDIR /app" in (DEPLOY / "Dockerfile").read_text()
    rel = Path(lt["locust_locustfile_path"]).relative_to("/app") / lt["locust_locustfile"]
    assert (ROOT / rel).is_file()
    assert lt["locust_locustfile_configmap"] == "" and lt["locust_lib_configmap"] == ""
    assert all(isinstance(v, str) for v in lt["environment"].values())


# -- scripts ------------------------------------------------------------------------------------------------


def test_ensure_prometheus_script_is_valid_sh_and_idempotent_by_construction() -> None:
    script = ROOT / "tests" / "e2e" / "ensure_prometheus.sh"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "[ -x /usr/bin/prometheus ]" in text and "exit 0" in text


def test_run_distributed_help_and_argument_split() -> None:
    proc = subprocess.run(
        [sys.executable, str(DEPLOY / "run_distributed.py"), "--help"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0 and "--workers" in proc.stdout


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, False),
        (["-u", "5"], {"BASE": ""}, False),
        (["--base", "http://x"], {}, True),
        (["--host=http://x"], {}, True),
        (["-H", "http://x"], {}, True),
        ([], {"BASE_URL": "http://x"}, True),
    ],
)
def test_run_distributed_starts_the_mock_only_without_a_target(
    args: list[str], env: dict[str, str], expected: bool
) -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        import run_distributed
    finally:
        sys.path.remove(str(DEPLOY))
    assert run_distributed.has_target(args, env) is expected
    ns, rest = run_distributed.parse_args(["--workers", "3", "--", *args])
    assert ns.workers == 3 and rest == args


# -- Kubernetes: security -----------------------------------------------------------------------------------


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in k8s_docs() if d["kind"] == "Deployment"]


def test_every_pod_runs_non_root_read_only_without_privilege_escalation_on_a_pinned_image() -> None:
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged"), name
            image = c["image"]
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", image), (name, image)
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, name  # writable scratch space on a read-only root filesystem


def test_the_target_secrets_are_mounted_on_the_workers_only() -> None:
    cm = by_kind("ConfigMap", "llm-locust-config")
    assert cm["data"]["SECRETS_ON_WORKERS"] == "true"
    specs = dict(pod_specs())

    def secret_names(spec: dict[str, Any]) -> set[str]:
        names = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        for c in spec["containers"]:
            names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
            names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", []) if "valueFrom" in e}
        return names

    assert secret_names(specs["llm-locust-worker"]) == {"llm-locust-secrets"}
    assert secret_names(specs["llm-locust-master"]) == {"llm-locust-web-login"}
    [worker] = specs["llm-locust-worker"]["containers"]
    env = {e["name"]: e["value"] for e in worker["env"]}
    mount = next(m["mountPath"] for m in worker["volumeMounts"] if m["name"] == "secrets")
    assert env["API_KEY_FILE"] == f"{mount}/API_KEY" and env["LOADTEST_TOKEN_FILE"] == f"{mount}/LOADTEST_TOKEN"
    assert any(e.get("configMapRef", {}).get("name") == "llm-locust-config" for e in worker["envFrom"])
    [master] = specs["llm-locust-master"]["containers"]
    assert "--web-login" in master["args"] and master["args"][master["args"].index("--web-host") + 1] == "0.0.0.0"
    login_mount = next(m["mountPath"] for m in master["volumeMounts"] if m["name"] == "web-login")
    assert {e["name"]: e["value"] for e in master["env"]}["WEB_LOGIN_PASSWORD_FILE"].startswith(login_mount + "/")


def test_only_worker_pods_may_reach_the_master_port() -> None:
    policy = by_kind("NetworkPolicy", "llm-locust-master")
    master_labels = by_kind("Deployment", "llm-locust-master")["spec"]["template"]["metadata"]["labels"]
    worker_labels = by_kind("Deployment", "llm-locust-worker")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= master_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules_5557 = [r for r in policy["spec"]["ingress"] if any(p["port"] == 5557 for p in r.get("ports", []))]
    assert len(rules_5557) == 1 and [p["port"] for p in rules_5557[0]["ports"]] == [5557]
    [source] = rules_5557[0]["from"]
    selector = source["podSelector"]["matchLabels"]
    assert selector.items() <= worker_labels.items() and not selector.items() <= master_labels.items()
    mock = by_kind("NetworkPolicy", "llm-mock")
    assert mock["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "llm-locust"
    }


def test_the_mock_in_the_cluster_takes_its_control_token_from_a_secret() -> None:
    [c] = by_kind("Deployment", "llm-mock")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "mock-control")
    assert env["MOCK_CONTROL_TOKEN_FILE"] == f"{mount}/MOCK_CONTROL_TOKEN"
