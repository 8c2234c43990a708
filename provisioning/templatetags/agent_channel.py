"""Template helpers for the agent's work: command descriptions and a workspace's open alerts."""

from django import template

from provisioning import alerts, commands

register = template.Library()


@register.filter
def command_description(command) -> str:
    """{{ command|command_description }}: "Add 2 SSH keys to root's authorized_keys"."""
    return commands.describe(command)


@register.simple_tag
def open_alerts_of(workspace):
    """{% open_alerts_of workspace as alerts %}: the alerts not resolved yet, newest first."""
    return list(alerts.open_alerts(workspace)[:20])
