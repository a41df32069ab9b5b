# devmesh "netns" template (Linux, root): each workspace is a network
# namespace on the coordinator's host, behind a NAT of its own, with its
# agent running inside. It looks like a remote machine on a private LAN to
# the tailnet: the agent reaches the coordinator through the NAT and peers
# reach it by NAT traversal or the relay. See README.md.

terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

variable "coordinator_url" {
  type        = string
  default     = ""
  description = "Coordinator URL as seen from inside the namespace (not 127.0.0.1). Default: the coordinator's access URL."
}

variable "state_dir" {
  type        = string
  default     = "/var/lib/devmesh-netns"
  description = "Directory holding each workspace's directory and the subnet allocations."
}

variable "subnet_prefix" {
  type        = string
  default     = "10.213"
  description = "First two octets of the /16 the namespaces' /30 subnets are cut from."
}

variable "nameservers" {
  type        = string
  default     = "1.1.1.1 9.9.9.9"
  description = "DNS servers for the namespace's resolv.conf, space-separated."
}

provider "devmesh" {
  url = var.coordinator_url != "" ? var.coordinator_url : null
}

data "devmesh_workspace" "me" {}

locals {
  short = substr(replace(data.devmesh_workspace.me.id, "-", ""), 0, 8)
  # Interface names are at most 15 characters.
  ns      = "dm-${local.short}"
  host_if = "dmh${local.short}"
  ns_if   = "dmn${local.short}"
  dir     = "${var.state_dir}/${data.devmesh_workspace.me.id}"
}

resource "devmesh_agent" "main" {
  # os and arch default to the coordinator host's, where the namespace is.
  dir = "${local.dir}/home"
  env = { DEVMESH_NETNS = local.ns }
}

# The namespace, its veth pair, address, routes and NAT rules: made by the
# first build, removed by delete (with everything still running in it).
resource "terraform_data" "netns" {
  input = {
    ns        = local.ns
    host_if   = local.host_if
    ns_if     = local.ns_if
    dir       = local.dir
    state_dir = var.state_dir
  }

  provisioner "local-exec" {
    interpreter = ["/bin/sh"]
    command     = "${path.module}/netns-up.sh"
    environment = {
      NS          = self.input.ns
      HOST_IF     = self.input.host_if
      NS_IF       = self.input.ns_if
      DIR         = self.input.dir
      STATE_DIR   = self.input.state_dir
      PREFIX      = var.subnet_prefix
      NAMESERVERS = var.nameservers
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh"]
    command     = "${path.module}/netns-down.sh"
    environment = {
      NS        = self.input.ns
      HOST_IF   = self.input.host_if
      DIR       = self.input.dir
      STATE_DIR = self.input.state_dir
    }
  }
}

# The agent process inside the namespace: exists while the workspace is
# started. Stop destroys it (the namespace stays); a new agent, token or
# coordinator URL replaces it, which restarts the process.
resource "terraform_data" "agent" {
  count = data.devmesh_workspace.me.start_count
  triggers_replace = [
    devmesh_agent.main.id,
    devmesh_agent.main.token,
    devmesh_agent.main.init_script,
    terraform_data.netns.id,
  ]
  input = { ns = local.ns, dir = local.dir }

  provisioner "local-exec" {
    interpreter = ["/bin/sh"]
    command     = "${path.module}/agent-start.sh"
    environment = {
      NS                  = self.input.ns
      DIR                 = self.input.dir
      INIT_SCRIPT         = devmesh_agent.main.init_script
      DEVMESH_AGENT_TOKEN = devmesh_agent.main.token
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh"]
    command     = "${path.module}/agent-stop.sh"
    environment = { DIR = self.input.dir }
  }
}

resource "devmesh_metadata" "netns" {
  resource_id = terraform_data.netns.id
  item {
    key   = "namespace"
    value = local.ns
  }
  item {
    key   = "directory"
    value = local.dir
  }
}
