# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition format 0.0.4, as node_exporter's textfile collector reads it.

The format (https://prometheus.io/docs/instrumenting/exposition_formats/): one ``# HELP`` and one
``# TYPE`` line per metric family, then its samples ``name{label="value",...} value``.  In HELP text
backslash and newline are escaped; in label values backslash, double quote and newline.  Names
match ``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*`` (``__`` is reserved).
node_exporter rejects a file in which one family appears twice or a sample has no TYPE-consistent
name, so every family is rendered once, with all its samples together.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("gauge", "counter", "untyped")
# Labels the Prometheus server sets on every scraped sample: a textfile label with one of these
# names would be renamed to exported_<name> (honor_labels: false), so none may be used here.
RESERVED_LABELS = ("job", "instance")


def escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value):
    """A sample value: integers without a fraction, floats in Python's shortest repr, NaN/+Inf/-Inf spelt out."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class MetricFamily(object):
    """One metric (name, HELP, TYPE) and its samples, each a dict of labels and a number."""

    def __init__(self, name, help_text, metric_type="gauge"):
        if not METRIC_NAME.match(name):
            raise ValueError("invalid metric name %r" % name)
        if metric_type not in TYPES:
            raise ValueError("invalid metric type %r for %s" % (metric_type, name))
        if metric_type == "counter" and not name.endswith("_total"):
            raise ValueError("counter %s must end in _total" % name)
        self.name = name
        self.help = help_text
        self.type = metric_type
        self.samples = []

    def add(self, value, **labels):
        if value is None:
            return
        for key in labels:
            if not LABEL_NAME.match(key) or key.startswith("__") or key in RESERVED_LABELS:
                raise ValueError("invalid label name %r on %s" % (key, self.name))
        key = tuple(sorted((k, "" if v is None else str(v)) for k, v in labels.items()))
        # One sample per label set: the last value wins (a duplicate would make node_exporter drop the file).
        self.samples = [s for s in self.samples if s[0] != key]
        self.samples.append((key, value))

    def render(self):
        lines = ["# HELP %s %s" % (self.name, escape_help(self.help)), "# TYPE %s %s" % (self.name, self.type)]
        for key, value in sorted(self.samples, key=lambda sample: sample[0]):
            labels = ",".join('%s="%s"' % (k, escape_label_value(v)) for k, v in key)
            lines.append("%s%s %s" % (self.name, "{%s}" % labels if labels else "", format_value(value)))
        return lines


class Registry(object):
    """The families of one textfile, in the order they were declared."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.families = {}

    def family(self, metric, help_text, metric_type="gauge"):
        """The family ``<prefix><metric>``, declared on first use; a second declaration must agree."""
        full = self.prefix + metric
        existing = self.families.get(full)
        if existing is None:
            existing = self.families[full] = MetricFamily(full, help_text, metric_type)
        elif existing.type != metric_type:
            raise ValueError("metric %s declared as %s and %s" % (full, existing.type, metric_type))
        return existing

    def add(self, metric, help_text, value, metric_type="gauge", **labels):
        """One sample; a label may be called anything but ``metric``, ``help_text``, ``value`` or ``metric_type``."""
        self.family(metric, help_text, metric_type).add(value, **labels)

    def render(self):
        """The textfile: every family that has samples, HELP and TYPE first, ending with a newline."""
        lines = []
        for family in self.families.values():
            if family.samples:
                lines.extend(family.render())
        return "\n".join(lines) + "\n" if lines else ""
