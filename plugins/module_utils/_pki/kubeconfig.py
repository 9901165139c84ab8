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


def _entry(items, name, what, path):
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    return None


def select_user(config, path):
    """The user of the current context (what kubectl and kubeadm use); the only user otherwise."""
    users = config.get("users") or []
    current = config.get("current-context")
    if current:
        context = _entry(config.get("contexts"), current, "context", path)
        if context is None:
            raise InputError("%s: current-context %r names no context in the file. Fix the kubeconfig." % (path, current))
        name = context.get("user")
    elif len(users) == 1 and isinstance(users[0], dict):
        name = users[0].get("name")
    else:
        raise InputError("%s has no current-context and %d users: cannot tell whose certificate to use."
                         % (path, len(users)))
    user = _entry(users, name, "user", path)
    if user is None:
        raise InputError("%s: user %r of the current context is not defined in users. Fix the kubeconfig." % (path, name))
    return name, user


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
