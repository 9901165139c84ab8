# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module_python filter (documented in module_python.yml).

The roles set ``ansible_python_interpreter`` for their module tasks to
``cplane_kubeadm_python | default(none) | cplane.kubeadm.module_python(hostvars[inventory_hostname])``.
A variable cannot default to itself (Ansible reports a recursive loop), and ``default(omit)`` in
``ansible_python_interpreter`` gives the *built-in* default (``auto``), not what the user configured
(ansible-core ``executor/module_common.py`` ``_get_shebang``: the variable wins over the
``INTERPRETER_PYTHON`` setting, and an omitted value templates to the setting's default).  So the
fallback is worked out here, the way ansible-core would: the host's own ``ansible_python_interpreter``
(inventory, host/group vars, extra vars), else the ``INTERPRETER_PYTHON`` setting
(``ANSIBLE_PYTHON_INTERPRETER`` or ``interpreter_python`` in ansible.cfg), else ``auto``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible import constants as C


def configured_interpreter():
    """INTERPRETER_PYTHON from the environment or ansible.cfg (never from variables), else its default."""
    return C.config.get_config_value("INTERPRETER_PYTHON")


def module_python(python, host_vars=None, configured=configured_interpreter):
    if python:
        return python
    if host_vars is not None:
        try:
            own = host_vars["ansible_python_interpreter"]
        except KeyError:
            own = None
        if own:
            return own
    return configured() or "auto"


class FilterModule(object):
    def filters(self):
        return {"module_python": module_python}
