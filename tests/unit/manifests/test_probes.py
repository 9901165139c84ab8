"""Audit rules, kill windows and kubeadm's recommended probes (pure logic)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probes

SEED = {"exec": {"command": ["/bin/sh", "-ec", "ETCDCTL_API=3 etcdctl --endpoints=https://[127.0.0.1]:2379 "
                             "--cacert=/etc/kubernetes/pki/etcd/ca.crt get foo"]},
        "failureThreshold": 8, "initialDelaySeconds": 15, "timeoutSeconds": 15}


def etcd(image="registry.k8s.io/etcd:3.5.12-0", **probes_):
    container = {"name": "etcd", "image": image,
                 "command": ["etcd", "--listen-metrics-urls=http://127.0.0.1:2381", "--name=cp1"]}
    container.update(probes_)
    return container


def rules(findings):
    return {f["rule"]: f["severity"] for f in findings}


def test_seed_exec_probe_is_critical_and_its_kill_window_counts_timeouts():
    found = rules(probes.audit_probe(etcd(livenessProbe=SEED), "liveness"))
    assert found["linearizable-etcd-read"] == "critical"
    assert found["no-startup-probe"] == "warning"
    window = probes.kill_window(SEED)
    assert window["fast_failure_seconds"] == 15 + 7 * 10
    # kubelet's ticker keeps the tick a 15 s probe misses: timed-out probes repeat every 15 s
    assert window["hung_seconds"] == 135 == 15 + 8 * 15
    assert window["hung_probe_interval_seconds"] == 15
    assert "1.20" in window["exec_timeout_note"] and "--command-timeout" in window["exec_timeout_note"]


@pytest.mark.parametrize("timing,hung", [
    (dict(initialDelaySeconds=10, periodSeconds=10, timeoutSeconds=15, failureThreshold=8), 130),  # kubeadm liveness
    (dict(initialDelaySeconds=0, periodSeconds=10, timeoutSeconds=5, failureThreshold=3), 30),     # timeout < period
    (dict(initialDelaySeconds=0, periodSeconds=1, timeoutSeconds=15, failureThreshold=3), 45),     # kubeadm readiness
    (dict(initialDelaySeconds=5, periodSeconds=10, timeoutSeconds=35, failureThreshold=2), 75),
])
def test_hung_kill_window_is_delay_plus_failures_times_max_of_period_and_timeout(timing, hung):
    probe = dict(timing, httpGet={"path": "/livez", "port": 2381})
    window = probes.kill_window(probe)
    assert window["hung_seconds"] == hung
    assert "exec_timeout_note" not in window


def test_kubeadm_recommended_liveness_kill_window_is_130_seconds():
    rec = probes.recommended_probes("etcd", (3, 5, 12), etcd())
    assert probes.kill_window(rec["liveness"])["hung_seconds"] == 10 + 8 * 15 == 130
    found = [f for f in probes.audit_probe(etcd(livenessProbe=rec["liveness"], startupProbe=rec["startup"]),
                                           "liveness", version=(3, 5, 12)) if f["rule"] == "timeout-not-below-period"]
    assert "repeat every 15s, not every 10s" in found[0]["message"] and "about 130s" in found[0]["message"]


def test_etcd_recommended_probes_follow_the_version():
    new = probes.recommended_probes("etcd", (3, 5, 12), etcd())
    assert new["liveness"]["httpGet"] == {"host": "127.0.0.1", "path": "/livez", "port": 2381, "scheme": "HTTP"}
    assert new["readiness"]["httpGet"]["path"] == "/readyz" and new["readiness"]["periodSeconds"] == 1
    assert new["startup"]["failureThreshold"] == 24
    old = probes.recommended_probes("etcd", (3, 5, 1), etcd("registry.k8s.io/etcd:3.5.1-0"))
    assert old["liveness"]["httpGet"]["path"] == "/health?exclude=NOSPACE&serializable=true"
    assert old["startup"]["httpGet"]["path"] == "/health?serializable=false"
    assert old["readiness"] is None
    assert (old["liveness"]["initialDelaySeconds"], old["liveness"]["timeoutSeconds"],
            old["liveness"]["failureThreshold"], old["liveness"]["periodSeconds"]) == (10, 15, 8, 10)
    with pytest.raises(InputError, match="3.4"):
        probes.recommended_probes("etcd", (3, 3, 15), etcd())


def test_control_plane_recommended_probes_use_their_flags():
    api = {"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.30.2",
           "command": ["kube-apiserver", "--advertise-address=10.0.0.5", "--secure-port=6443"]}
    rec = probes.recommended_probes(_kubeadm.component_of(api), _kubeadm.image_version(api["image"]), api)
    assert rec["liveness"]["httpGet"] == {"host": "10.0.0.5", "path": "/livez", "port": 6443, "scheme": "HTTPS"}
    assert rec["readiness"]["httpGet"]["path"] == "/readyz"
    kcm = {"name": "kube-controller-manager", "image": "registry.k8s.io/kube-controller-manager:v1.30.2",
           "command": ["kube-controller-manager", "--bind-address=127.0.0.1"]}
    rec = probes.recommended_probes("kube-controller-manager", (1, 30, 2), kcm)
    assert rec["liveness"]["httpGet"]["port"] == 10257 and rec["readiness"] is None
    sched = {"name": "kube-scheduler", "image": "registry.k8s.io/kube-scheduler:v1.30.2", "command": ["kube-scheduler"]}
    assert probes.recommended_probes("kube-scheduler", (1, 30, 2), sched)["startup"]["httpGet"]["port"] == 10259


def test_scheduler_probes_and_named_port_follow_the_kubeadm_version():
    """kubeadm 1.32 moved kube-scheduler to /livez and /readyz; 1.34 probes the named port 'probe-port'."""
    old = {"name": "kube-scheduler", "image": "registry.k8s.io/kube-scheduler:v1.31.4", "command": ["kube-scheduler"]}
    rec = probes.recommended_probes("kube-scheduler", (1, 31, 4), old)
    assert rec["liveness"]["httpGet"]["path"] == "/healthz" and rec["readiness"] is None
    new = {"name": "kube-scheduler", "image": "registry.k8s.io/kube-scheduler:v1.37.2", "command": ["kube-scheduler"],
           "ports": [{"containerPort": 10259, "name": "probe-port", "protocol": "TCP"}]}
    rec = probes.recommended_probes("kube-scheduler", (1, 37, 2), new)
    assert rec["liveness"]["httpGet"] == {"host": "127.0.0.1", "path": "/livez", "port": "probe-port", "scheme": "HTTPS"}
    assert rec["readiness"]["httpGet"]["path"] == "/readyz" and rec["startup"]["httpGet"]["path"] == "/livez"
    # kubeadm's own probe, named port and all, is recognised as kubeadm's default.
    found = rules(probes.audit_probe(dict(new, livenessProbe=rec["liveness"], startupProbe=rec["startup"]), "liveness",
                                     version=(1, 37, 2)))
    assert found == {"timeout-not-below-period": "info"}
    # kubeadm omits zero values: its readiness probe has no initialDelaySeconds, and neither has ours.
    assert "initialDelaySeconds" not in rec["readiness"] and rec["liveness"]["initialDelaySeconds"] == 10
    explicit = dict(rec["readiness"], initialDelaySeconds=0)
    found = rules(probes.audit_probe(dict(new, readinessProbe=explicit), "readiness", version=(1, 37, 2)))
    assert found == {"timeout-not-below-period": "info"}   # the same probe, spelt out
    # A named port that is not the probe's own port is left alone (the number is written).
    other = dict(new, ports=[{"containerPort": 9999, "name": "probe-port"}])
    assert probes.recommended_probes("kube-scheduler", (1, 37, 2), other)["liveness"]["httpGet"]["port"] == 10259


def test_health_without_nospace_exclusion_and_non_loopback_and_identical_probes():
    health = {"httpGet": {"host": "10.0.0.5", "path": "/health", "port": 2381, "scheme": "HTTP"},
              "periodSeconds": 10, "timeoutSeconds": 5}
    found = rules(probes.audit_probe(etcd(livenessProbe=health, readinessProbe=dict(health)), "liveness"))
    assert found["etcd-health-includes-nospace"] == "critical"
    assert found["liveness-needs-quorum"] == "critical"
    assert found["non-loopback-target"] == "warning"
    assert found["liveness-equals-readiness"] == "warning"
    assert "timeout-not-below-period" not in found


def test_kubeadm_probe_for_old_etcd_is_flagged_for_ignoring_serializable():
    container = etcd("registry.k8s.io/etcd:3.5.1-0")
    rec = probes.recommended_probes("etcd", (3, 5, 1), container)
    container.update(livenessProbe=rec["liveness"], startupProbe=rec["startup"])
    found = rules(probes.audit_probe(container, "liveness", version=(3, 5, 1)))
    assert found["etcd-health-ignores-serializable"] == "critical"
    assert found["timeout-not-below-period"] == "info"   # kubeadm's own 15 s / 10 s
    new = etcd()
    rec = probes.recommended_probes("etcd", (3, 5, 12), new)
    new.update(livenessProbe=rec["liveness"], startupProbe=rec["startup"])
    assert not [f for f in probes.audit_probe(new, "liveness", version=(3, 5, 12)) if f["severity"] != "info"]


def test_stray_files_in_the_manifests_directory():
    files = [("etcd.yaml", "etcd"), ("etcd.yaml.bak", "etcd"), ("kube-apiserver.yaml.bak", "kube-apiserver"),
             ("notes.txt", None), ("kube-scheduler.yaml", "kube-scheduler")]
    findings = probes.audit_manifest_files(files, "/etc/kubernetes/manifests/etcd.yaml")
    text = " ".join(f["message"] for f in findings)
    assert "etcd.yaml.bak" in text and "kube-apiserver.yaml.bak" in text and "notes.txt" in text
    assert "kube-scheduler.yaml" not in text.replace("kube-scheduler.yaml.", "")
    assert len(findings) == 3


def test_image_versions():
    assert _kubeadm.image_version("registry.k8s.io/etcd:3.5.12-0") == (3, 5, 12)
    assert _kubeadm.image_version("registry.k8s.io/kube-apiserver:v1.30.2") == (1, 30, 2)
    assert _kubeadm.image_version("localhost:5000/etcd") is None
