# devmesh "kubernetes" template: each workspace is a pod (a one-replica
# Deployment) with its home directory on a PersistentVolumeClaim. The agent
# token lives in a Secret. See README.md.

terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.30"
    }
  }
}

variable "kubeconfig" {
  type        = string
  default     = ""
  description = "Path to a kubeconfig; empty: the in-cluster service account (coordinator running in the cluster)."
}

variable "namespace" {
  type        = string
  default     = "devmesh-workspaces"
  description = "Existing namespace to create workspaces in."
}

variable "image" {
  type        = string
  default     = "mcr.microsoft.com/devcontainers/base:bookworm"
  description = "Container image; it needs sh and curl or wget (to download devmesh)."
}

variable "cpu" {
  type        = string
  default     = "2"
  description = "CPU limit (Kubernetes quantity)."
}

variable "memory" {
  type        = string
  default     = "4Gi"
  description = "Memory limit (Kubernetes quantity)."
}

variable "home_size" {
  type        = string
  default     = "10Gi"
  description = "Size of the home directory volume."
}

provider "kubernetes" {
  config_path = var.kubeconfig != "" ? var.kubeconfig : null
}

data "devmesh_workspace" "me" {}

locals {
  name = "devmesh-${substr(data.devmesh_workspace.me.id, 0, 8)}"
  labels = {
    "app.kubernetes.io/name"       = "devmesh-workspace"
    "app.kubernetes.io/managed-by" = "devmesh"
    "devmesh.dev/workspace-id"     = data.devmesh_workspace.me.id
  }
}

resource "devmesh_agent" "main" {
  os  = "linux"
  dir = "/home/dev"
}

# The token in a Secret: the pod spec references it and never holds it.
resource "kubernetes_secret_v1" "agent" {
  metadata {
    name      = "${local.name}-agent"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    DEVMESH_AGENT_TOKEN = devmesh_agent.main.token
  }
}

# The home directory: kept across stop and start, removed with the
# workspace.
resource "kubernetes_persistent_volume_claim_v1" "home" {
  metadata {
    name      = "${local.name}-home"
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    access_modes = ["ReadWriteOnce"]
    resources {
      requests = {
        storage = var.home_size
      }
    }
  }
  wait_until_bound = false
}

# The pod exists while the workspace is started.
resource "kubernetes_deployment_v1" "workspace" {
  count = data.devmesh_workspace.me.start_count
  metadata {
    name      = local.name
    namespace = var.namespace
    labels    = local.labels
  }
  spec {
    replicas = 1
    strategy {
      type = "Recreate" # one pod at a time on the ReadWriteOnce volume
    }
    selector {
      match_labels = local.labels
    }
    template {
      metadata {
        labels = local.labels
      }
      spec {
        hostname = data.devmesh_workspace.me.name
        container {
          name    = "workspace"
          image   = var.image
          command = ["sh", "-c", devmesh_agent.main.init_script]
          env_from {
            secret_ref {
              name = kubernetes_secret_v1.agent.metadata[0].name
            }
          }
          resources {
            limits = {
              cpu    = var.cpu
              memory = var.memory
            }
          }
          volume_mount {
            name       = "home"
            mount_path = "/home/dev"
          }
        }
        volume {
          name = "home"
          persistent_volume_claim {
            claim_name = kubernetes_persistent_volume_claim_v1.home.metadata[0].name
          }
        }
      }
    }
  }
  # The agent connects out; there is nothing to wait for here.
  wait_for_rollout = false
}

resource "devmesh_metadata" "home" {
  resource_id = kubernetes_persistent_volume_claim_v1.home.id
  item {
    key   = "namespace"
    value = var.namespace
  }
  item {
    key   = "image"
    value = var.image
  }
  item {
    key   = "home volume"
    value = "${kubernetes_persistent_volume_claim_v1.home.metadata[0].name} (${var.home_size})"
  }
}
