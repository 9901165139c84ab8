"""The lab node's programs without a node: the systemctl double's unit parsing, the kubelet double's flags."""
import subprocess
import sys

from tests.lab import node_kubelet, node_systemctl
from tests.lab.cluster import KUBEADM_DROPIN, KUBELET_UNIT


def _units(tmp_path, monkeypatch, dropin=KUBEADM_DROPIN):
    unit_dir = tmp_path / "system"
    (unit_dir / "kubelet.service.d").mkdir(parents=True)
    (unit_dir / "kubelet.service").write_text(KUBELET_UNIT)
    (unit_dir / "kubelet.service.d" / "10-kubeadm.conf").write_text(dropin)
    monkeypatch.setattr(node_systemctl, "UNIT_DIR", str(unit_dir))
    monkeypatch.setattr(node_systemctl, "WANTS", str(unit_dir / "multi-user.target.wants"))
    monkeypatch.setattr(node_systemctl, "STATE_DIR", str(tmp_path / "state"))
    return unit_dir


def test_exec_start_of_the_kubeadm_dropin_expands_like_systemd(tmp_path, monkeypatch):
    _units(tmp_path, monkeypatch, KUBEADM_DROPIN.replace("/var/lib/kubelet/kubeadm-flags.env",
                                                         str(tmp_path / "flags.env")))
    (tmp_path / "flags.env").write_text('KUBELET_KUBEADM_ARGS="--node-ip=10.77.1.11 --hostname-override=cp1"\n')
    spec = node_systemctl.load_unit("kubelet.service")
    argv, _env = node_systemctl.command_line(spec)
    # the drop-in's empty ExecStart= resets the unit's; $VAR splits into words; a missing "-" file is skipped
    assert argv == ["/usr/local/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                    "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml",
                    "--node-ip=10.77.1.11", "--hostname-override=cp1"]
    assert spec["restart"] == "always" and spec["restart_sec"] == 10.0


def test_unknown_unit_is_not_found_and_enable_makes_the_wants_link(tmp_path, monkeypatch, capsys):
    unit_dir = _units(tmp_path, monkeypatch)
    assert node_systemctl.main(["status", "containerd"]) == 4
    assert "could not be found" in capsys.readouterr().err
    node_systemctl.main(["show", "containerd"])
    assert "LoadState=not-found" in capsys.readouterr().out
    assert node_systemctl.main(["is-enabled", "kubelet"]) == 1
    assert node_systemctl.main(["enable", "kubelet.service"]) == 0
    assert (unit_dir / "multi-user.target.wants" / "kubelet.service").is_symlink()
    capsys.readouterr()
    assert node_systemctl.main(["is-enabled", "kubelet"]) == 0
    assert capsys.readouterr().out == "enabled\n"
    node_systemctl.main(["show", "kubelet"])
    props = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert (props["LoadState"], props["ActiveState"], props["SubState"], props["UnitFileState"]) == \
        ("loaded", "inactive", "dead", "enabled")
    assert node_systemctl.main(["is-active", "kubelet"]) == 3


def test_kubelet_launcher_reports_its_own_version(tmp_path):
    launcher = tmp_path / "kubelet"
    launcher.write_text(node_kubelet.kubelet_launcher("1.37.2"))
    launcher.chmod(0o755)
    out = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, check=True).stdout
    assert out == "Kubernetes v1.37.2\n"
    missing = subprocess.run([str(launcher), "--config", str(tmp_path / "none.yaml")], capture_output=True, text=True,
                             check=False)
    assert missing.returncode == 1 and "failed to load kubelet config file" in missing.stderr


def test_flags_in_both_spellings():
    flags, rest = node_kubelet.parse_flags(["--config", "/c.yaml", "--node-ip=10.0.0.1", "--v=2", "extra"])
    assert flags == {"config": "/c.yaml", "node-ip": "10.0.0.1", "v": "2"} and rest == ["extra"]
    assert sys.executable in node_kubelet.kubelet_launcher("1.36.3")
