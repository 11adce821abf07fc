resource "eddy_cluster" "prod" {
  name           = "orders-prod"
  max_partitions = 200
  ingress_mbps   = 50

  default_topic_configs = {
    "retention.ms" = "604800000" # 7 days
  }

  # As a Kafka cluster's broker configs: topics created automatically
  # (or without a partition count) get 6 partitions.
  broker_configs = {
    "num.partitions" = "6"
  }

  timeouts {
    create = "5m"
  }
}

output "bootstrap_servers" {
  value = eddy_cluster.prod.bootstrap_servers
}
