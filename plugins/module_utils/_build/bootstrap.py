# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeadm init / join / upload-certs on one node, idempotent: a node that is already what the
action makes it is left alone; a half-joined node is refused with what to do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import kubeadm_config as kc
from ansible_collections.cplane.kubeadm.plugins.module_utils._build import node_state as ns
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, UnsafeOperation

ACTIONS = ("init", "join", "upload_certs", "validate")


def _dirs(params):
    return dict(kubernetes_dir=params.get("kubernetes_dir") or "/etc/kubernetes",
                kubelet_dir=params.get("kubelet_dir") or "/var/lib/kubelet",
                etcd_data_dir=params.get("etcd_data_dir") or "/var/lib/etcd")


def bootstrap(params, check_mode=False):
    """Run ``params['action']``; returns the module result (changed, state_before, state_after, ...)."""
    action = params["action"]
    if action not in ACTIONS:
        raise InputError("action must be one of %s" % ", ".join(ACTIONS))
    certificate_key = params.get("certificate_key")
    join = None
    secrets = [certificate_key]
    if params.get("join_command"):
        join = kc.parse_join_command(params["join_command"])
        secrets.append(join["token"])
    kubeadm = kc.Kubeadm(params.get("kubeadm_path") or "kubeadm", params.get("timeout") or 600, secrets)
    host = params.get("node_name") or "this node"
    before = ns.node_state(host, **_dirs(params))
    wanted = ns.CONTROL_PLANE if action in ("init", "upload_certs") or params.get("control_plane") else ns.WORKER
    result = dict(changed=False, action=action, state_before=before["state"], state_after=before["state"],
                  kubeadm_seconds=0.0, kubeadm_runs=kubeadm.runs)

    if action in ("init", "join"):
        if before["state"] == wanted:
            result["msg"] = "%s is already a joined %s: left alone" % (host, wanted.replace("_", "-"))
            return result
        if before["state"] != ns.NOT_MEMBER:
            raise UnsafeOperation("%s is %s (present: %s; missing: %s): not running kubeadm %s over it; %s" % (
                host, before["state"].replace("_", "-"), ", ".join(before["present"]),
                ", ".join(before["missing"]) or "-", action, before["hint"] or ns.RESET_HINT % host),
                state_before=before["state"])
    if action == "upload_certs" and before["state"] != ns.CONTROL_PLANE:
        raise UnsafeOperation("%s is %s, not a joined control plane: certificates are uploaded from a control-plane "
                              "node of the existing cluster" % (host, before["state"]))
    if action == "upload_certs" and not certificate_key:
        raise InputError("upload_certs needs certificate_key (kubeadm certs certificate-key)")
    if action == "join" and join is None and check_mode:
        # A check-mode run created no token: render the join with placeholders, as validate does.
        join = dict(endpoint=params.get("control_plane_endpoint") or "kube-apiserver:6443",
                    token=kc.PLACEHOLDER_TOKEN, ca_cert_hashes=[kc.PLACEHOLDER_CA_HASH])
    if action == "join" and params.get("control_plane") and not certificate_key and check_mode:
        certificate_key = kc.PLACEHOLDER_CERT_KEY
    if action == "join" and join is None:
        raise InputError("join needs join_command (the output of 'kubeadm token create --print-join-command')")
    if action == "join" and params.get("control_plane") and not certificate_key:
        raise InputError("a control-plane join needs certificate_key: the key the certificates were uploaded with")

    api_version = params.get("api_version") or kubeadm.default_api_version()
    render_action = action
    if action == "validate":
        render_action = params.get("validate_as") or "init"
        if render_action == "join" and join is None:
            join = dict(endpoint=params.get("control_plane_endpoint") or "kube-apiserver:6443",
                        token=kc.PLACEHOLDER_TOKEN, ca_cert_hashes=[kc.PLACEHOLDER_CA_HASH])
        certificate_key = certificate_key or (kc.PLACEHOLDER_CERT_KEY if render_action != "join"
                                              or params.get("control_plane") else None)
    docs = kc.documents(render_action, api_version, params, join=join, certificate_key=certificate_key)
    text = kc.dump(docs)
    kc.validate(kubeadm, text, params.get("temp_dir"))
    result.update(api_version=api_version, config=kc.redacted_documents(docs, secrets), validated=True)
    if action == "validate":
        result["kubeadm_seconds"] = round(kubeadm.seconds, 3)
        return result

    result["changed"] = True
    if check_mode:
        result["msg"] = "would run kubeadm %s (configuration validated)" % action.replace("_", "-")
        result["kubeadm_seconds"] = round(kubeadm.seconds, 3)
        return result
    argv = {"init": ["init", "--upload-certs"], "join": ["join"],
            "upload_certs": ["init", "phase", "upload-certs", "--upload-certs"]}[action]
    try:
        with kc.ConfigFile(text, params.get("temp_dir")) as path:
            kubeadm.run(argv + ["--config", path])
    except Exception as exc:
        after = ns.node_state(host, **_dirs(params))
        if hasattr(exc, "result"):
            exc.result.update(state_before=before["state"], state_after=after["state"], kubeadm_runs=kubeadm.runs,
                              kubeadm_seconds=round(kubeadm.seconds, 3), hint=after["hint"])
        raise
    after = ns.node_state(host, **_dirs(params))
    result.update(state_after=after["state"], kubeadm_seconds=round(kubeadm.seconds, 3))
    result["msg"] = "kubeadm %s done on %s" % (action.replace("_", "-"), host)
    return result
