resource "eddy_cluster" "prod" {
  name = "orders-prod"

  # The quotas are eddy_cluster_quota's to set.
  lifecycle {
    ignore_changes = [ingress_mbps, egress_mbps, max_partitions]
  }
}

resource "eddy_cluster_quota" "prod" {
  cluster_id     = eddy_cluster.prod.id
  ingress_mbps   = 50
  egress_mbps    = 150
  max_partitions = 500
  max_topics     = 100
  max_groups     = 200

  # Topics may keep records for at most 30 days.
  max_retention_ms = 2592000000
}

output "ingress_ceiling" {
  value = eddy_cluster_quota.prod.ceilings["ingress_mbps"]
}
