# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeadm's configuration for a build, rendered, validated by kubeadm itself, and kubeadm run with it.

The configuration is InitConfiguration + ClusterConfiguration (init, upload-certs) or
JoinConfiguration (join) in the kubeadm API version the kubeadm binary on the node prints as its
default (``kubeadm config print init-defaults``: kubeadm.k8s.io/v1beta4 from 1.31, v1beta3 before;
cmd/kubeadm/app/apis/kubeadm/v1beta4/doc.go).  Secrets travel inside the file, never on the
command line: kubeadm refuses ``--certificate-key``/``--token`` beside ``--config``
(ValidateMixedArguments, cmd/kubeadm/app/apis/kubeadm/validation/validation.go: only --config,
--upload-certs, --skip-*, --ignore-preflight-errors, --dry-run, ... mix), so the file is written
0600 into a private 0700 directory and removed as soon as kubeadm returns.

The probes: kubeadm writes, for every static pod, exactly the probes static_pod_probe recommends
(both come from _kubeadm.PROBE_TIMING / probe_paths), so the build adds no probe patches; the
control_plane_report run after the build audits each probe against that recommendation.

JSON is YAML: each document is written as JSON between ``---`` lines (kubeadm splits documents on
them, cmd/kubeadm/app/util/marshal.go SplitConfigDocuments), so no YAML library is needed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed

GROUP = "kubeadm.k8s.io"
V1BETA4 = GROUP + "/v1beta4"
V1BETA3 = GROUP + "/v1beta3"
SUPPORTED = (V1BETA3, V1BETA4)
REDACTED = "<redacted>"
# What validate renders in place of the secrets it does not have yet (formats kubeadm accepts:
# a bootstrap token is [a-z0-9]{6}.[a-z0-9]{16}, a certificate key 32 bytes hex, a CA hash sha256:<64 hex>).
PLACEHOLDER_TOKEN = "abcdef.0123456789abcdef"
PLACEHOLDER_CERT_KEY = "0" * 64
PLACEHOLDER_CA_HASH = "sha256:" + "0" * 64
_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_SECRET_FLAG = re.compile(r"(--(?:token|certificate-key|discovery-token|tls-bootstrap-token)[ =])\S+")
_JOIN = re.compile(r"kubeadm\s+join\s+(?P<endpoint>\S+)")


def api_version_for(kubernetes_version):
    """The kubeadm config API version a kubeadm of ``kubernetes_version`` writes by default."""
    match = re.match(r"v?(\d+)\.(\d+)", kubernetes_version or "")
    if not match:
        raise InputError("kubernetes version %r is not a version such as 1.37.2" % kubernetes_version)
    return V1BETA4 if (int(match.group(1)), int(match.group(2))) >= (1, 31) else V1BETA3


def parse_join_command(text):
    """``kubeadm token create --print-join-command`` output -> {endpoint, token, ca_cert_hashes}."""
    line = next((ln for ln in (text or "").splitlines() if "kubeadm join" in ln), "")
    words = line.split()
    match = _JOIN.search(line)
    values = {}
    for flag in ("--token", "--discovery-token-ca-cert-hash"):
        values[flag] = [words[i + 1] for i, word in enumerate(words[:-1]) if word == flag]
    if not match or not values["--token"] or not values["--discovery-token-ca-cert-hash"]:
        raise InputError("the join command has no endpoint, --token or --discovery-token-ca-cert-hash: give the "
                         "output of 'kubeadm token create --print-join-command'")
    return dict(endpoint=match.group("endpoint"), token=values["--token"][0],
                ca_cert_hashes=values["--discovery-token-ca-cert-hash"])


def redact(text, secrets=()):
    """``text`` without the given secret values, bootstrap tokens or secret command-line flags."""
    text = text or ""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _SECRET_FLAG.sub(lambda m: m.group(1) + REDACTED, text)
    return _TOKEN.sub(REDACTED, text)


def _merge(base, extra):
    """Deep-merge dict ``extra`` into a copy of ``base`` (lists and scalars replace)."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _args(api_version, mapping):
    """kubelet/component extra args: a list of {name, value} in v1beta4, a map in v1beta3."""
    if api_version == V1BETA3:
        return dict((k, str(v)) for k, v in sorted(mapping.items()))
    return [{"name": k, "value": str(v)} for k, v in sorted(mapping.items())]


def _node_registration(api_version, params):
    reg = {"name": params["node_name"]}
    if params.get("cri_socket"):
        reg["criSocket"] = params["cri_socket"]
    if params.get("ignore_preflight_errors"):
        reg["ignorePreflightErrors"] = list(params["ignore_preflight_errors"])
    if params.get("kubelet_extra_args"):
        reg["kubeletExtraArgs"] = _args(api_version, params["kubelet_extra_args"])
    return reg


def _endpoint(params):
    if not params.get("advertise_address"):
        raise InputError("advertise_address is required: the address this node's API server and etcd listen on")
    return {"advertiseAddress": params["advertise_address"], "bindPort": int(params.get("bind_port") or 6443)}


def cluster_configuration(api_version, params):
    if not params.get("kubernetes_version"):
        raise InputError("kubernetes_version is required (pinned, so kubeadm does not look up 'stable' on dl.k8s.io)")
    doc = {"apiVersion": api_version, "kind": "ClusterConfiguration",
           "kubernetesVersion": "v" + params["kubernetes_version"].lstrip("v"),
           "etcd": {"local": {"dataDir": params.get("etcd_data_dir") or "/var/lib/etcd"}},
           "networking": {}}
    if params.get("control_plane_endpoint"):
        doc["controlPlaneEndpoint"] = params["control_plane_endpoint"]
    if params.get("cert_sans"):
        doc["apiServer"] = {"certSANs": list(params["cert_sans"])}
    if params.get("pod_subnet"):
        doc["networking"]["podSubnet"] = params["pod_subnet"]
    if params.get("service_subnet"):
        doc["networking"]["serviceSubnet"] = params["service_subnet"]
    if params.get("cluster_name"):
        doc["clusterName"] = params["cluster_name"]
    if params.get("image_repository"):
        doc["imageRepository"] = params["image_repository"]
    return _merge(doc, params.get("cluster_configuration"))


def init_configuration(api_version, params, certificate_key=None):
    doc = {"apiVersion": api_version, "kind": "InitConfiguration",
           "localAPIEndpoint": _endpoint(params), "nodeRegistration": _node_registration(api_version, params)}
    if certificate_key:
        doc["certificateKey"] = certificate_key
    if params.get("skip_phases"):
        doc["skipPhases"] = list(params["skip_phases"])
    return _merge(doc, params.get("init_configuration"))


def join_configuration(api_version, params, join, certificate_key=None):
    """``join``: {endpoint, token, ca_cert_hashes} (parse_join_command's result)."""
    endpoint = params.get("control_plane_endpoint") or join["endpoint"]
    doc = {"apiVersion": api_version, "kind": "JoinConfiguration",
           "discovery": {"bootstrapToken": {"apiServerEndpoint": endpoint, "token": join["token"],
                                            "caCertHashes": list(join["ca_cert_hashes"])}},
           "nodeRegistration": _node_registration(api_version, params)}
    if params.get("control_plane"):
        doc["controlPlane"] = {"localAPIEndpoint": _endpoint(params)}
        if certificate_key:
            doc["controlPlane"]["certificateKey"] = certificate_key
    if params.get("skip_phases"):
        doc["skipPhases"] = list(params["skip_phases"])
    return _merge(doc, params.get("join_configuration"))


def documents(action, api_version, params, join=None, certificate_key=None):
    """The documents kubeadm gets for ``action`` (init, upload_certs, join)."""
    if api_version not in SUPPORTED:
        raise InputError("kubeadm config API %s is not supported (%s)" % (api_version, ", ".join(SUPPORTED)))
    if action in ("init", "upload_certs"):
        return [init_configuration(api_version, params, certificate_key), cluster_configuration(api_version, params)]
    if action == "join":
        return [join_configuration(api_version, params, join, certificate_key)]
    raise InputError("unknown action %r" % action)


def dump(docs):
    return "".join("---\n" + json.dumps(doc, indent=2, sort_keys=True) + "\n" for doc in docs)


class Kubeadm(object):
    """One kubeadm binary on this node; every run is timed (``seconds``) and its output redacted."""

    def __init__(self, path="kubeadm", timeout=600, secrets=()):
        self.path = path
        self.timeout = timeout
        self.secrets = [s for s in secrets if s]
        self.seconds = 0.0
        self.runs = []

    def run(self, args, check=True, timeout=None):
        argv = [self.path] + list(args)
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                  timeout=timeout or self.timeout, check=False)
        except OSError as exc:
            raise InputError("cannot run %s: %s; install kubeadm first (cluster_build_install_method)"
                             % (self.path, exc.strerror))
        except subprocess.TimeoutExpired:
            self.seconds += time.monotonic() - started
            raise OperationFailed("%s did not finish within %ss" % (" ".join(redact(a, self.secrets) for a in argv),
                                                                    timeout or self.timeout))
        elapsed = time.monotonic() - started
        self.seconds += elapsed
        out, err = redact(proc.stdout, self.secrets), redact(proc.stderr, self.secrets)
        self.runs.append(dict(cmd=[redact(a, self.secrets) for a in argv], rc=proc.returncode,
                              seconds=round(elapsed, 3), stdout_tail=out[-2000:], stderr_tail=err[-2000:]))
        if check and proc.returncode != 0:
            raise OperationFailed("%s failed (rc=%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                             (err.strip() or out.strip())[-1500:]),
                                  kubeadm_runs=self.runs)
        return proc.returncode, out, err

    def default_api_version(self):
        """The config API version this kubeadm prints in ``config print init-defaults``."""
        _rc, out, _err = self.run(["config", "print", "init-defaults"])
        match = re.search(r"^apiVersion:\s*(\S+)", out, re.M)
        if not match:
            raise OperationFailed("%s config print init-defaults printed no apiVersion" % self.path)
        return match.group(1)


class ConfigFile(object):
    """The configuration in a private directory (0700, file 0600), removed on exit."""

    def __init__(self, text, directory=None):
        self.text = text
        self.directory = directory
        self.tmp = None
        self.path = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="cplane-kubeadm-", dir=self.directory)
        os.chmod(self.tmp, 0o700)
        self.path = os.path.join(self.tmp, "kubeadm.yaml")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.text)
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def validate(kubeadm, text, directory=None):
    """``kubeadm config validate --config`` on ``text``; raises InputError with kubeadm's words."""
    with ConfigFile(text, directory) as path:
        rc, out, err = kubeadm.run(["config", "validate", "--config", path], check=False)
    if rc != 0:
        raise InputError("kubeadm rejected the rendered configuration (kubeadm config validate): %s"
                         % (err.strip() or out.strip())[-1500:], kubeadm_runs=kubeadm.runs)
    return True


def redacted_documents(docs, secrets):
    return json.loads(redact(json.dumps(docs), secrets))
