"""The cert_renewal role on one node without static pods: admin.conf copies, the systemd timer, check mode."""
import json
import os

from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.trees import tree_digest

PLAYBOOK = os.path.join(ROOT, "playbooks", "cert_renewal.yml")


def role_vars(tree, tmp_path):
    return {
        "target": "localhost", "cert_renewal_become": False,
        "cert_renewal_pki_dir": tree.pki_dir, "cert_renewal_kubeconfig_dir": tree.kubeconfig_dir,
        "cert_renewal_kubelet_pki_dir": tree.kubelet_pki_dir,
        "cert_renewal_manifests_dir": os.path.join(tree.kubeconfig_dir, "manifests"),
        "cert_renewal_holding_dir": str(tmp_path / "held"), "cert_renewal_backup_dir": tree.backup_dir,
        "cert_renewal_admin_conf_copies": [str(tmp_path / "home/.kube/config"), str(tmp_path / "nobody/.kube/config")],
        "cert_renewal_timer_enabled": True, "cert_renewal_timer_manage_systemd": False,
        "cert_renewal_timer_unit_dir": str(tmp_path / "units"), "cert_renewal_timer_config_dir": str(tmp_path / "etc"),
    }


def test_role_refreshes_admin_conf_copies_and_writes_the_timer(tree, tmp_path):
    copy = tmp_path / "home/.kube/config"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(tree.read("etc/kubernetes/admin.conf"))
    os.chmod(str(copy), 0o644)
    (tmp_path / "units").mkdir()
    extra = role_vars(tree, tmp_path)

    before = tree_digest(str(tmp_path))
    checked = run_playbook(PLAYBOOK, extra, check=True)
    assert checked.rc == 0, checked.output[-3000:]
    assert tree_digest(str(tmp_path)) == before
    assert "Would restart, one at a time: etcd, kube-apiserver, kube-controller-manager" in checked.output

    run = run_playbook(PLAYBOOK, extra)
    assert run.rc == 0, run.output[-3000:]
    assert copy.read_bytes() == tree.read("etc/kubernetes/admin.conf")
    assert os.stat(str(copy)).st_mode & 0o777 == 0o600
    assert not (tmp_path / "nobody").exists()
    # No static pod manifests on this node: the role says so instead of failing.
    skipped = run.task("not a static pod on this node")
    assert sorted(r["result"]["msg"].split(":")[1].split()[0] for r in skipped if r["status"] == "ok") == \
        ["etcd", "kube-apiserver", "kube-controller-manager"]
    timer = (tmp_path / "units/cplane-cert-renewal.timer").read_text()
    assert "OnCalendar=*-*-01 02:00:00" in timer and "Persistent=true" in timer
    service = (tmp_path / "units/cplane-cert-renewal.service").read_text()
    assert "cplane.kubeadm.cert_renewal" in service and str(tmp_path / "etc/cert-renewal.json") in service
    timer_vars = json.loads((tmp_path / "etc/cert-renewal.json").read_text())
    assert timer_vars["cert_renewal_renew_before_days"] == 30 and timer_vars["cert_renewal_pki_dir"] == tree.pki_dir
    assert timer_vars["cert_renewal_timer_enabled"] is False

    after = tree_digest(str(tmp_path))
    again = run_playbook(PLAYBOOK, extra)
    assert again.rc == 0
    assert tree_digest(str(tmp_path)) == after
    assert not [r for r in again.results if r["result"].get("changed")]


def test_a_refused_certificate_fails_the_role_after_the_others_are_renewed_and_restarted(tree, tmp_path):
    from tests.unit.pki.helpers import wrap_certificate_data
    path = os.path.join(tree.kubeconfig_dir, "scheduler.conf")
    wrap_certificate_data(path)
    extra = dict(role_vars(tree, tmp_path), cert_renewal_timer_enabled=False, cert_renewal_force=True)
    run = run_playbook(PLAYBOOK, extra)
    assert run.rc != 0
    renewal = run.task("Renew the certificates that are due")[0]
    assert renewal["status"] == "ok" and [r["name"] for r in renewal["result"]["refused"]] == ["scheduler.conf"]
    assert len(renewal["result"]["renewed"]) == 10
    # The restart step ran for what was renewed before the run failed.
    assert run.task("not a static pod on this node")
    failed = run.task("Fail for the certificates the renewal refused")[0]
    assert failed["status"] == "failed" and path in failed["result"]["msg"]
