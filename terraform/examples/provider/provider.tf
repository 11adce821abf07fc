terraform {
  required_providers {
    eddy = {
      source = "eddy-streams/eddy"
    }
  }
}

# An organisation admin's API key. Leave the block empty to take the
# settings from EDDY_ENDPOINT, EDDY_API_KEY and EDDY_API_SECRET.
provider "eddy" {
  endpoint   = "http://127.0.0.1:8080"
  api_key    = var.eddy_api_key
  api_secret = var.eddy_api_secret
}

variable "eddy_api_key" {
  type = string
}

variable "eddy_api_secret" {
  type      = string
  sensitive = true
}
