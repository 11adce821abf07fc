# A complete tenant setup in one `terraform apply`: a cluster, a topic, an
# application's service account with a role on the cluster and a Kafka ACL
# beyond it, and the API key the application logs in to Kafka with. Nothing needs a second apply:
# the key is created by the same run that creates what it gives access to.
#
#   export EDDY_ENDPOINT=http://127.0.0.1:8080 EDDY_API_KEY=key-… EDDY_API_SECRET=…
#   terraform apply
#   kcat -b "$(terraform output -raw bootstrap_servers)" -X security.protocol=SASL_PLAINTEXT \
#     -X sasl.mechanisms=PLAIN -X sasl.username="$(terraform output -raw kafka_username)" \
#     -X sasl.password="$(terraform output -raw kafka_password)" -P -t orders

terraform {
  required_providers {
    eddy = {
      source = "eddy-streams/eddy"
    }
  }
}

variable "endpoint" {
  description = "Eddy REST API; null takes EDDY_ENDPOINT."
  type        = string
  default     = null
}

variable "api_key" {
  description = "An organisation admin's API key id; null takes EDDY_API_KEY."
  type        = string
  default     = null
}

variable "api_secret" {
  description = "Its secret; null takes EDDY_API_SECRET."
  type        = string
  default     = null
  sensitive   = true
}

variable "cluster_name" {
  type    = string
  default = "orders-prod"
}

provider "eddy" {
  endpoint   = var.endpoint
  api_key    = var.api_key
  api_secret = var.api_secret
}

resource "eddy_cluster" "main" {
  name           = var.cluster_name
  max_partitions = 100

  default_topic_configs = {
    "retention.ms" = "604800000"
  }
}

resource "eddy_topic" "orders" {
  cluster_id = eddy_cluster.main.id
  name       = "orders"
  partitions = 6

  configs = {
    "retention.ms"   = "259200000" # 3 days
    "cleanup.policy" = "delete"
  }
}

resource "eddy_service_account" "app" {
  name        = "${var.cluster_name}-app"
  description = "The orders application"
}

resource "eddy_role_binding" "app" {
  cluster_id         = eddy_cluster.main.id
  service_account_id = eddy_service_account.app.id
  role               = "developer-write"
}

# The role lets the application produce and consume but not create
# topics; it creates its own retry and dead-letter topics, all named
# orders-…, so allow it that — and nothing else — with an ACL.
resource "eddy_acl" "app_creates_orders_topics" {
  cluster_id    = eddy_cluster.main.id
  principal     = "User:${eddy_service_account.app.id}"
  resource_type = "topic"
  resource_name = "orders-"
  pattern_type  = "prefixed"
  operation     = "create"
  permission    = "allow"
}

resource "eddy_api_key" "app" {
  service_account_id = eddy_service_account.app.id
  cluster_id         = eddy_cluster.main.id
  description        = "orders application"

  rotation_keepers = {
    generation = "1" # bump to rotate; the new key exists before the old one goes
  }

  # The key is useless until the role is bound and the ACL exists.
  depends_on = [eddy_role_binding.app, eddy_acl.app_creates_orders_topics]
}

output "cluster_id" {
  value = eddy_cluster.main.id
}

output "bootstrap_servers" {
  value = eddy_cluster.main.bootstrap_servers
}

output "topic" {
  value = eddy_topic.orders.name
}

output "kafka_username" {
  value = eddy_api_key.app.id
}

output "kafka_password" {
  value     = eddy_api_key.app.secret
  sensitive = true
}
