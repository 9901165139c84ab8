output "inventory" {
  description = "The Ansible inventory Terraform built from the nodes (JSON; ansible-playbook -i reads it saved as a .json file)."
  value       = jsonencode(local.inventory)
}

output "report" {
  description = "The JSON report written at apply."
  value       = local.report_dest
}

output "evidence_dir" {
  description = "Where the evidence bundle goes at destroy (cplane-evidence-<timestamp>.tar.gz)."
  value       = local.evidence_dir
}
