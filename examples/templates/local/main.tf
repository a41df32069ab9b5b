# devmesh "local" template: each workspace is a directory on the
# coordinator's host, and its agent a background process there. No
# isolation at all: for trying devmesh out and for tests, not for sharing a
# machine with people you do not trust.

terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

variable "workspaces_dir" {
  type        = string
  default     = ""
  description = "Directory holding one directory per workspace, on the coordinator's host. Default: ~/.local/share/devmesh/workspaces."
}

variable "startup_script" {
  type        = string
  default     = ""
  description = "sh script the agent runs in the workspace's home once it has connected (its output: devmesh logs WS)."
}

data "devmesh_workspace" "me" {}

locals {
  root = var.workspaces_dir != "" ? var.workspaces_dir : pathexpand("~/.local/share/devmesh/workspaces")
  # The workspace's directory: home/ for the user, agent.pid, agent.log.
  dir = "${local.root}/${data.devmesh_workspace.me.id}"
}

resource "devmesh_agent" "main" {
  dir = "${local.dir}/home"
  # ~ in sessions and the startup script is the workspace's home, not the
  # coordinator account's (start.sh sets it for the agent too).
  env            = { HOME = "${local.dir}/home" }
  startup_script = var.startup_script
  # os and arch default to the coordinator host's.
}

resource "devmesh_metadata" "main" {
  resource_id = devmesh_agent.main.id
  item {
    key   = "directory"
    value = local.dir
  }
}

# The workspace directory: made by the first build, removed by delete.
resource "terraform_data" "dir" {
  input = local.dir

  provisioner "local-exec" {
    command     = "mkdir -p \"$DIR/home\""
    environment = { DIR = self.input }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "rm -rf -- \"$DIR\""
    environment = { DIR = self.input }
  }
}

# The agent process: exists while the workspace is started. Stop (and
# delete) destroys it, which ends the agent and every process the
# workspace started (a cgroup of its own when run as root with a writable
# cgroup v2, else the agent's process group and every process whose HOME
# is the workspace's home); a new agent, a new token
# (the coordinator rotates tokens on a start after a stop) or a new
# coordinator URL replaces it, which restarts the process.
resource "terraform_data" "agent" {
  count            = data.devmesh_workspace.me.start_count
  depends_on       = [terraform_data.dir]
  triggers_replace = [devmesh_agent.main.id, devmesh_agent.main.token, devmesh_agent.main.init_script]
  input            = local.dir

  provisioner "local-exec" {
    interpreter = ["/bin/sh"]
    command     = "${path.module}/start.sh"
    environment = {
      DIR                 = self.input
      INIT_SCRIPT         = devmesh_agent.main.init_script
      DEVMESH_AGENT_TOKEN = devmesh_agent.main.token
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh"]
    command     = "${path.module}/stop.sh"
    environment = { DIR = self.input }
  }
}
