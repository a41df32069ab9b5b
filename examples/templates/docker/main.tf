# devmesh "docker" template: each workspace is a container on a Docker
# host, with its home directory on a volume that survives stop and start.
# The container's main process is the devmesh agent. See README.md.

terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
    docker = {
      source  = "kreuzwerker/docker"
      version = "~> 3.0"
    }
  }
}

variable "docker_host" {
  type        = string
  default     = "unix:///var/run/docker.sock"
  description = "Docker daemon to run workspaces on."
}

variable "image" {
  type        = string
  default     = "mcr.microsoft.com/devcontainers/base:bookworm"
  description = "Container image; it needs sh and curl or wget (to download devmesh)."
}

variable "memory_mb" {
  type        = number
  default     = 4096
  description = "Memory limit of the container, in MiB."
}

provider "docker" {
  host = var.docker_host
}

data "devmesh_workspace" "me" {}

locals {
  name = "devmesh-${data.devmesh_workspace.me.owner}-${data.devmesh_workspace.me.name}"
}

resource "devmesh_agent" "main" {
  os  = "linux"
  dir = "/home/dev"
  env = { DEVMESH_WORKSPACE = data.devmesh_workspace.me.name }
}

resource "docker_image" "main" {
  name         = var.image
  keep_locally = true
}

# The home directory: kept across stop and start, removed with the
# workspace.
resource "docker_volume" "home" {
  name = "${local.name}-home"
  labels {
    label = "devmesh.workspace.id"
    value = data.devmesh_workspace.me.id
  }
}

# The container exists while the workspace is started.
resource "docker_container" "workspace" {
  count    = data.devmesh_workspace.me.start_count
  name     = local.name
  image    = docker_image.main.image_id
  hostname = data.devmesh_workspace.me.name
  memory   = var.memory_mb
  # The agent is the container's main process; the token reaches it in the
  # environment, never on a command line.
  entrypoint = ["sh", "-c", devmesh_agent.main.init_script]
  env        = ["DEVMESH_AGENT_TOKEN=${devmesh_agent.main.token}"]
  restart    = "unless-stopped"

  # A coordinator on the Docker host itself is reachable as
  # host.docker.internal (give the coordinator that access URL).
  host {
    host = "host.docker.internal"
    ip   = "host-gateway"
  }

  volumes {
    container_path = "/home/dev"
    volume_name    = docker_volume.home.name
  }

  labels {
    label = "devmesh.workspace.id"
    value = data.devmesh_workspace.me.id
  }
}

resource "devmesh_metadata" "home" {
  resource_id = docker_volume.home.id
  item {
    key   = "image"
    value = var.image
  }
  item {
    key   = "volume"
    value = docker_volume.home.name
  }
}
