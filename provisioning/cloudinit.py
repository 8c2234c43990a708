"""The first-boot script: writes the agent and its systemd unit, starts it, once."""

import base64
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

AGENT_PATH = Path(__file__).with_name("agent") / "devpilot-agent.py"
MARKER = "/var/lib/devpilot/.installed"


def agent_source() -> str:
    return AGENT_PATH.read_text()


def user_data(server_url: str, registration_token: str) -> str:
    """`--allow-http` only for an http:// Devpilot the admin said is fine to reach in clear
    (DEVPILOT_AGENT_ALLOW_HTTP, a private network): an https:// one never gets it, so a later
    redirect to plain HTTP is refused by the agent."""
    allowed = settings.DEVPILOT_AGENT_ALLOW_HTTP and urlsplit(server_url).scheme == "http"
    plain_http = " --allow-http" if allowed else ""
    agent = base64.b64encode(agent_source().encode()).decode()
    token = base64.b64encode(registration_token.encode()).decode()
    return f"""#cloud-config
write_files:
  - path: /opt/devpilot/devpilot-agent.py
    permissions: "0755"
    encoding: b64
    content: {agent}
  - path: /etc/devpilot/registration-token
    permissions: "0600"
    encoding: b64
    content: {token}
  - path: /etc/systemd/system/devpilot-agent.service
    permissions: "0644"
    content: |
      [Unit]
      Description=Devpilot agent
      After=network-online.target
      Wants=network-online.target

      [Service]
      ExecStart=/usr/bin/python3 /opt/devpilot/devpilot-agent.py --server {server_url} --token-file /etc/devpilot/registration-token --state /var/lib/devpilot/agent.json --attempts 1000{plain_http}
      Restart=always
      RestartSec=30

      [Install]
      WantedBy=multi-user.target
runcmd:
  - [sh, -c, "test -f {MARKER} || (mkdir -p /var/lib/devpilot && systemctl daemon-reload && systemctl enable --now devpilot-agent && touch {MARKER})"]
"""
