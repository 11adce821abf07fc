resource "eddy_cluster" "prod" {
  name = "orders-prod"

  # The broker configs are eddy_cluster_config's to set.
  lifecycle {
    ignore_changes = [broker_configs]
  }
}

resource "eddy_cluster_config" "prod" {
  cluster_id = eddy_cluster.prod.id

  configs = {
    "num.partitions"            = "6"     # topics created without a count
    "auto.create.topics.enable" = "false" # producers cannot create topics by accident
    "log.retention.ms"          = "604800000"
  }
}
