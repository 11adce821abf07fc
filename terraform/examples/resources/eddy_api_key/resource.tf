resource "eddy_api_key" "shop" {
  service_account_id = eddy_service_account.shop.id
  cluster_id         = eddy_cluster.prod.id
  description        = "shop backend, Kafka"

  # Rotate by bumping the generation, or automatically once the key is
  # 30 days old: the new key exists before the old one is deleted.
  rotation_keepers = {
    generation = "1"
  }
  rotate_after = "720h"
}

# Kafka client settings: SASL/PLAIN with the key.
output "kafka_username" {
  value = eddy_api_key.shop.id
}

output "kafka_password" {
  value     = eddy_api_key.shop.secret
  sensitive = true
}
