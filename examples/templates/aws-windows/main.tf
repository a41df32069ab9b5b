# devmesh "aws-windows" template: each workspace is an EC2 Windows Server
# instance; PowerShell user data installs the agent as a scheduled task
# that runs at boot. See README.md.

terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "AWS region."
}

variable "instance_type" {
  type        = string
  default     = "t3.large"
  description = "EC2 instance type (x86_64; use an arm64 type with an arm64 AMI)."
}

provider "aws" {
  region = var.region
}

data "devmesh_workspace" "me" {}

data "aws_ami" "windows" {
  most_recent = true
  owners      = ["801119661308"] # Amazon
  filter {
    name   = "name"
    values = ["Windows_Server-2022-English-Full-Base-*"]
  }
}

locals {
  name = "devmesh-${data.devmesh_workspace.me.owner}-${data.devmesh_workspace.me.name}"
  tags = {
    Name                = local.name
    "devmesh:workspace" = data.devmesh_workspace.me.id
    "devmesh:owner"     = data.devmesh_workspace.me.owner
  }
}

resource "devmesh_agent" "main" {
  os   = "windows"
  arch = "amd64"
  dir  = "C:\\Users\\devmesh"
}

# The agent dials out (coordinator, DERP, STUN, WireGuard): no inbound rule.
resource "aws_security_group" "workspace" {
  name        = local.name
  description = "devmesh workspace ${data.devmesh_workspace.me.name}: outbound only"
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = local.tags
}

# The instance exists while the workspace is started: stop terminates it.
resource "aws_instance" "workspace" {
  count                       = data.devmesh_workspace.me.start_count
  ami                         = data.aws_ami.windows.id
  instance_type               = var.instance_type
  vpc_security_group_ids      = [aws_security_group.workspace.id]
  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/user-data.ps1.tftpl", {
    init_script = devmesh_agent.main.init_script
    token       = devmesh_agent.main.token
  })
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  root_block_device {
    volume_size = 50
    encrypted   = true
  }
  tags = local.tags
}
