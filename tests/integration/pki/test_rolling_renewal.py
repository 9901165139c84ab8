"""End to end: real etcd members as static pods under kubelet doubles, serving certificates near
expiry; the cert_renewal playbook renews them and restarts the members one at a time while a client
keeps writing."""
import datetime
import os
import socket
import ssl
import threading
import time

import pytest
import yaml
from cryptography import x509

from tests.lab import pki
from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.etcd_cluster import ETCD_CERTS, Member
from tests.lab.ports import free_port
from tests.lab.static_pods import KubeletEtcdLab
from tests.lab.trees import tree_digest

PLAYBOOK = os.path.join(ROOT, "playbooks", "cert_renewal.yml")


class NearExpiryEtcdLab(KubeletEtcdLab):
    """Members whose etcd serving certificate expires in five days."""

    def _new_member(self, index):
        name = "cp%d" % (index + 1)
        root = os.path.join(self.workdir, name)
        pki.build_node_pki(root, self.cas, node=name, names=ETCD_CERTS, key_type=self.key_type,
                           not_after={"etcd-server": pki.now() + datetime.timedelta(days=5)})
        return Member(name, root, free_port(), free_port(), free_port())


@pytest.fixture
def lab(tmp_path):
    with NearExpiryEtcdLab(str(tmp_path / "lab"), size=3, time_scale=0.2) as running:
        yield running


def write_inventory(lab, directory, overrides=None):
    hosts = {}
    for member in lab.members:
        hosts[member.name] = {
            "ansible_connection": "local",
            "cert_renewal_pki_dir": member.pki_dir,
            "cert_renewal_kubeconfig_dir": os.path.join(member.root, "etc/kubernetes"),
            "cert_renewal_kubelet_pki_dir": os.path.join(member.root, "var/lib/kubelet/pki"),
            "cert_renewal_manifests_dir": member.manifests_dir,
            "cert_renewal_holding_dir": os.path.join(member.root, "var/lib/cplane-held"),
            "cert_renewal_backup_dir": os.path.join(directory, "backups", member.name),
            "cert_renewal_etcd_metrics_port": member.metrics_port,
            "cert_renewal_stop_detection": "health",
            "cert_renewal_poll_interval": 1,
            "cert_renewal_start_timeout": 60,
            "cert_renewal_admin_conf_copies": [],
        }
        hosts[member.name].update((overrides or {}).get(member.name, {}))
    path = os.path.join(directory, "inventory.yml")
    with open(path, "w") as handle:
        yaml.safe_dump({"all": {"children": {"kube_control_plane": {"hosts": hosts}}}}, handle)
    return path


def presented_certificate(lab, member):
    """The certificate a member presents in a TLS handshake on its client port."""
    context = ssl.create_default_context(cafile=lab.ca_cert)
    context.load_cert_chain(lab.client_cert, lab.client_key)
    with socket.create_connection(("127.0.0.1", member.client_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def disk_certificate(member):
    with open(os.path.join(member.pki_dir, "etcd/server.crt"), "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def pki_digest(lab):
    return {m.name: tree_digest(os.path.join(m.root, "etc/kubernetes")) for m in lab.members}


class Writer(threading.Thread):
    """Writes keys without pause, each through the first member that answers; records what was acknowledged."""

    def __init__(self, lab):
        super(Writer, self).__init__(daemon=True)
        self.clients = [lab.client(m, timeout=2) for m in lab.members]
        self.stop_event = threading.Event()
        self.acked, self.failed = [], []

    def run(self):
        index = 0
        while not self.stop_event.is_set():
            key, value = "/renewal/%06d" % index, "v%d" % index
            deadline = time.monotonic() + 10
            done = False
            while not done and time.monotonic() < deadline:
                for client in self.clients:
                    try:
                        client.put(key, value)
                        done = True
                        break
                    except Exception:
                        continue
                if not done:
                    time.sleep(0.1)
            (self.acked if done else self.failed).append(key)
            index += 1
            time.sleep(0.01)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=30)


def test_rolling_renewal_of_etcd_serving_certificates(lab, tmp_path):
    inventory = write_inventory(lab, str(tmp_path))
    old_serials = {m.name: presented_certificate(lab, m).serial_number for m in lab.members}
    assert old_serials == {m.name: disk_certificate(m).serial_number for m in lab.members}
    pids = {m.name: lab.pid(m.name) for m in lab.members}
    extra = {"cert_renewal_become": False}

    # Check mode: reports, touches nothing, restarts nothing.
    digest = pki_digest(lab)
    checked = run_playbook(PLAYBOOK, extra, check=True, inventory=inventory)
    assert checked.rc == 0, checked.output[-4000:]
    would = checked.task("Renew the certificates that are due")
    assert [r["result"]["renewed"][0]["name"] for r in would] == ["etcd-server"] * 3
    assert pki_digest(lab) == digest and {m.name: lab.pid(m.name) for m in lab.members} == pids

    writer = Writer(lab)
    writer.start()
    try:
        run = run_playbook(PLAYBOOK, extra, inventory=inventory)
    finally:
        writer.finish()
    assert run.rc == 0, run.output[-6000:]

    # Each member now presents its new certificate, which chains to the etcd CA and lasts a year.
    for member in lab.members:
        presented = presented_certificate(lab, member)
        assert presented.serial_number != old_serials[member.name]
        assert presented.serial_number == disk_certificate(member).serial_number
        drift = (pki.now() + datetime.timedelta(days=365) - presented.not_valid_after_utc).total_seconds()
        assert abs(drift) < 300
        assert lab.pid(member.name) != pids[member.name]

    # One member at a time, in inventory order: each member's manifest went out and came back
    # (and the member answered healthy) before the next member's manifest moved.
    steps = [(r["host"], r["task"].split("|")[1].split(":")[0].strip()) for r in run.results
             if (r["task"] or "").startswith("Restart static pod |") and r["status"] == "ok"
             and "manifest" in r["task"] or "answers healthy" in (r["task"] or "")]
    order = [(h, s) for h, s in steps if s in ("move the manifest out of the manifests directory",
                                               "move the manifest back", "wait until it answers healthy")]
    expected = []
    for name in ("cp1", "cp2", "cp3"):
        expected += [(name, "move the manifest out of the manifests directory"), (name, "move the manifest back"),
                     (name, "wait until it answers healthy")]
    assert order == expected, order

    # The cluster stayed available: every write was acknowledged, none lost.
    assert writer.failed == [] and len(writer.acked) > 50
    client = lab.client(lab.members[2])
    stored = {meta.key.decode() for _value, meta in client.get_prefix("/renewal/")}
    assert set(writer.acked) <= stored

    # A second run renews and restarts nothing and leaves the PKI byte-identical.
    digest = pki_digest(lab)
    pids = {m.name: lab.pid(m.name) for m in lab.members}
    again = run_playbook(PLAYBOOK, extra, inventory=inventory)
    assert again.rc == 0, again.output[-4000:]
    assert all(r["result"]["changed"] is False for r in again.task("Renew the certificates that are due"))
    assert pki_digest(lab) == digest and {m.name: lab.pid(m.name) for m in lab.members} == pids


def test_rollout_stops_at_the_first_component_that_does_not_come_back(lab, tmp_path):
    # cp2's health endpoint is configured wrong (nothing listens there): after its restart the role
    # cannot see it healthy, so the rollout must stop with cp3 untouched.
    wrong = free_port()
    inventory = write_inventory(lab, str(tmp_path), overrides={"cp2": {
        "cert_renewal_etcd_metrics_port": wrong, "cert_renewal_require_healthy_before": False,
        "cert_renewal_start_timeout": 3}})
    old_cp3 = disk_certificate(lab.member("cp3")).serial_number
    pid_cp3 = lab.pid("cp3")
    run = run_playbook(PLAYBOOK, {"cert_renewal_become": False}, inventory=inventory)
    assert run.rc != 0
    failure = [r for r in run.results if r["status"] == "failed" and r["task"].startswith("Restart static pod | stop the rollout")]
    assert [r["host"] for r in failure] == ["cp2"]
    message = failure[0]["result"]["msg"]
    assert "etcd on cp2 did not come back healthy" in message and str(wrong) in message and "rollout stopped" in message
    assert os.path.exists(lab.manifest_path("cp2"))   # the manifest is back in place
    assert disk_certificate(lab.member("cp3")).serial_number == old_cp3 and lab.pid("cp3") == pid_cp3
    assert not [r for r in run.results if r["host"] == "cp3"]
    # The member itself did come back: the manifest was restored.
    lab.wait_healthy([lab.member("cp2")], timeout=30)
