#!/bin/sh
# Runs one of cplane.kubeadm's playbooks by its FQCN for a Terraform local-exec provisioner
# (examples/terraform/*, docs/terraform.md):
#   run-playbook.sh PLAYBOOK_FQCN [ANSIBLE_PLAYBOOK_ARGS...]   e.g. -e @settings.yml --check
# Terraform passes, in the environment:
#   CPLANE_INVENTORY  the inventory, as JSON (Ansible's yaml inventory plugin reads JSON)
#   CPLANE_VARS       extra variables, as a JSON object (typed: lists and booleans stay so)
#   ANSIBLE_PLAYBOOK  the ansible-playbook to run (default: the one on PATH)
# Both are written to a private temporary directory (host variables may hold connection
# secrets) that is removed when the run ends; the playbook's exit status is the script's.
# CPLANE_VARS comes last, so it wins over variable files given as arguments.
set -eu
playbook=${1:?usage: run-playbook.sh PLAYBOOK_FQCN [ANSIBLE_PLAYBOOK_ARGS...]}
shift
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
printf '%s\n' "${CPLANE_INVENTORY:?CPLANE_INVENTORY (JSON inventory) is not set}" >"$workdir/inventory.json"
printf '%s\n' "${CPLANE_VARS:-{\}}" >"$workdir/vars.json"
"${ANSIBLE_PLAYBOOK:-ansible-playbook}" -i "$workdir/inventory.json" "$@" -e "@$workdir/vars.json" "$playbook"
