# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception type per kind of user-facing failure.

Backends raise these with a message that names the file or member and says what to do; modules
turn them into fail_json through fail_from().  Never put key material or tokens in a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class CplaneError(Exception):
    """Base of every failure a module reports to the user.

    ``result`` carries what was already done (e.g. members defragmented before a failure) so the
    module can return it alongside the message.
    """

    def __init__(self, msg, **result):
        super(CplaneError, self).__init__(msg)
        self.msg = msg
        self.result = result


class InputError(CplaneError):
    """A file or parameter is malformed: bad YAML/PEM/kubeconfig, wrong type, no such container."""


class ConnectionFailure(CplaneError):
    """A member or API server cannot be reached, or TLS to it fails."""


class UnsafeOperation(CplaneError):
    """The requested step would break quorum or the control plane; a force flag overrides."""


class OperationFailed(CplaneError):
    """A step started and did not complete (timeout, member unhealthy afterwards)."""


def fail_from(module, error, **extra):
    """Report ``error`` through ``module.fail_json`` with what was already done."""
    result = dict(error.result)
    result.update(extra)
    module.fail_json(msg=error.msg, **result)
