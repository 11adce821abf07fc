data "eddy_cluster" "prod" {
  name = "orders-prod"
}

output "partitions_left" {
  value = data.eddy_cluster.prod.max_partitions - data.eddy_cluster.prod.partitions_used
}
