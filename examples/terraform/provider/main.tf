# cplane.kubeadm from Terraform through the ansible/ansible provider's ansible_playbook resource
# (docs/terraform.md).
#
# ansible_playbook runs ansible-playbook against ONE host (name) in the given groups, from an
# inventory file it writes itself; host and play variables go in as extra_vars (strings, the
# provider's schema: map of string) and var_files (typed).  So:
#   control_plane_report  one run per node, each writing reports/<node>.json
#   etcd_defrag           once, from the first node: the cluster's defragmentation, leader last
#   etcd_snapshot         one run per node after the defragmentation: a verified snapshot each
#   evidence_before_destroy  at destroy, FIRST: one evidence bundle of every node (local-exec,
#                         since the provider runs nothing at destroy)

terraform {
  required_version = ">= 1.4.0"
  required_providers {
    ansible = {
      source  = "ansible/ansible"
      version = "~> 1.3"
    }
  }
}

locals {
  hosts        = sort(keys(var.control_plane_hosts))
  first_host   = local.hosts[0]
  report_dir   = var.report_dir != null ? var.report_dir : "${abspath(path.root)}/reports"
  evidence_dir = var.evidence_dir != null ? var.evidence_dir : "${abspath(path.root)}/evidence"
  # The same nodes as an inventory (output "inventory"), for the destroy-time run.
  inventory = {
    kube_control_plane = {
      hosts = var.control_plane_hosts
    }
  }
}

# The reports' directory must exist (the role writes with ansible.builtin.copy, which does not
# create it).
resource "terraform_data" "report_dir" {
  triggers_replace = [local.report_dir]

  provisioner "local-exec" {
    command = "mkdir -p '${local.report_dir}'"
  }
}

resource "ansible_playbook" "control_plane_report" {
  for_each   = var.control_plane_hosts
  depends_on = [terraform_data.report_dir]

  playbook                = "cplane.kubeadm.control_plane_report"
  name                    = each.key
  groups                  = ["kube_control_plane"]
  ansible_playbook_binary = var.ansible_playbook
  var_files               = var.var_files
  extra_vars = merge(var.playbook_vars, each.value, {
    control_plane_report_dest = "${local.report_dir}/${each.key}.json"
  })
  # replayable (the default): a fresh report on every apply.
}

resource "ansible_playbook" "etcd_defrag" {
  depends_on = [ansible_playbook.control_plane_report]

  playbook                = "cplane.kubeadm.etcd_maintenance"
  name                    = local.first_host
  groups                  = ["kube_control_plane"]
  ansible_playbook_binary = var.ansible_playbook
  var_files               = var.var_files
  # Defragmentation is cluster-wide (the member list is read through this node's etcd) and takes
  # etcd's lock: one run defragments every member, one at a time, the leader last.
  extra_vars = merge(var.playbook_vars, var.control_plane_hosts[local.first_host], {
    etcd_maintenance_snapshot = "false"
  })
  replayable = false
}

resource "ansible_playbook" "etcd_snapshot" {
  for_each   = var.control_plane_hosts
  depends_on = [ansible_playbook.etcd_defrag]

  playbook                = "cplane.kubeadm.etcd_maintenance"
  name                    = each.key
  groups                  = ["kube_control_plane"]
  ansible_playbook_binary = var.ansible_playbook
  var_files               = var.var_files
  extra_vars = merge(var.playbook_vars, each.value, {
    etcd_maintenance_defrag = "false"
  })
  replayable = false
}

# The evidence before destroy (see ../local-exec/main.tf): destroy-time provisioners read only
# self, so the run's inputs are stored in input; this resource depends on the playbook runs (and,
# in a real configuration, on the nodes' resources), so Terraform destroys it, running the
# provisioner, before them.  on_failure = fail stops the destroy when no bundle was written.
resource "terraform_data" "evidence_before_destroy" {
  depends_on = [ansible_playbook.control_plane_report, ansible_playbook.etcd_snapshot]

  input = {
    script           = "${abspath(path.module)}/../run-playbook.sh"
    var_file_args    = join(" ", [for f in var.var_files : "-e '@${abspath(f)}'"])
    ansible_playbook = var.ansible_playbook
    inventory        = jsonencode(local.inventory)
    vars = jsonencode(merge(var.playbook_vars, {
      target                          = "kube_control_plane"
      control_plane_report_bundle     = "true"
      control_plane_report_bundle_dir = local.evidence_dir
    }))
  }

  provisioner "local-exec" {
    when       = destroy
    on_failure = fail
    command    = "'${self.input.script}' cplane.kubeadm.control_plane_report ${self.input.var_file_args}"
    environment = {
      CPLANE_INVENTORY = self.input.inventory
      CPLANE_VARS      = self.input.vars
      ANSIBLE_PLAYBOOK = self.input.ansible_playbook
    }
  }
}
