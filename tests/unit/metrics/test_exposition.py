"""The text exposition format metrics_textfile writes: names, units, escaping, one block per family."""
import math

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._metrics.exposition import (
    MetricFamily, Registry, escape_help, escape_label_value, format_value)


def test_label_values_escape_backslash_quote_and_newline():
    assert escape_label_value('C:\\pki\\"x"\nnext') == 'C:\\\\pki\\\\\\"x\\"\\nnext'
    reg = Registry("p_")
    reg.add("thing", "Help.", 1, file='/etc/"odd"\\dir\nname')
    assert 'p_thing{file="/etc/\\"odd\\"\\\\dir\\nname"} 1' in reg.render().splitlines()


def test_help_escapes_backslash_and_newline_but_not_quotes():
    assert escape_help('a "b" \\ c\nd') == 'a "b" \\\\ c\\nd'


@pytest.mark.parametrize("value, text", [
    (True, "1"), (False, "0"), (3, "3"), (2147483648, "2147483648"), (1.5, "1.5"), (0.2, "0.2"),
    (1796577723.0, "1796577723"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (-math.inf, "-Inf"), (-12, "-12"),
])
def test_values_are_plain_numbers(value, text):
    assert format_value(value) == text


def test_every_family_has_help_and_type_once_and_its_samples_together_in_label_order():
    reg = Registry("cplane_kubeadm_")
    reg.add("etcd_db_size_bytes", "Size.", 300, member="cp2")
    reg.add("etcd_raft_term", "Term.", 7, member="cp1")
    reg.add("etcd_db_size_bytes", "Size.", 100, member="cp1")
    reg.add("static_pod_restarts_total", "Restarts.", 4, metric_type="counter", node="cp1", component="etcd")
    assert reg.render() == (
        "# HELP cplane_kubeadm_etcd_db_size_bytes Size.\n"
        "# TYPE cplane_kubeadm_etcd_db_size_bytes gauge\n"
        'cplane_kubeadm_etcd_db_size_bytes{member="cp1"} 100\n'
        'cplane_kubeadm_etcd_db_size_bytes{member="cp2"} 300\n'
        "# HELP cplane_kubeadm_etcd_raft_term Term.\n"
        "# TYPE cplane_kubeadm_etcd_raft_term gauge\n"
        'cplane_kubeadm_etcd_raft_term{member="cp1"} 7\n'
        "# HELP cplane_kubeadm_static_pod_restarts_total Restarts.\n"
        "# TYPE cplane_kubeadm_static_pod_restarts_total counter\n"
        'cplane_kubeadm_static_pod_restarts_total{component="etcd",node="cp1"} 4\n')


def test_a_repeated_label_set_keeps_one_sample_and_none_values_are_left_out():
    reg = Registry()
    reg.add("x", "X.", 1, a="1")
    reg.add("x", "X.", 2, a="1")
    reg.add("x", "X.", None, a="2")
    reg.add("empty", "Nothing.", None)
    assert reg.render() == '# HELP x X.\n# TYPE x gauge\nx{a="1"} 2\n'
    assert Registry().render() == ""


@pytest.mark.parametrize("name, kind", [("1bad", "gauge"), ("has-dash", "gauge"), ("restarts", "counter"),
                                        ("ok", "histogram")])
def test_invalid_names_and_types_are_refused(name, kind):
    with pytest.raises(ValueError):
        MetricFamily(name, "h", kind)


@pytest.mark.parametrize("label", ["job", "instance", "__meta", "bad-name"])
def test_labels_prometheus_would_rename_or_reject_are_refused(label):
    with pytest.raises(ValueError, match=label):
        MetricFamily("ok", "h").add(1, **{label: "x"})


def test_a_family_cannot_change_its_type():
    reg = Registry()
    reg.add("a_total", "A.", 1, metric_type="counter")
    with pytest.raises(ValueError):
        reg.add("a_total", "A.", 1)
