variable "control_plane_hosts" {
  description = <<-EOT
    The control-plane nodes: inventory hostname => host variables (ansible_host, ansible_user, and
    any role variable that differs per node, e.g. control_plane_report_etcd_endpoints).
  EOT
  type        = any
}

variable "playbook_vars" {
  description = "Extra variables for every playbook run (typed: lists and booleans stay so), e.g. etcd_maintenance_snapshot_dir."
  type        = any
  default     = {}
}

variable "etcd_maintenance" {
  description = "Run cplane.kubeadm.etcd_maintenance after the report."
  type        = bool
  default     = true
}

variable "report_dest" {
  description = "Where the JSON report of every node goes on the machine running Terraform (default: reports/control-plane-report.json in the working directory)."
  type        = string
  default     = null
}

variable "evidence_dir" {
  description = "Directory on the machine running Terraform for the evidence bundle written at destroy (default: evidence/ in the working directory)."
  type        = string
  default     = null
}

variable "ansible_playbook" {
  description = "The ansible-playbook to run (a path, or a name looked up on PATH)."
  type        = string
  default     = "ansible-playbook"
}
