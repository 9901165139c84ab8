"""A recording stand-in for the ``kubeadm`` executable, for what the real one cannot do on demand: fail.

The real kubeadm (built by scripts/lab-binaries) runs in test_real_kubeadm.py; it fails only on input
the module refuses before calling it.  This stand-in appends its argv as one JSON line to
$KUBEADM_STANDIN_LOG and implements ``kubeadm certs renew <name> --cert-dir DIR`` with the
collection's Python backend (forced, as kubeadm renews unconditionally).  $KUBEADM_STANDIN_FAIL=<name>
makes that renewal fail the way kubeadm does (message on stderr, exit status 1).
"""
import json
import os
import sys


def main(argv):
    with open(os.environ["KUBEADM_STANDIN_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    if argv[:2] != ["certs", "renew"] or len(argv) < 3:
        sys.stderr.write("stand-in supports only 'certs renew <name>'\n")
        return 2
    name = argv[2]
    options = dict(zip(argv[3::2], argv[4::2]))
    cert_dir = options.get("--cert-dir", "/etc/kubernetes/pki")
    if os.environ.get("KUBEADM_STANDIN_FAIL") == name:
        sys.stderr.write("error execution phase certs/renew: failed to renew certificate %s: simulated\n" % name)
        return 1
    sys.path.insert(0, os.environ["KUBEADM_STANDIN_COLLECTIONS"])
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
    # The module that runs this stand-in holds the node's renewal lock (real kubeadm knows nothing of it).
    result = renew.renew_certificates(pki_dir=cert_dir, kubeconfig_dir=os.path.dirname(cert_dir.rstrip("/")),
                                      certs=[name], force=True, backup_dir=os.environ["KUBEADM_STANDIN_BACKUPS"],
                                      lock=False)
    print("[renew] %s renewed" % ", ".join(r["name"] for r in result["renewed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
