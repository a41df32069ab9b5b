# devmesh "aws-ec2" template: each workspace is an EC2 instance with its
# home directory on an EBS volume that survives stop and start. cloud-init
# installs the agent as a systemd service. See README.md.

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

variable "availability_zone" {
  type        = string
  default     = "eu-west-1a"
  description = "Zone for the instance and its home volume (they must share it)."
}

variable "instance_type" {
  type        = string
  default     = "t3.medium"
  description = "EC2 instance type (x86_64)."
}

variable "home_size_gb" {
  type        = number
  default     = 20
  description = "Size of the home directory volume, in GiB."
}

provider "aws" {
  region = var.region
}

data "devmesh_workspace" "me" {}

data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnet" "default" {
  vpc_id            = data.aws_vpc.default.id
  availability_zone = var.availability_zone
  default_for_az    = true
}

locals {
  name = "devmesh-${data.devmesh_workspace.me.owner}-${data.devmesh_workspace.me.name}"
  tags = {
    Name                  = local.name
    "devmesh:workspace"   = data.devmesh_workspace.me.id
    "devmesh:owner"       = data.devmesh_workspace.me.owner
    "devmesh:access-url"  = data.devmesh_workspace.me.access_url
    "devmesh:provisioned" = "terraform"
  }
}

resource "devmesh_agent" "main" {
  os   = "linux"
  arch = "amd64"
  dir  = "/home/ubuntu"
}

# The agent dials out (coordinator, DERP, STUN, WireGuard): no inbound rule.
resource "aws_security_group" "workspace" {
  name        = local.name
  description = "devmesh workspace ${data.devmesh_workspace.me.name}: outbound only"
  vpc_id      = data.aws_vpc.default.id
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = local.tags
}

# The home directory: kept across stop and start, removed with the
# workspace.
resource "aws_ebs_volume" "home" {
  availability_zone = var.availability_zone
  size              = var.home_size_gb
  type              = "gp3"
  encrypted         = true
  tags              = merge(local.tags, { Name = "${local.name}-home" })
}

# The instance exists while the workspace is started: stop terminates it.
resource "aws_instance" "workspace" {
  count                       = data.devmesh_workspace.me.start_count
  ami                         = data.aws_ami.ubuntu.id
  instance_type               = var.instance_type
  subnet_id                   = data.aws_subnet.default.id
  vpc_security_group_ids      = [aws_security_group.workspace.id]
  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/cloud-init.sh.tftpl", {
    init_script = devmesh_agent.main.init_script
    token       = devmesh_agent.main.token
    volume_id   = aws_ebs_volume.home.id
  })
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  root_block_device {
    volume_size = 16
    encrypted   = true
  }
  tags = local.tags
}

resource "aws_volume_attachment" "home" {
  count       = data.devmesh_workspace.me.start_count
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.home.id
  instance_id = aws_instance.workspace[0].id
}

resource "devmesh_metadata" "home" {
  resource_id = aws_ebs_volume.home.id
  item {
    key   = "instance type"
    value = var.instance_type
  }
  item {
    key   = "zone"
    value = var.availability_zone
  }
  item {
    key   = "home volume"
    value = "${aws_ebs_volume.home.id} (${var.home_size_gb} GiB)"
  }
}
