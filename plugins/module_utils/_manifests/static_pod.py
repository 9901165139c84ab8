# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, validate, edit and safely rewrite static pod manifests.

kubeadm writes manifests through sigs.k8s.io/yaml: block style, two-space indent, list items at
the parent's indentation, keys in the order written.  PyYAML's block dump with ``sort_keys=False``
produces the same layout, so a rewrite changes only the lines of the edited probe; a manifest
whose content does not change is never rewritten (byte-identical).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import (
    MANIFESTS_DIR, atomic_write, backup_file, check_backup_dir, read_input_file, remove_backup)
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import prober

PROBE_INT_FIELDS = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold",
                    "terminationGracePeriodSeconds")


def read_manifest(path):
    """(raw bytes, parsed Pod) of ``path``; InputError naming the file for anything else."""
    data = read_input_file(path, "manifest", "Check the path and that the task runs as root (become: true).")
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InputError("manifest %s is not valid YAML (%s); fix or restore it from a backup before changing probes."
                         % (path, str(exc).replace("\n", " ")))
    validate_pod(doc, path)
    return data, doc


def validate_pod(doc, path):
    """Raise InputError unless ``doc`` is a Pod kubelet would accept (the parts this module touches)."""
    if not isinstance(doc, dict):
        raise InputError("manifest %s is not a Kubernetes object (a YAML mapping with apiVersion and kind)." % path)
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Pod":
        raise InputError("manifest %s is not a static pod: apiVersion %r, kind %r (expected v1, Pod)."
                         % (path, doc.get("apiVersion"), doc.get("kind")))
    if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
        raise InputError("manifest %s has no metadata.name; kubelet would reject it." % path)
    containers = (doc.get("spec") or {}).get("containers") if isinstance(doc.get("spec"), dict) else None
    if not isinstance(containers, list) or not containers:
        raise InputError("manifest %s has no spec.containers; kubelet would reject it." % path)
    for index, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name") or not container.get("image"):
            raise InputError("manifest %s: container #%d needs a name and an image." % (path, index + 1))
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(kind) is not None:
                validate_probe(container[kind], kind, "%s container %s" % (path, container["name"]))


def validate_probe(probe, field, where):
    """Raise InputError unless ``probe`` has the shape of a core/v1 Probe."""
    if not isinstance(probe, dict):
        raise InputError("%s: %s must be a mapping." % (where, field))
    handlers = [name for name in prober.HANDLERS if name in probe]
    if len(handlers) != 1:
        raise InputError("%s: %s needs exactly one of exec, httpGet, tcpSocket, grpc (found %s)."
                         % (where, field, ", ".join(handlers) or "none"))
    allowed = set(prober.HANDLERS) | set(PROBE_INT_FIELDS)
    unknown = sorted(set(probe) - allowed)
    if unknown:
        raise InputError("%s: %s has unknown fields %s." % (where, field, ", ".join(unknown)))
    for key in PROBE_INT_FIELDS:
        if key in probe:
            value = probe[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError("%s: %s.%s must be a non-negative integer, not %r." % (where, field, key, value))
            if key != "initialDelaySeconds" and key != "terminationGracePeriodSeconds" and value < 1:
                raise InputError("%s: %s.%s must be at least 1." % (where, field, key))
    if field in ("livenessProbe", "startupProbe") and probe.get("successThreshold", 1) != 1:
        raise InputError("%s: %s.successThreshold must be 1 (kubelet's API rejects anything else)." % (where, field))
    action = probe[handlers[0]]
    if not isinstance(action, dict):
        raise InputError("%s: %s.%s must be a mapping." % (where, field, handlers[0]))
    if handlers[0] == "exec":
        command = action.get("command")
        if not isinstance(command, list) or not command:
            raise InputError("%s: %s.exec.command must be a non-empty list." % (where, field))
    elif action.get("port") in (None, ""):
        raise InputError("%s: %s.%s.port is required." % (where, field, handlers[0]))
    if handlers[0] == "httpGet" and str(action.get("scheme", "HTTP")).upper() not in ("HTTP", "HTTPS"):
        raise InputError("%s: %s.httpGet.scheme must be HTTP or HTTPS." % (where, field))


def find_container(doc, name, path):
    containers = doc["spec"]["containers"]
    if name is None:
        if len(containers) != 1:
            raise InputError("manifest %s has %d containers (%s): say which one with container."
                             % (path, len(containers), ", ".join(c["name"] for c in containers)))
        return containers[0]
    for container in containers:
        if container["name"] == name:
            return container
    raise InputError("manifest %s has no container %r; it has %s." % (path, name, ", ".join(c["name"] for c in containers)))


def normalize_probe(probe):
    """A probe as kubeadm writes it: integer timings, keys sorted (Go's order) at every level."""
    def sort(value):
        if isinstance(value, dict):
            return dict((key, sort(value[key])) for key in sorted(value))
        if isinstance(value, list):
            return [sort(item) for item in value]
        return value
    probe = sort(probe)
    for key in PROBE_INT_FIELDS:
        if isinstance(probe.get(key), str) and probe[key].isdigit():
            probe[key] = int(probe[key])
    for handler in ("httpGet", "tcpSocket", "grpc"):
        port = (probe.get(handler) or {}).get("port")
        if isinstance(port, str) and port.isdigit():
            probe[handler]["port"] = int(port)
    return probe


def set_probe(container, field, probe):
    """Put ``probe`` (None: remove) into ``container`` keeping the other keys where they are.

    A new key goes where Go's sorted output would put it when the container's keys are sorted
    (kubeadm's manifests), at the end otherwise.  Returns True when the container changed.
    """
    if probe is None:
        return container.pop(field, None) is not None
    if container.get(field) == probe:
        return False
    if field in container:
        container[field] = probe
        return True
    keys = list(container)
    items = list(container.items())
    if keys == sorted(keys):
        items.append((field, probe))
        items.sort(key=lambda item: item[0])
    else:
        items.append((field, probe))
    container.clear()
    container.update(items)
    return True


def dump_manifest(doc):
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True).encode("utf-8")


def list_manifest_dir(directory):
    """[(file name, pod name or None)] for every entry kubelet would read in ``directory``."""
    entries = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return entries
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        pod_name = None
        try:
            with open(path, "rb") as handle:
                doc = yaml.safe_load(handle)
            if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
                pod_name = doc["metadata"].get("name")
        except (IOError, OSError, yaml.YAMLError):
            pass
        entries.append((name, pod_name))
    return entries


def write_manifest(path, data, backup_dir, manifests_dir):
    """Back ``path`` up outside every watched directory, then replace it atomically.

    Returns the backup path.  The backup directory is checked before anything is written, and a
    backup whose write then failed is removed again: a backup stands for a change that happened.
    A symlinked manifest keeps its link; its target is rewritten.
    """
    forbidden = [manifests_dir, MANIFESTS_DIR, os.path.dirname(os.path.abspath(path))]
    check_backup_dir(backup_dir, forbidden)
    backup = backup_file(path, backup_dir, forbidden_dirs=forbidden)
    try:
        atomic_write(path, data)
    except BaseException:
        remove_backup(backup, backup_dir)
        raise
    return backup
