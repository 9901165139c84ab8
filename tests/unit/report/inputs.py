"""Registered results as the role's checks return them, for a control plane with something wrong everywhere."""

ETCD = {
    "changed": False, "failed": False, "invocation": {"module_args": {}},
    "has_quorum": False, "healthy_voting_members": 1, "voting_members": 3, "quorum": 2, "leader": None,
    "alarms": [{"alarm": "NOSPACE", "member": "cp2"}],
    "members": [
        {"name": "cp1", "healthy": True, "is_leader": False, "is_learner": False, "version": "3.5.15",
         "db_size": 20480123, "fragmentation": 0.4, "quota_usage": 0.01, "error": None},
        {"name": "cp2", "healthy": False, "is_leader": False, "is_learner": False, "version": None,
         "db_size": None, "fragmentation": None, "quota_usage": None, "error": "connection refused"},
        {"name": "cp3", "healthy": False, "is_leader": False, "is_learner": True, "version": "3.5.15",
         "db_size": 4096, "fragmentation": 0.0, "quota_usage": 0.0, "error": "deadline exceeded"},
    ],
}

STRAY = {"rule": "stray-manifest-file", "severity": "critical",
         "message": "/etc/kubernetes/manifests/kube-apiserver.yaml.bak is a manifest kubelet runs (it reads every file). Move it"}
STRAY_INFO = {"rule": "stray-manifest-file", "severity": "info", "message": "notes.txt (not YAML) is ignored. Fine"}

MANIFESTS = {"results": [
    {"item": "etcd", "stat": {"exists": True, "path": "/m/etcd.yaml"}},
    {"item": "kube-apiserver", "stat": {"exists": False}},
    {"item": "kube-scheduler", "stat": {"exists": True}},
]}

PROBES = {"results": [
    {"version": "3.5.15", "probe_spec": {"failureThreshold": 8, "exec": {"command": ["etcdctl", "get", "foo"]}},
     "kill_window": {"hung_seconds": 135},
     "findings": [{"rule": "linearizable-etcd-read", "severity": "critical",
                   "message": "The probe reads through raft. It fails when quorum is lost"},
                  {"rule": "long-timeout", "severity": "warning", "message": "Long. Very"}, STRAY, STRAY_INFO]},
    {"skipped": True},
    {"failed": True, "msg": "manifest /m/kube-scheduler.yaml is not valid YAML"},
]}

CERTS = {
    "certificates": [
        {"name": "apiserver", "days_left": 12, "missing": False, "expired": False, "not_after": "2026-12-13T00:00:00Z", "path": "/p/apiserver.crt"},
        {"name": "admin.conf", "days_left": -3, "missing": False, "expired": True, "not_after": "2026-11-28T00:00:00Z", "path": "/k/admin.conf"},
        {"name": "front-proxy-client", "missing": True, "path": "/p/front-proxy-client.crt"},
        {"name": "etcd-server", "days_left": 300, "missing": False, "expired": False, "not_after": "2027-09-27T00:00:00Z", "path": "/p/etcd/server.crt"},
    ],
    "certificate_authorities": [{"name": "ca", "days_left": 20, "missing": False, "expired": False, "not_after": "2026-12-21T00:00:00Z", "path": "/p/ca.crt"}],
    "expiring": ["apiserver", "admin.conf", "ca"],
    "kubelet_client": {"days_left": 200},
    "changed": False,
}

VERSIONS = {
    "api_server_version": "v1.30.4",
    "violations": [{"message": "kubelet v1.27.1 on w1 is 3 minors older than kube-apiserver v1.30.4 (max 2)"}],
    "mixed_versions": [{"component": "kubelet", "version": "v1.27.1", "node": "w1", "majority_version": "v1.30.4"},
                       {"component": "kube-proxy", "version": "v1.29.0", "node": None, "majority_version": "v1.30.4"}],
    "components": {"kubelet": {"v1.30.4": 2}},
    "nodes": [{"name": "cp1", "restarts": {"etcd": 183, "kube-apiserver": 4}},
              {"name": "cp2", "restarts": {"etcd": 0}},
              {"name": "w1", "restarts": None},
              {"name": "cp3", "restarts": {"kube-scheduler": 183, "kube-controller-manager": 11}}],
}

RESULTS = {"etcd": ETCD, "manifests": MANIFESTS, "probes": PROBES, "certificates": CERTS, "versions": VERSIONS}

SETTINGS = {"host": "cp1", "generated_at": "2026-12-01T00:00:00Z", "etcd": True, "probes": True, "certificates": True,
            "versions": True, "probe": "liveness", "manifests_dir": "/m", "warn_days": 30,
            "kubeconfig": "/etc/kubernetes/admin.conf", "api_host": "cp1", "max_restarts": 10}
