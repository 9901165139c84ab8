variable "control_plane_hosts" {
  description = <<-EOT
    The control-plane nodes: inventory hostname => host variables as strings (ansible_host,
    ansible_user, and any role variable that differs per node, e.g. etcd_maintenance_endpoints).
    The provider passes them as extra variables of that node's run.
  EOT
  type        = map(map(string))
}

variable "playbook_vars" {
  description = "Extra variables for every run, as strings (the provider's extra_vars is a map of string; booleans and numbers are converted by the roles)."
  type        = map(string)
  default     = {}
}

variable "var_files" {
  description = "Variable files (YAML or JSON) for every run, for typed settings such as lists; extra variables win over them."
  type        = list(string)
  default     = []
}

variable "report_dir" {
  description = "Directory on the machine running Terraform for the per-node JSON reports written at apply (default: reports/ in the working directory)."
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
