data "eddy_cluster" "prod" {
  name = "orders-prod"
}

data "eddy_cluster_config" "prod" {
  cluster_id = data.eddy_cluster.prod.id
}

output "default_partitions" {
  value = lookup(data.eddy_cluster_config.prod.configs, "num.partitions", "1")
}
