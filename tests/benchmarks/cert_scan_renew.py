"""Benchmark: scan and renew-all of a full kubeadm certificate tree (RSA-2048).

Prints, for kubeadm_cert_info and kubeadm_cert_renew (force, all 11 certificates):
- backend time (the module_utils call, in process; median of several runs),
- module wall time through the ``ansible`` CLI, and the Ansible overhead (wall - backend),
- the obvious alternatives in the same run: one ``openssl x509 -enddate`` process per certificate
  for the scan, and ``openssl req -newkey`` + ``openssl x509 -req`` per certificate for the renewal.

Run: .venv/bin/python tests/benchmarks/cert_scan_renew.py [--runs N]
Not part of the test command; it asserts nothing.
"""
import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import tests.conftest  # noqa: E402,F401  (makes ansible_collections.cplane.kubeadm importable)
import yaml  # noqa: E402

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki  # noqa: E402
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table  # noqa: E402
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew  # noqa: E402
from tests.lab import pki as lab  # noqa: E402
from tests.lab.ansible_run import run_module  # noqa: E402


def median_time(func, runs):
    times = []
    for _run in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_copy(template, base, index):
    target = os.path.join(base, "copy%d" % index)
    shutil.copytree(template, target)
    return target


def paths(root):
    return os.path.join(root, "etc/kubernetes/pki"), os.path.join(root, "etc/kubernetes")


def openssl_scan(root):
    """What a shell script does: one openssl process per certificate (kubeconfigs decoded first)."""
    pki_dir, kubeconfig_dir = paths(root)
    ends = {}
    for name, spec in table.CERTIFICATES.items():
        if spec["kind"] == "file":
            out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", os.path.join(pki_dir, spec["cert"])],
                                 capture_output=True, text=True, check=True).stdout
        else:
            with open(os.path.join(kubeconfig_dir, spec["file"])) as handle:
                data = base64.b64decode(yaml.safe_load(handle)["users"][0]["user"]["client-certificate-data"])
            out = subprocess.run(["openssl", "x509", "-enddate", "-noout"], input=data.decode(),
                                 capture_output=True, text=True, check=True).stdout
        ends[name] = out.strip()
    for spec in table.CAS.values():
        subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", os.path.join(pki_dir, spec["cert"])],
                       capture_output=True, check=True)
    return ends


def openssl_renew(root, work):
    """Renew every file certificate with openssl (new RSA-2048 key + CSR, signed by the CA): 2 processes each."""
    pki_dir = paths(root)[0]
    for name, spec in table.CERTIFICATES.items():
        if spec["kind"] != "file":
            continue
        ca = table.CAS[spec["ca"]]
        facts = pki.certificate_facts(pki.load_certificate(os.path.join(pki_dir, spec["cert"])))
        subject = "/" + "/".join(["O=%s" % o for o in facts["organizations"]] + ["CN=%s" % facts["common_name"]])
        ext = os.path.join(work, "%s.ext" % name)
        sans = ["DNS:%s" % d for d in facts["dns_names"]] + ["IP:%s" % i for i in facts["ip_addresses"]]
        with open(ext, "w") as handle:
            handle.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                         "extendedKeyUsage=%s\n" % ",".join(facts["extended_key_usages"]))
            if sans:
                handle.write("subjectAltName=%s\n" % ",".join(sans))
        csr = os.path.join(work, "%s.csr" % name)
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        os.path.join(pki_dir, spec["key"]), "-subj", subject, "-out", csr],
                       capture_output=True, check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki_dir, ca["cert"]),
                        "-CAkey", os.path.join(pki_dir, ca["key"]), "-CAcreateserial", "-days", "365", "-sha256",
                        "-extfile", ext, "-out", os.path.join(pki_dir, spec["cert"])], capture_output=True, check=True)


def module_process(name, args):
    """Run the module file directly (AnsibleModule reads its arguments from a JSON file): the module's
    own process time, without the ansible CLI, connection plugin and AnsiballZ packaging."""
    import json
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=tests.conftest.COLLECTIONS_ROOT)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.join(tests.conftest.ROOT, "plugins/modules/%s.py" % name), handle.name],
                          capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    os.unlink(handle.name)
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result.get("msg")
    return elapsed, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="cert-bench-")
    try:
        template = os.path.join(base, "template")
        cas = lab.ClusterCAs.create(key_type="rsa")
        lab.build_node_pki(template, cas, node="cp1", key_type="rsa")
        n_leaf, n_ca = len(table.CERTIFICATES), len(table.CAS)
        pki_dir, kubeconfig_dir = paths(template)
        kubelet = os.path.join(template, "var/lib/kubelet/pki")

        scan_backend = median_time(lambda: pki.scan(pki_dir, kubeconfig_dir, kubelet), args.runs * 4)
        scan_openssl = median_time(lambda: openssl_scan(template), args.runs)
        info_wall = median_time(lambda: run_module("kubeadm_cert_info", dict(
            pki_dir=pki_dir, kubeconfig_dir=kubeconfig_dir, kubelet_pki_dir=kubelet)), args.runs)

        info_process = median_time(lambda: module_process("kubeadm_cert_info", dict(
            pki_dir=pki_dir, kubeconfig_dir=kubeconfig_dir, kubelet_pki_dir=kubelet)), args.runs)
        copies = iter(range(10 ** 6))

        def process_renew():
            root = fresh_copy(template, base, next(copies))
            p, k = paths(root)
            module_args = dict(pki_dir=p, kubeconfig_dir=k, force=True, backup_dir=os.path.join(root, "backups"))
            elapsed, result = module_process("kubeadm_cert_renew", module_args)
            assert len(result["renewed"]) == n_leaf
            return elapsed

        def backend_renew():
            root = fresh_copy(template, base, next(copies))
            p, k = paths(root)
            start = time.perf_counter()
            result = renew.renew_certificates(pki_dir=p, kubeconfig_dir=k, force=True,
                                              backup_dir=os.path.join(root, "backups"))
            elapsed = time.perf_counter() - start
            assert len(result["renewed"]) == n_leaf
            return elapsed

        renew_backend = statistics.median(backend_renew() for _run in range(args.runs))

        def module_renew():
            root = fresh_copy(template, base, next(copies))
            p, k = paths(root)
            start = time.perf_counter()
            result = run_module("kubeadm_cert_renew", dict(pki_dir=p, kubeconfig_dir=k, force=True,
                                                           backup_dir=os.path.join(root, "backups")))
            elapsed = time.perf_counter() - start
            assert not result["failed"] and len(result["renewed"]) == n_leaf, result.get("msg")
            return elapsed

        renew_wall = statistics.median(module_renew() for _run in range(args.runs))
        renew_process = statistics.median(process_renew() for _run in range(args.runs))

        def openssl_renew_timed():
            root = fresh_copy(template, base, next(copies))
            work = os.path.join(root, "work")
            os.makedirs(work)
            start = time.perf_counter()
            openssl_renew(root, work)
            return time.perf_counter() - start

        n_file = sum(1 for s in table.CERTIFICATES.values() if s["kind"] == "file")
        renew_openssl = statistics.median(openssl_renew_timed() for _run in range(args.runs))
        per_cert_backend = renew_backend / n_leaf
        per_cert_openssl = renew_openssl / n_file

        print("kubeadm tree: %d leaf certificates (%d files, %d kubeconfigs) + %d CAs, RSA-2048; median of %d runs"
              % (n_leaf, n_file, n_leaf - n_file, n_ca, args.runs))
        print("scan   backend (inspect.scan)            %8.1f ms" % (scan_backend * 1000))
        print("scan   kubeadm_cert_info module process  %8.1f ms  (python start + imports %.1f ms)"
              % (info_process * 1000, (info_process - scan_backend) * 1000))
        print("scan   kubeadm_cert_info via ansible CLI %8.1f ms  (Ansible overhead %.1f ms)"
              % (info_wall * 1000, (info_wall - scan_backend) * 1000))
        print("scan   openssl x509 -enddate per cert    %8.1f ms  (%d processes)" % (scan_openssl * 1000, n_leaf + n_ca))
        print("scan   ratio openssl / backend           %8.1fx" % (scan_openssl / scan_backend))
        print("renew  backend (renew_certificates, all) %8.1f ms  (%.1f ms per certificate)"
              % (renew_backend * 1000, per_cert_backend * 1000))
        print("renew  kubeadm_cert_renew module process %8.1f ms  (python start, imports, rescan %.1f ms)"
              % (renew_process * 1000, (renew_process - renew_backend) * 1000))
        print("renew  kubeadm_cert_renew via ansible CLI%8.1f ms  (Ansible overhead %.1f ms)"
              % (renew_wall * 1000, (renew_wall - renew_backend) * 1000))
        print("renew  openssl req+x509 per file cert    %8.1f ms  (%d certificates, %.1f ms each; kubeconfigs not done)"
              % (renew_openssl * 1000, n_file, per_cert_openssl * 1000))
        print("renew  ratio openssl / backend per cert  %8.1fx" % (per_cert_openssl / per_cert_backend))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
