"""The audit log: who did what, when, from where. Never a secret value or token."""

from devpilot.models import AuditEvent


def client_ip(request):
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(workspace, action, *, request=None, actor=None, target=None, target_label="", actor_identity=None,
           **data):
    """Record `action` (e.g. "secret.created") on `target` in `workspace`.

    The actor is the request's user, API token or machine identity unless given explicitly
    (background tasks pass actor=None and are shown as "Devpilot").
    """
    actor, token, actor_identity, actor_label = describe_actor(request, actor, actor_identity)
    return AuditEvent.objects.create(
        workspace=workspace,
        actor=actor,
        actor_token=token,
        actor_identity=actor_identity,
        actor_label=actor_label,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=target_label or (str(target) if target is not None else ""),
        data=data,
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
    )


def describe_actor(request=None, actor=None, actor_identity=None):
    """(user, API token, machine identity, label) of whoever acts: the request's user, token or identity
    unless given explicitly; "Devpilot" for background tasks. Shared with folder snapshots."""
    token = getattr(request, "api_token", None) if request is not None else None
    if actor_identity is None and request is not None:
        actor_identity = getattr(request, "machine_identity", None)
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if actor_identity is not None:
        return actor, None, actor_identity, f"Machine identity {actor_identity.name}"
    if token is not None:
        return actor, token, None, f"API token {token.name}"
    return actor, None, None, actor.email if actor is not None else "Devpilot"
