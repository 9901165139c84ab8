# cplane.kubeadm from Terraform through local-exec provisioners (docs/terraform.md).
#
# The control-plane nodes come in as a variable (in a real configuration: from the resources that
# create them); Terraform turns them into an Ansible inventory (output "inventory") and runs the
# collection's playbooks by FQCN through ../run-playbook.sh:
#   apply:   cplane.kubeadm.control_plane_report (JSON report), then cplane.kubeadm.etcd_maintenance
#   destroy: cplane.kubeadm.control_plane_report with control_plane_report_bundle=true FIRST, so
#            the evidence of the control plane is kept before anything it ran on goes away.

terraform {
  # terraform_data is built in from Terraform 1.4 on; no provider is needed.
  required_version = ">= 1.4.0"
}

locals {
  inventory = {
    kube_control_plane = {
      hosts = var.control_plane_hosts
    }
  }
  report_dest  = var.report_dest != null ? var.report_dest : "${abspath(path.root)}/reports/control-plane-report.json"
  evidence_dir = var.evidence_dir != null ? var.evidence_dir : "${abspath(path.root)}/evidence"
  script       = "${abspath(path.module)}/../run-playbook.sh"
}

# A fresh report on every change of the inventory or the settings: the state of the control
# plane before Terraform or Ansible touch it.
resource "terraform_data" "control_plane_report" {
  triggers_replace = [local.inventory, var.playbook_vars, local.report_dest]

  provisioner "local-exec" {
    # The report's directory must exist (ansible.builtin.copy does not create it).
    command = "mkdir -p '${dirname(local.report_dest)}' && '${local.script}' cplane.kubeadm.control_plane_report"
    environment = {
      CPLANE_INVENTORY = jsonencode(local.inventory)
      CPLANE_VARS = jsonencode(merge(var.playbook_vars, {
        target                    = "kube_control_plane"
        control_plane_report_dest = local.report_dest
      }))
      ANSIBLE_PLAYBOOK = var.ansible_playbook
    }
  }
}

# Defragmentation (once, leader last) and a verified snapshot on every node, one node at a time.
resource "terraform_data" "etcd_maintenance" {
  count            = var.etcd_maintenance ? 1 : 0
  triggers_replace = [local.inventory, var.playbook_vars]
  depends_on       = [terraform_data.control_plane_report]

  provisioner "local-exec" {
    command = "'${local.script}' cplane.kubeadm.etcd_maintenance"
    environment = {
      CPLANE_INVENTORY = jsonencode(local.inventory)
      CPLANE_VARS      = jsonencode(merge(var.playbook_vars, { target = "kube_control_plane" }))
      ANSIBLE_PLAYBOOK = var.ansible_playbook
    }
  }
}

# The evidence before destroy.  Destroy-time provisioners may only read their own resource
# (self), so everything the run needs is stored in input.  Terraform destroys dependents before
# what they depend on: this resource depends on the others (and, in a real configuration, on the
# nodes' resources), so its provisioner runs first.  on_failure = fail: when the bundle cannot be
# written, the destroy stops and nothing else is destroyed.
resource "terraform_data" "evidence_before_destroy" {
  depends_on = [terraform_data.control_plane_report, terraform_data.etcd_maintenance]

  input = {
    script           = local.script
    ansible_playbook = var.ansible_playbook
    inventory        = jsonencode(local.inventory)
    vars = jsonencode(merge(var.playbook_vars, {
      target                          = "kube_control_plane"
      control_plane_report_bundle     = true
      control_plane_report_bundle_dir = local.evidence_dir
    }))
  }

  provisioner "local-exec" {
    when       = destroy
    on_failure = fail
    command    = "'${self.input.script}' cplane.kubeadm.control_plane_report"
    environment = {
      CPLANE_INVENTORY = self.input.inventory
      CPLANE_VARS      = self.input.vars
      ANSIBLE_PLAYBOOK = self.input.ansible_playbook
    }
  }
}
