"""The module_python filter: cplane_kubeadm_python when set, else what ansible-core would use anyway."""
from ansible_collections.cplane.kubeadm.plugins.filter.module_python import FilterModule, module_python


def configured(value):
    return lambda: value


def test_the_venv_wins():
    assert module_python("/opt/cplane-kubeadm/venv/bin/python", {"ansible_python_interpreter": "/usr/bin/python3"},
                         configured("/usr/bin/python3.11")) == "/opt/cplane-kubeadm/venv/bin/python"


def test_unset_or_empty_falls_back_to_the_hosts_own_interpreter():
    for unset in (None, ""):
        assert module_python(unset, {"ansible_python_interpreter": "/usr/bin/python3"},
                             configured("auto")) == "/usr/bin/python3"


def test_then_the_setting_then_auto():
    assert module_python(None, {}, configured("/usr/local/bin/python3.12")) == "/usr/local/bin/python3.12"
    assert module_python(None, {}, configured(None)) == "auto"
    assert module_python(None, None, configured("auto_silent")) == "auto_silent"


def test_the_setting_is_read_from_the_environment(monkeypatch):
    from ansible import constants
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", "/srv/python/bin/python3")
    assert constants.config.get_config_value("INTERPRETER_PYTHON") == "/srv/python/bin/python3"
    assert module_python(None, {}) == "/srv/python/bin/python3"


def test_registered_as_a_filter():
    assert FilterModule().filters()["module_python"] is module_python
