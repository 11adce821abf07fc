# A topic made outside Terraform, e.g. by an application's admin client.
data "eddy_topic" "audit" {
  cluster_id = data.eddy_cluster.prod.id
  name       = "audit-log"
}

output "audit_retention_ms" {
  value = lookup(data.eddy_topic.audit.configs, "retention.ms", "default")
}
