# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client certificate embedded in a kubeconfig, read and replaced in place.

Replacement is textual: only the two base64 values of the user change, so comments, key order,
quoting and every other byte an operator or tool put in the file survive a renewal (a YAML
re-dump would not keep them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import traceback

try:
    import yaml
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_YAML = True
    YAML_IMPORT_ERROR = None

from ansible_collections.cplane.kubeadm.plugins.module_utils._files import read_input_file
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

CERT_FIELD = "client-certificate-data"
KEY_FIELD = "client-key-data"


class EmbeddedCredentials(object):
    """The user a kubeconfig authenticates as, and its embedded (or referenced) client certificate."""

    def __init__(self, path, text, user, certificate_b64, key_b64, certificate_file=None, key_file=None):
        self.path = path
        self.text = text
        self.user = user
        self.certificate_b64 = certificate_b64
        self.key_b64 = key_b64
        self.certificate_file = certificate_file
        self.key_file = key_file

    @property
    def certificate_pem(self):
        return _decode(self.certificate_b64, CERT_FIELD, self) if self.certificate_b64 else None

    @property
    def key_pem(self):
        return _decode(self.key_b64, KEY_FIELD, self) if self.key_b64 else None


def _decode(value, field, creds):
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("%s of user %r in %s is not valid base64. Restore the file from a backup."
                         % (field, creds.user, creds.path))


def _named(config, plural):
    """{name: entry} of a kubeconfig list (clusters, contexts, users); malformed items are left out."""
    return {item.get("name"): item for item in config.get(plural) or [] if isinstance(item, dict)}


def resolve(config, path, context=None, sole_user=False):
    """The one way this collection reads a kubeconfig: context, then its cluster and user.

    The context is ``context``, else ``current-context`` (what kubectl and kubeadm use).  With
    ``sole_user``, a file without a current-context but with exactly one user resolves to that user
    (kubeadm's kubeconfigs always set one; hand-made ones sometimes do not).  Returns a dict with
    ``context`` (name or None), ``cluster`` and ``user`` (the entries' inner mappings, ``{}`` when
    absent), ``cluster_name`` and ``user_name``.  Every inconsistency is an InputError naming the file.
    """
    contexts, users = _named(config, "contexts"), _named(config, "users")
    wanted = context or config.get("current-context")
    if not wanted:
        if sole_user and len(users) == 1:
            name = list(users)[0]
            return {"context": None, "cluster": {}, "cluster_name": None, "user_name": name,
                    "user": users[name].get("user") or {}}
        raise InputError("kubeconfig %s sets no current-context; pass context= one of: %s. (With %d users, whose "
                         "certificate to use cannot be told either.)"
                         % (path, ", ".join(map(str, contexts)) or "(none defined)", len(users)))
    if wanted not in contexts:
        raise InputError("kubeconfig %s has no context named %r; pass context= one of: %s. Fix the kubeconfig."
                         % (path, wanted, ", ".join(map(str, contexts)) or "(none defined)"))
    entry = contexts[wanted].get("context") or {}
    resolved = {"context": wanted}
    for kind, known in (("cluster", _named(config, "clusters")), ("user", users)):
        name = entry.get(kind)
        if name not in known:
            raise InputError("kubeconfig %s: context %s refers to %s %r, which is not defined there (defined: %s). Fix the "
                             "file or regenerate it (kubeadm kubeconfig user)."
                             % (path, wanted, kind, name, ", ".join(map(str, known)) or "none"))
        resolved[kind + "_name"] = name
        resolved[kind] = known[name].get(kind) or {}
    return resolved


def select_user(config, path):
    """(user name, user mapping) whose client certificate the file carries."""
    resolved = resolve(config, path, sole_user=True)
    return resolved["user_name"], resolved["user"]


def parse(path, data, require_embedded=True):
    try:
        text = data.decode("utf-8")
        config = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark is not None else ""
        raise InputError("%s is not a valid kubeconfig: malformed YAML%s. Restore it from a backup." % (path, where))
    if not isinstance(config, dict) or config.get("kind", "Config") != "Config":
        raise InputError("%s is not a kubeconfig (expected a mapping with kind: Config). Restore it from a backup." % path)
    name, user = select_user(config, path)
    creds = EmbeddedCredentials(path, text, name, user.get(CERT_FIELD), user.get(KEY_FIELD),
                                user.get("client-certificate"), user.get("client-key"))
    if require_embedded and not (creds.certificate_b64 and creds.key_b64):
        raise InputError("%s: user %r has no embedded %s/%s; kubeadm-managed kubeconfigs embed both. "
                         "Re-create the file with 'kubeadm init phase kubeconfig'." % (path, name, CERT_FIELD, KEY_FIELD))
    for value, field in ((creds.certificate_b64, CERT_FIELD), (creds.key_b64, KEY_FIELD)):
        if value is not None and not isinstance(value, str):
            raise InputError("%s: %s of user %r is not a string." % (path, field, name))
    return creds


def load(path, require_embedded=True):
    return parse(path, read_input_file(path, "kubeconfig"), require_embedded)


def _replace_once(text, old, new, field, creds):
    count = text.count(old)
    if count != 1:
        raise InputError("%s: the %s of user %r appears %d times in the file text (expected once, on one line); "
                         "it cannot be replaced in place. Re-create the file with 'kubeadm init phase kubeconfig' "
                         "or put the value on a single line." % (creds.path, field, creds.user, count))
    return text.replace(old, new)


def replace_credentials(creds, certificate_pem, key_pem):
    """The file's bytes with only the user's two base64 values exchanged (verified by re-parsing)."""
    new_cert = base64.b64encode(certificate_pem).decode("ascii")
    new_key = base64.b64encode(key_pem).decode("ascii")
    text = _replace_once(creds.text, creds.certificate_b64, new_cert, CERT_FIELD, creds)
    text = _replace_once(text, creds.key_b64, new_key, KEY_FIELD, creds)
    check = parse(creds.path, text.encode("utf-8"))
    if (check.user, check.certificate_b64, check.key_b64) != (creds.user, new_cert, new_key):
        raise InputError("%s: replacing the client credentials of user %r in place did not produce the expected "
                         "file; nothing was written. Re-create it with 'kubeadm init phase kubeconfig'." % (creds.path, creds.user))
    return text.encode("utf-8")


def check_replaceable(creds):
    """Fail now (before anything is written) when the values cannot be replaced in place."""
    for old, field in ((creds.certificate_b64, CERT_FIELD), (creds.key_b64, KEY_FIELD)):
        _replace_once(creds.text, old, "x", field, creds)
