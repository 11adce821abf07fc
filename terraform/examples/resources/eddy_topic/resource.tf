resource "eddy_topic" "orders" {
  cluster_id = eddy_cluster.prod.id
  name       = "orders"
  partitions = 12 # raise in place; lowering replaces the topic

  configs = {
    "cleanup.policy" = "delete"
    "retention.ms"   = "86400000"
  }
}
