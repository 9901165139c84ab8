"""Lab nodes without a cluster: isolation, and that a crashed run's leftovers get removed."""
import os
import signal
import subprocess
import sys
import textwrap

from tests.lab import nodes


CRASHING = textwrap.dedent("""
    import os, subprocess, sys, tempfile
    sys.path[:0] = [%r]
    import tests.conftest
    from tests.lab import nodes
    net = nodes.LabNetwork().create()
    node = nodes.LabNode(net, 1, "crash1", tempfile.mkdtemp()).start()
    node.popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(net.id, node.holder.pid, node.netns, flush=True)
    os.kill(os.getpid(), 9)     # no atexit, no stop(): a crashed test run
""")


def test_a_node_has_its_own_paths_address_and_name(tmp_path):
    net = nodes.LabNetwork().create()
    node = None
    try:
        node = nodes.LabNode(net, 1, "n1", str(tmp_path / "n1")).start()
        with open(node.host_path("/etc/kubernetes/marker"), "w") as handle:
            handle.write("n1")
        out = node.run(["sh", "-c", "hostname; cat /etc/kubernetes/marker; echo; ip -4 -o addr show eth0"]).stdout.split("\n")
        assert out[0] == "n1" and out[1] == "n1" and " %s/24 " % node.address in out[2]
        assert not os.path.exists("/etc/kubernetes/marker")    # the host's directory is untouched
    finally:
        if node:
            node.stop()
        net.destroy()
    assert not [link for link in nodes.leftovers()["links"] if net.id in link]


def test_leftovers_of_a_crashed_run_are_removed():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, "-c", CRASHING % root], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    lab_id, holder, netns = proc.stdout.split()
    assert any(lab_id in link for link in nodes.leftovers()["links"])
    assert nodes.processes_in_netns(netns)          # the holder and the sleep outlived their owner
    assert lab_id in nodes.cleanup_leftovers()
    assert not [link for link in nodes.leftovers()["links"] if lab_id in link]
    assert nodes.processes_in_netns(netns) == []
    assert lab_id not in nodes.leftovers()["registrations"]
    assert not os.path.exists("/proc/%s/ns" % holder) or open("/proc/%s/stat" % holder).read().split()[2] == "Z"
