"""Changelog fragments follow antsibull-changelog's rules.

New modules, plugins and roles are announced by antsibull-changelog itself, from the version_added
of their documentation (modules and filters) or of the role's main entry point; a fragment that
announces them lists them twice.  Playbooks are not documented that way and go in an
``add object.playbook`` section.
"""
import glob
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NEW_THING = re.compile(r"\bnew (module|role|filter|plugin|playbook)s?\b", re.I)


def fragments():
    for path in sorted(glob.glob(os.path.join(ROOT, "changelogs", "fragments", "*.y*ml"))):
        with open(path) as handle:
            yield os.path.basename(path), yaml.safe_load(handle) or {}


def test_no_fragment_announces_a_new_module_role_or_plugin():
    offenders = []
    for name, fragment in fragments():
        for section, entries in fragment.items():
            if section.startswith("add ") or section == "release_summary":
                continue
            for entry in entries if isinstance(entries, list) else [entries]:
                if NEW_THING.search(str(entry)):
                    offenders.append("%s [%s]: %s" % (name, section, str(entry)[:80]))
    assert not offenders, offenders


def test_every_module_filter_and_role_has_version_added():
    missing = []
    for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        with open(path) as handle:
            text = handle.read()
        doc = yaml.safe_load(text.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])
        if not doc.get("version_added"):
            missing.append(path)
    for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.yml")):
        with open(path) as handle:
            if not (yaml.safe_load(handle)["DOCUMENTATION"].get("version_added")):
                missing.append(path)
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        with open(path) as handle:
            if not yaml.safe_load(handle)["argument_specs"]["main"].get("version_added"):
                missing.append(path)
    assert not missing, missing


def test_every_playbook_is_announced():
    announced = set()
    for _name, fragment in fragments():
        announced |= {entry["name"] for entry in fragment.get("add object.playbook") or []}
    playbooks = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))}
    assert playbooks <= announced, playbooks - announced
