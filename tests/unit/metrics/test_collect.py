"""Collectors of metrics_textfile: what each source becomes, failures as metrics, the atomic write."""
import calendar
import datetime
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _runstate
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import ConnectionFailure, InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._metrics import collect, textfile
from tests.lab import pki

NOW = 1796000000.0


def samples(text):
    """{(name, frozenset(labels)): value} of a rendered textfile (the test's own small parser)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _brace, labels = series.partition("{")
        pairs = []
        for part in labels.rstrip("}").split('",') if labels else []:
            key, _quote, val = part.partition('="')
            pairs.append((key, val.rstrip('"')))
        out[(name, frozenset(pairs))] = float(value)
    return out


def value(text, metric, **labels):
    return samples(text)[(metric, frozenset(labels.items()))]


def settings(tmp_path, **extra):
    base = dict(pki_dir=str(tmp_path / "etc/kubernetes/pki"), kubeconfig_dir=str(tmp_path / "etc/kubernetes"),
                kubelet_pki_dir=str(tmp_path / "var/lib/kubelet/pki"), state_dir=str(tmp_path / "runs"),
                manifests_dir=str(tmp_path / "etc/kubernetes/manifests"), components=["etcd"], probes=["liveness"])
    base.update(extra)
    return base


def test_run_state_becomes_last_success_times_in_unix_seconds(tmp_path):
    state_dir = tmp_path / "runs"
    _runstate.record_run(str(state_dir / "etcd_maintenance.json"), job="etcd_maintenance", host="cp1", started=100.0,
                         finished=160.5, success=True, acted=True, reason="leader",
                         steps={"snapshot": {"success": True, "seconds": 4.25, "finished": 160.0},
                                "defrag": {"success": False, "seconds": 1.0}})
    _runstate.record_run(str(state_dir / "cert_renewal.json"), job="cert_renewal", host="cp1", started=1.0,
                         finished=2.0, success=False, acted=True, reason="x", steps={})
    text, outcome = collect.collect(settings(tmp_path), ["runs"], clock=lambda: NOW)
    assert outcome["runs"]["success"]
    assert value(text, "cplane_kubeadm_run_last_success_timestamp_seconds", run="etcd_maintenance", step="snapshot") == 160
    # Never succeeded: exported as 0, so "no snapshot/defrag for 26 h" fires.
    assert value(text, "cplane_kubeadm_run_last_success_timestamp_seconds", run="etcd_maintenance", step="defrag") == 0
    assert value(text, "cplane_kubeadm_run_step_duration_seconds", run="etcd_maintenance", step="snapshot") == 4.25
    assert value(text, "cplane_kubeadm_run_success", run="cert_renewal") == 0
    assert value(text, "cplane_kubeadm_run_consecutive_failures", run="cert_renewal") == 1
    assert ("cplane_kubeadm_run_last_success_timestamp_seconds",
            frozenset({("run", "cert_renewal"), ("step", "run")})) not in samples(text)
    assert value(text, "cplane_kubeadm_textfile_timestamp_seconds") == NOW


def test_a_broken_state_file_is_a_failed_collector_not_a_missing_file(tmp_path):
    os.makedirs(str(tmp_path / "runs"))
    (tmp_path / "runs" / "etcd_maintenance.json").write_text("{garbage")
    text, outcome = collect.collect(settings(tmp_path), ["runs"], clock=lambda: NOW)
    assert not outcome["runs"]["success"] and "etcd_maintenance.json" in outcome["runs"]["error"]
    assert value(text, "cplane_kubeadm_collector_success", collector="runs") == 0
    assert not [key for key in samples(text) if key[0].startswith("cplane_kubeadm_run_")]


def test_one_failing_collector_leaves_out_only_its_own_samples(tmp_path, monkeypatch):
    def half_then_fail(reg, _settings, _now):
        reg.add("etcd_db_size_bytes", "Size.", 5, member="cp1")
        raise ConnectionFailure("no etcd endpoint answered")

    def crash(reg, _settings, _now):
        raise KeyError("surprise")

    def fine(reg, _settings, _now):
        reg.add("control_plane_nodes", "Nodes.", 3)

    monkeypatch.setattr(collect, "COLLECT", {"etcd": half_then_fail, "kubernetes": crash, "runs": fine})
    text, outcome = collect.collect({}, ["etcd", "kubernetes", "runs"], clock=lambda: NOW)
    assert outcome["etcd"]["error"] == "no etcd endpoint answered"
    assert outcome["kubernetes"]["error"] == "KeyError: 'surprise'"
    assert value(text, "cplane_kubeadm_collector_success", collector="etcd") == 0
    assert value(text, "cplane_kubeadm_collector_success", collector="kubernetes") == 0
    assert value(text, "cplane_kubeadm_collector_success", collector="runs") == 1
    assert value(text, "cplane_kubeadm_control_plane_nodes") == 3
    assert "etcd_db_size_bytes" not in text


def test_certificates_export_not_after_and_seconds_left_for_leaves_and_cas(tmp_path):
    cas = pki.ClusterCAs.create()
    soon = (pki.now() + datetime.timedelta(days=5)).replace(microsecond=0)
    pki.build_node_pki(str(tmp_path), cas, names=["apiserver", "admin.conf"], key_type="ecdsa",
                       not_after={"apiserver": soon})
    now = calendar.timegm(soon.utctimetuple()) - 5 * 86400
    text, outcome = collect.collect(settings(tmp_path), ["certificates"], clock=lambda: now)
    assert outcome["certificates"]["success"], outcome
    leaf = dict(name="apiserver", kind="file", ca="ca", file=str(tmp_path / "etc/kubernetes/pki/apiserver.crt"))
    assert value(text, "cplane_kubeadm_certificate_expiry_timestamp_seconds", **leaf) == calendar.timegm(soon.utctimetuple())
    assert value(text, "cplane_kubeadm_certificate_expires_in_seconds", **leaf) == 5 * 86400
    ca = dict(name="etcd-ca", kind="ca", ca="etcd-ca", file=str(tmp_path / "etc/kubernetes/pki/etcd/ca.crt"))
    assert value(text, "cplane_kubeadm_certificate_expires_in_seconds", **ca) > 5 * 365 * 86400
    admin = dict(name="admin.conf", kind="kubeconfig", ca="ca", file=str(tmp_path / "etc/kubernetes/admin.conf"))
    assert value(text, "cplane_kubeadm_certificate_expires_in_seconds", **admin) > 300 * 86400
    # Not issued on this node: no sample rather than a made-up expiry.
    assert '"etcd-server"' not in text


def test_probe_audit_counts_findings_by_severity_and_stray_files(tmp_path):
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: etcd, namespace: kube-system}\nspec:\n  containers:\n"
           "  - name: etcd\n    image: registry.k8s.io/etcd:3.5.1-0\n    command: [etcd]\n")
    (manifests / "etcd.yaml").write_text(pod)
    (manifests / "etcd.yaml.bak").write_text(pod)
    text, outcome = collect.collect(settings(tmp_path, components=["etcd", "kube-apiserver"]), ["static_pods"],
                                    clock=lambda: NOW)
    assert outcome["static_pods"]["success"], outcome
    assert value(text, "cplane_kubeadm_static_pod_manifest_present", component="etcd") == 1
    assert value(text, "cplane_kubeadm_static_pod_manifest_present", component="kube-apiserver") == 0
    assert value(text, "cplane_kubeadm_static_pod_stray_manifest_files") == 1
    total = sum(value(text, "cplane_kubeadm_static_pod_probe_findings", component="etcd", probe="liveness",
                      severity=severity) for severity in ("critical", "warning", "info"))
    assert total >= 1   # no liveness probe at all is a finding


def test_the_textfile_is_replaced_atomically_and_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "cplane_kubeadm.prom")
    conf = settings(tmp_path)
    result = textfile.write_metrics(path, conf, ["runs"], check_mode=True)
    assert result["changed"] and not os.path.exists(path)
    result = textfile.write_metrics(path, conf, ["runs"])
    assert result["changed"] and result["failed_collectors"] == []
    assert sorted(os.listdir(str(tmp_path))) == ["cplane_kubeadm.prom"]   # no temp file left behind
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert open(path).read() == result["diff"]["after"]


def test_check_mode_before_the_directory_exists_reports_a_change(tmp_path):
    path = str(tmp_path / "not-yet" / "cplane_kubeadm.prom")
    result = textfile.write_metrics(path, settings(tmp_path), ["runs"], check_mode=True)
    assert result["changed"] and not os.path.exists(str(tmp_path / "not-yet"))


@pytest.mark.parametrize("name, message", [("metrics.txt", "must end in .prom"), ("missing/x.prom", "does not exist")])
def test_bad_paths_are_refused_with_what_to_do(tmp_path, name, message):
    with pytest.raises(InputError, match=message):
        textfile.write_metrics(str(tmp_path / name), settings(tmp_path), ["runs"])


def test_unknown_collector_is_refused():
    with pytest.raises(InputError, match="unknown collector"):
        collect.collect({}, ["bogus"])


class FakeApi(object):
    """Answers the reads of the node_version_check backend with plain JSON, as the API would."""

    def __init__(self, nodes, pods):
        self.nodes = nodes
        self.pods = pods

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get(self, what, path, **query):
        if path == "/version":
            return {"gitVersion": "v1.30.4"}
        if path == "/api/v1/nodes":
            return {"items": self.nodes, "metadata": {}}
        if path.endswith("/pods"):
            return {"items": self.pods, "metadata": {}}
        return {"items": []}


def api_node(name, kubelet="v1.30.4", roles=(), ready=True):
    return {"metadata": {"name": name, "labels": {"node-role.kubernetes.io/%s" % r: "" for r in roles}},
            "status": {"nodeInfo": {"kubeletVersion": kubelet},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def static_pod(node, component, version, restarts):
    return {"metadata": {"name": "%s-%s" % (component, node), "labels": {"component": component}},
            "spec": {"nodeName": node,
                     "containers": [{"name": component, "image": "registry.k8s.io/%s:%s" % (component, version)}]},
            "status": {"containerStatuses": [{"name": component, "restartCount": restarts}]}}


def test_kubernetes_collector_counts_control_planes_restarts_and_skew(monkeypatch):
    from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
    nodes = [api_node("cp1", roles=["control-plane"]), api_node("cp2", roles=["master"], ready=False),
             api_node("cp3"), api_node("worker-1", kubelet="v1.26.0")]
    pods = [static_pod("cp1", "kube-apiserver", "v1.30.4", 0), static_pod("cp3", "kube-apiserver", "v1.30.4", 2),
            static_pod("cp1", "etcd", "3.5.15-0", 183)]
    seen = {}

    def connect(timeout=None, **auth):
        seen.update(auth, timeout=timeout)
        return FakeApi(nodes, pods)

    monkeypatch.setattr(_k8s_client, "connect", connect)
    text, outcome = collect.collect({"auth": {"kubeconfig": "/k"}, "api_timeout": 7}, ["kubernetes"],
                                    clock=lambda: NOW)
    assert outcome["kubernetes"]["success"], outcome
    assert seen == {"kubeconfig": "/k", "timeout": 7}
    # cp3 has no role label but runs a static kube-apiserver: a control-plane node too.
    assert value(text, "cplane_kubeadm_control_plane_nodes") == 3
    assert value(text, "cplane_kubeadm_control_plane_nodes_ready") == 2
    assert value(text, "cplane_kubeadm_static_pod_restarts_total", node="cp1", component="etcd") == 183
    assert value(text, "cplane_kubeadm_static_pod_restarts_total", node="cp3", component="kube-apiserver") == 2
    assert "# TYPE cplane_kubeadm_static_pod_restarts_total counter" in text
    # worker-1's kubelet is four minors behind kube-apiserver 1.30 (at most three allowed).
    assert value(text, "cplane_kubeadm_version_skew_violations") == 1
