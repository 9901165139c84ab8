"""The shipped alert rules fire in a real Prometheus scraping a real node_exporter over what the role wrote.

The lab: three etcd members run as static pods under kubelet doubles with the seed's exec liveness probe
(seeds/000, time-scaled), cp1's kubeadm PKI with the API server certificate 5 days from expiry, and the
Kubernetes API double serving the three control-plane nodes and the kubelet doubles' live pods (restart
counts). The control_plane_metrics role writes the textfile before and after cp1's etcd is restarted by
its probe; Prometheus (1 s scrape and rule evaluation, docs/monitoring/rules.yml unchanged) must then
report the certificate and restart alerts firing through /api/v1/alerts - and none of the alerts whose
condition the lab does not meet.
"""
import datetime
import os
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.integration.monitoring.promstack import NodeExporter, Prometheus, program
from tests.lab import pki
from tests.lab.ansible_run import run_playbook
from tests.lab.api_double import ApiDouble, Cluster, Node
from tests.lab.etcd_cluster import ETCD_CERTS
from tests.lab.static_pods import KubeletEtcdLab
from ansible_collections.cplane.kubeadm.plugins.module_utils import _runstate

PLAYBOOK = os.path.join(ROOT, "playbooks", "control_plane_metrics.yml")
RULES = os.path.join(ROOT, "docs", "monitoring", "rules.yml")
SCALE = 0.06
TEXTFILE = "cplane_kubeadm.prom"


@pytest.fixture
def monitored(tmp_path):
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, probe="seed", time_scale=SCALE) as lab:
        cp1 = lab.member("cp1")
        others = [name for name in pki.table.CERTIFICATES if name not in ETCD_CERTS]
        pki.build_node_pki(cp1.root, lab.cas, node="cp1", names=others, key_type="ecdsa",
                           not_after={"apiserver": pki.now() + datetime.timedelta(days=5)})
        cluster = Cluster([Node(m.name, "v1.30.4", control_plane=True) for m in lab.members], api_version="v1.30.4")
        live_pods = [lambda: [pod for double in list(lab.doubles.values()) for pod in double.pods()]]
        textfiles = tmp_path / "textfile"
        textfiles.mkdir()
        with ApiDouble(str(tmp_path / "api"), cluster, cas=lab.cas, kubelets=live_pods) as api, \
                NodeExporter(str(textfiles), str(tmp_path)) as exporter, \
                Prometheus(str(tmp_path), [exporter.address], [RULES]) as prometheus:
            yield lab, api, exporter, prometheus, tmp_path


def role_vars(lab, api, tmp_path):
    cp1 = lab.member("cp1")
    connection = lab.connection_args()
    return {
        "target": "localhost", "control_plane_metrics_become": False,
        "control_plane_metrics_textfile_dir": str(tmp_path / "textfile"),
        "control_plane_metrics_pki_dir": cp1.pki_dir,
        "control_plane_metrics_kubeconfig_dir": os.path.join(cp1.root, "etc/kubernetes"),
        "control_plane_metrics_kubelet_pki_dir": os.path.join(cp1.root, "var/lib/kubelet/pki"),
        "control_plane_metrics_etcd_endpoints": [cp1.client_url],
        "control_plane_metrics_etcd_ca_cert": connection["ca_cert"],
        "control_plane_metrics_etcd_client_cert": connection["client_cert"],
        "control_plane_metrics_etcd_client_key": connection["client_key"],
        "control_plane_metrics_manifests_dir": cp1.manifests_dir,
        "control_plane_metrics_kubeconfig": api.kubeconfig,
        "control_plane_metrics_state_dir": str(tmp_path / "runs"),
    }


def write_metrics(lab, api, tmp_path):
    run = run_playbook(PLAYBOOK, role_vars(lab, api, tmp_path))
    assert run.rc == 0, run.output[-4000:]
    result = run.task("Write the control plane's metrics")[0]["result"]
    assert result["failed_collectors"] == [], result["collectors"]
    return result


def firing(prometheus, alertname, **labels):
    return [a for a in prometheus.alerts() if a["labels"].get("alertname") == alertname and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def restarts_seen(prometheus, at_least):
    values = prometheus.query('cplane_kubeadm_static_pod_restarts_total{node="cp1",component="etcd"}')
    return values and all(v >= at_least for v in values.values())


@pytest.mark.slow
def test_certificate_and_restart_alerts_fire_from_the_shipped_rules(monitored):
    lab, api, exporter, prometheus, tmp_path = monitored
    started = time.monotonic()
    lab.etcdctl("put", "foo", "bar")
    # A snapshot an hour ago (the unattended run's record): the snapshot alert must stay quiet.
    _runstate.record_run(str(tmp_path / "runs" / "etcd_maintenance.json"), job="etcd_maintenance", host="cp1",
                         started=time.time() - 3700, finished=time.time() - 3600, success=True, acted=True,
                         reason="local member is the leader",
                         steps={"snapshot": {"success": True, "seconds": 2.0, "finished": time.time() - 3600}})

    # Before the fault: the role writes the file, node_exporter serves it, Prometheus has the counter at 0.
    first = write_metrics(lab, api, tmp_path)
    assert first["changed"] and first["path"] == str(tmp_path / "textfile" / TEXTFILE)
    before = prometheus.wait_for(
        lambda p: p.query('cplane_kubeadm_static_pod_restarts_total{node="cp1",component="etcd"}'), 60,
        "the etcd restart counter of cp1")
    # 0 unless the loaded machine made the probe time out already; the alert counts the increase from here.
    before = list(before.values())[0]
    assert 0 <= before <= lab.restart_count("cp1")
    with open(first["path"]) as handle:
        text = handle.read()
    check = subprocess.run([program("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr
    # node_exporter accepted the file (it exports an error flag per scrape of the directory).
    assert "node_textfile_scrape_error 0" in exporter.metrics()

    # The seed outage: two members stopped, the survivor's `etcdctl get foo` probe times out, kubelet kills it.
    lab.remove_manifest("cp2")
    lab.remove_manifest("cp3")
    lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") >= before + 3, timeout=180,
                               what="cp1 restarted 3 more times")
    lab.restore_manifest("cp2")
    lab.restore_manifest("cp3")
    lab.wait_healthy(timeout=90)
    restarts = lab.restart_count("cp1")

    second = write_metrics(lab, api, tmp_path)
    assert second["changed"]
    prometheus.wait_for(lambda p: restarts_seen(p, restarts), 60, "cp1's etcd restart count %d" % restarts)

    restarting = prometheus.wait_for(
        lambda p: firing(p, "CplaneKubeadmStaticPodRestarting", node="cp1", component="etcd"), 60,
        "CplaneKubeadmStaticPodRestarting for etcd on cp1")
    assert restarting[0]["labels"]["severity"] == "critical"
    assert float(restarting[0]["value"]) >= 3
    critical = prometheus.wait_for(lambda p: firing(p, "CplaneKubeadmCertificateExpiringCritical"), 60,
                                   "CplaneKubeadmCertificateExpiringCritical")
    warning = firing(prometheus, "CplaneKubeadmCertificateExpiringSoon")
    # Only the API server certificate is that close; everything else has a year (CAs ten).
    assert [a["labels"]["name"] for a in critical] == ["apiserver"]
    assert [a["labels"]["name"] for a in warning] == ["apiserver"]
    assert critical[0]["labels"]["file"] == os.path.join(lab.member("cp1").pki_dir, "apiserver.crt")
    assert critical[0]["labels"]["severity"] == "critical" and critical[0]["labels"]["ca"] == "ca"
    assert 4 * 86400 < float(critical[0]["value"]) <= 5 * 86400
    # The seed's probe itself is flagged.
    assert firing(prometheus, "CplaneKubeadmStaticPodProbeCritical", component="etcd", probe="liveness")

    # What the lab does not have does not alert: three control-plane nodes, no skew, no alarm, quorum back,
    # a recent snapshot, every collector working.
    names = {a["labels"]["alertname"] for a in prometheus.alerts()}
    for quiet in ("CplaneKubeadmSingleControlPlane", "CplaneKubeadmVersionSkew", "CplaneKubeadmEtcdNoSpace",
                  "CplaneKubeadmEtcdNoQuorum", "CplaneKubeadmEtcdSnapshotMissing", "CplaneKubeadmCollectorFailing",
                  "CplaneKubeadmEtcdFragmented", "CplaneKubeadmMetricsStale"):
        assert quiet not in names, quiet
    assert set(prometheus.query("cplane_kubeadm_collector_success").values()) == {1.0}
    assert set(prometheus.query("cplane_kubeadm_control_plane_nodes").values()) == {3.0}
    assert set(prometheus.query("cplane_kubeadm_etcd_voting_members").values()) == {3.0}
    sizes = prometheus.query("cplane_kubeadm_etcd_db_size_bytes")
    assert sorted(dict(labels)["member"] for labels in sizes) == ["cp1", "cp2", "cp3"] and min(sizes.values()) > 0
    assert len(prometheus.query("cplane_kubeadm_etcd_db_fragmentation_ratio")) == 3
    assert len(prometheus.query("cplane_kubeadm_etcd_leader_changes_seen_total >= 1")) == 3
    snapshot = prometheus.query('cplane_kubeadm_run_last_success_timestamp_seconds{step="snapshot"}')
    assert len(snapshot) == 1 and abs(time.time() - 3600 - list(snapshot.values())[0]) < 300
    print("monitoring integration: %.1f s" % (time.monotonic() - started))
