output "inventory" {
  description = "The nodes as an Ansible inventory (JSON), as the destroy-time evidence run uses it."
  value       = jsonencode(local.inventory)
}

output "reports" {
  description = "The JSON report of each node, written at apply."
  value       = { for name in local.hosts : name => "${local.report_dir}/${name}.json" }
}

output "evidence_dir" {
  description = "Where the evidence bundle goes at destroy (cplane-evidence-<timestamp>.tar.gz)."
  value       = local.evidence_dir
}
