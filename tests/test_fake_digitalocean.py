"""The fake behaves like DigitalOcean, so tests against it mean something."""

import base64
import copy
import hashlib

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fake_digitalocean import FakeDigitalOcean
from tests.openapi import check_answer

TOKEN = "dop_v1_good"


def call(fake, method, path, token=TOKEN, **kwargs):
    return requests.request(method, fake.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5, **kwargs)


def test_errors_have_the_real_shape(fake_do):
    response = call(fake_do, "GET", "/v2/account", token="dop_v1_wrong")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"id", "message", "request_id"} and body["id"] == "unauthorized"
    assert response.headers["x-request-id"] == body["request_id"]


def test_every_answer_has_rate_limit_headers_and_the_budget_ends_in_429(fake_do):
    fake_do.per_minute = 3
    answers = [call(fake_do, "GET", "/v2/account") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(answers[0].headers)
    assert answers[3].json()["id"] == "too_many_requests" and int(answers[3].headers["retry-after"]) >= 1


def test_a_token_without_the_scope_gets_403(fake_do):
    fake_do.add_token("dop_v1_read", scopes={"account:read", "app:read"})
    app = fake_do.add_app("web")
    assert call(fake_do, "GET", f"/v2/apps/{app['id']}", token="dop_v1_read").status_code == 200
    forbidden = call(fake_do, "PUT", f"/v2/apps/{app['id']}", token="dop_v1_read", json={"spec": app["spec"]})
    assert forbidden.status_code == 403 and forbidden.json()["id"] == "forbidden"


def test_revoked_tokens_stop_working(fake_do):
    fake_do.revoke_token(TOKEN)
    assert call(fake_do, "GET", "/v2/account").status_code == 401


def test_lists_are_paged_with_absolute_next_links(fake_do):
    for i in range(25):
        fake_do.add_app(f"app-{i}")
    first = call(fake_do, "GET", "/v2/apps").json()
    assert len(first["apps"]) == 20 and first["meta"]["total"] == 25
    assert first["links"]["pages"]["next"].startswith("https://api.digitalocean.test/v2/apps?page=2")
    second = requests.get(first["links"]["pages"]["next"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
    assert len(second["apps"]) == 5 and "next" not in second["links"]["pages"]


def test_secret_values_come_back_encrypted_and_survive_a_round_trip(fake_do):
    app = fake_do.add_app("web", envs=[])
    spec = {**app["spec"], "envs": [{"key": "TOKEN", "value": "plain", "type": "SECRET", "scope": "RUN_TIME"}]}
    stored = call(fake_do, "PUT", f"/v2/apps/{app['id']}", json={"spec": spec}).json()["app"]["spec"]["envs"][0]
    assert stored["value"].startswith("EV[1:") and fake_do.plaintext(stored["value"]) == "plain"
    again = call(fake_do, "PUT", f"/v2/apps/{app['id']}", json={"spec": {**spec, "envs": [stored]}}).json()
    assert again["app"]["spec"]["envs"][0]["value"] == stored["value"]
    assert fake_do.deployments(app["id"]) == 2


def test_invalid_variable_names_and_changed_databases_are_refused(fake_do):
    app = fake_do.add_app("web", databases=[{"name": "db", "engine": "PG", "production": True}])
    bad = call(fake_do, "PUT", f"/v2/apps/{app['id']}", json={"spec": {**app["spec"], "envs": [{"key": "A-B", "value": "x"}]}})
    assert bad.status_code == 400 and "A-B" in bad.json()["message"]
    altered = call(fake_do, "PUT", f"/v2/apps/{app['id']}", json={"spec": {**app["spec"], "databases": []}})
    assert altered.status_code == 400 and "database user password" in altered.json()["message"]
    assert fake_do.deployments(app["id"]) == 0


def test_faults_can_be_injected(fake_do):
    fake_do.fail_next("GET", r"/v2/account", status=503)
    assert call(fake_do, "GET", "/v2/account").status_code == 503
    assert call(fake_do, "GET", "/v2/account").status_code == 200
    app = fake_do.add_app("web")
    fake_do.fail_next("PUT", r"/v2/apps/", status=500, after_applying=True)
    spec = {**app["spec"], "envs": [{"key": "A", "value": "1", "type": "GENERAL"}]}
    assert call(fake_do, "PUT", f"/v2/apps/{app['id']}", json={"spec": spec}).status_code == 500
    assert fake_do.deployments(app["id"]) == 1  # applied even though the client saw a failure


def test_the_live_server_answers_like_the_in_process_fake():
    fake = FakeDigitalOcean()
    fake.add_token(TOKEN)
    url = fake.serve()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert call(fake, "GET", "/v2/account").json()["account"]["email"] == "ops@example.test"
        fake.fail_next("GET", r"/v2/account", status="timeout")
        try:
            call(fake, "GET", "/v2/account")
            raised = False
        except requests.ConnectionError:
            raised = True
        assert raised
    finally:
        fake.stop()


# --- The fake is at least as strict as the real API about request bodies -----------------------


def _state(fake: FakeDigitalOcean) -> dict:
    """Everything a refused call must leave alone."""
    return copy.deepcopy({"droplets": fake.droplets, "firewalls": fake.firewalls, "keys": fake.ssh_keys,
                          "actions": fake.actions, "tags": fake.tags, "apps": fake.apps,
                          "deployments": dict(fake.deployment_counts), "next_id": fake._next_id})


def refused(fake: FakeDigitalOcean, method: str, path: str, body: object, *words: str, status: int = 422,
            error_id: str = "unprocessable_entity") -> dict:
    """Send `body`; assert DigitalOcean's refusal naming `words`, an answer the spec allows, and no change."""
    before = _state(fake)
    response = call(fake, method, path, json=body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"id", "message", "request_id"} and answer["id"] == error_id
    assert response.headers["x-request-id"] == answer["request_id"]
    for word in words:
        assert word in answer["message"], answer["message"]
    check_answer(method, path, status, answer)
    assert _state(fake) == before
    return answer


def public_key(kind: str = "ssh-ed25519") -> str:
    blob = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()[1]
    return f"{kind} {blob.decode()} me@laptop"


def droplet_body(**changes: object) -> dict:
    return {"name": "web-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", **changes}


def firewall_body(inbound: list | None = None, outbound: list | None = None, **changes: object) -> dict:
    body = {"name": "fw-web-1", **changes}
    if inbound is not None:
        body["inbound_rules"] = inbound
    if outbound is not None:
        body["outbound_rules"] = outbound
    return body


def rule(ports: str = "22", addresses: list | None = None, protocol: str = "tcp", target: str = "sources") -> dict:
    return {"protocol": protocol, "ports": ports, target: {"addresses": addresses or ["0.0.0.0/0"]}}


def test_a_body_against_the_schema_is_refused_before_the_route_runs(fake_do):
    answer = refused(fake_do, "POST", "/v2/droplets", {"name": "web-1", "size": "s-1vcpu-1gb"}, "'image'")
    assert answer["message"] == "'image' is a required property"
    refused(fake_do, "POST", "/v2/droplets", droplet_body(ssh_keys=[1.5]), "ssh_keys[0]")
    refused(fake_do, "POST", "/v2/firewalls/abc/droplets", {"droplet_ids": ["web"]}, "droplet_ids[0]")
    refused(fake_do, "POST", "/v2/droplets", None, "object")  # no body at all


def test_a_body_that_is_not_json_is_a_bad_request(fake_do):
    before = _state(fake_do)
    response = call(fake_do, "POST", "/v2/droplets", data="{not json")
    assert response.status_code == 400 and response.json()["id"] == "bad_request"
    assert _state(fake_do) == before


def test_every_route_of_the_fake_is_an_operation_of_the_openapi_subset(fake_do):
    with pytest.raises(AssertionError, match="matches no path"):
        fake_do.route("POST", r"/v2/made-up/(?P<thing>[^/]+)", "thing:create")
    with pytest.raises(AssertionError, match="not an operation"):
        fake_do.route("PATCH", r"/v2/droplets/(?P<droplet_id>\d+)", "droplet:update")


@pytest.mark.parametrize("address", ["banana", "10.0.0.0/33", "256.1.1.1", "::/129", "10.0.0.0/255.255.0.0",
                                     "fe80::1%eth0", "", "0.0.0.0/0 "])
def test_firewall_addresses_must_be_ip_addresses_or_cidrs(fake_do, address):
    answer = refused(fake_do, "POST", "/v2/firewalls", firewall_body([rule(addresses=["0.0.0.0/0", address])]))
    assert answer["message"] == f"inbound_rules[0].sources.addresses[1]: {address!r} is not a valid IP address or CIDR"
    outbound = firewall_body(outbound=[rule(addresses=[address], target="destinations")])
    refused(fake_do, "POST", "/v2/firewalls", outbound, "outbound_rules[0].destinations.addresses[0]")


@pytest.mark.parametrize("ports", ["all", "65536", "0-22", "9000-8000", "22,80", "", "ssh", "-1", "22-"])
def test_firewall_ports_must_be_a_port_a_range_or_0(fake_do, ports):
    refused(fake_do, "POST", "/v2/firewalls", firewall_body([rule("22"), rule(ports)]),
            "inbound_rules[1].ports", "valid range for ports")


def test_firewall_protocol_name_and_rules_follow_the_schema(fake_do):
    refused(fake_do, "POST", "/v2/firewalls", firewall_body([rule(protocol="sctp")]), "inbound_rules[0].protocol")
    refused(fake_do, "POST", "/v2/firewalls", firewall_body([rule()], name="-fw"), "name")
    refused(fake_do, "POST", "/v2/firewalls", firewall_body(), "inbound_rules")  # no rules at all
    refused(fake_do, "POST", "/v2/firewalls", firewall_body([{"protocol": "tcp", "ports": "22"}]),
            "inbound_rules[0]", "'sources'")


def test_valid_firewall_addresses_and_ports_pass(fake_do):
    inbound = [rule("22", ["0.0.0.0/0", "::/0"]), rule("8000-9000", ["10.0.0.1", "192.168.0.0/16"]),
               rule("443", ["2001:db8::/32", "2001:db8::1"], protocol="udp"), rule("1-65535")]
    outbound = [rule("0", ["0.0.0.0/0", "::/0"], protocol=p, target="destinations") for p in ("tcp", "udp", "icmp")]
    response = call(fake_do, "POST", "/v2/firewalls", json=firewall_body(inbound, outbound))
    assert response.status_code == 202, response.text
    assert len(fake_do.firewalls) == 1


@pytest.mark.parametrize("name", ["web_1", "-web", ".web", "web-", "web 1", "x" * 256])
def test_droplet_names_follow_the_hostname_pattern(fake_do, name):
    refused(fake_do, "POST", "/v2/droplets", droplet_body(name=name), "name")


@pytest.mark.parametrize("tag", ["bad tag", "devpilot/server", "é", "", "x" * 256])
def test_droplet_tags_follow_the_tag_pattern(fake_do, tag):
    refused(fake_do, "POST", "/v2/droplets", droplet_body(tags=["devpilot", tag]), "tags[1]")


def test_droplet_ssh_keys_must_be_keys_on_the_account(fake_do):
    refused(fake_do, "POST", "/v2/droplets", droplet_body(ssh_keys=[424242, "aa:bb"]),
            "424242, aa:bb are invalid key identifiers for Droplet creation.")
    key = call(fake_do, "POST", "/v2/account/keys", json={"name": "me", "public_key": public_key()}).json()["ssh_key"]
    refused(fake_do, "POST", "/v2/droplets", droplet_body(ssh_keys=[key["id"], 424242]), "424242 are invalid key")
    body = droplet_body(ssh_keys=[key["id"], key["fingerprint"]], tags=["devpilot", "devpilot:server:7", "a_b-c"])
    response = call(fake_do, "POST", "/v2/droplets", json=body)
    assert response.status_code == 202, response.text
    assert {"devpilot", "devpilot:server:7", "a_b-c"} <= fake_do.tags


def test_droplet_image_and_user_data_are_checked(fake_do):
    refused(fake_do, "POST", "/v2/droplets", droplet_body(image="windows-95"), "invalid image")
    refused(fake_do, "POST", "/v2/droplets", droplet_body(user_data="#" * (64 * 1024 + 1)), "user_data", "64 KiB")
    largest = droplet_body(image=1003, user_data="#" * 64 * 1024)
    assert call(fake_do, "POST", "/v2/droplets", json=largest).status_code == 202


@pytest.mark.parametrize("key", [
    "not-a-key", "ssh-ed25519", "ssh-ed25519 !!!not-base64!!! me", "ssh-ed25519 AAAA me",
    "---- BEGIN SSH2 PUBLIC KEY ----",
])
def test_ssh_public_keys_must_parse(fake_do, key):
    refused(fake_do, "POST", "/v2/account/keys", {"name": "me", "public_key": key}, "Key invalid")


def test_ssh_key_types_must_be_ones_digitalocean_supports(fake_do):
    refused(fake_do, "POST", "/v2/account/keys", {"name": "me", "public_key": public_key("ssh-foo")},
            "Key invalid type, we support")
    # An ed25519 blob labelled ssh-rsa does not parse as an RSA key.
    refused(fake_do, "POST", "/v2/account/keys", {"name": "me", "public_key": public_key("ssh-rsa")},
            "key should be of the format")
    refused(fake_do, "POST", "/v2/account/keys", {"public_key": public_key()}, "'name'")


def test_valid_ssh_keys_pass_and_get_an_md5_fingerprint(fake_do):
    key = public_key()
    response = call(fake_do, "POST", "/v2/account/keys", json={"name": "me", "public_key": key})
    assert response.status_code == 201, response.text
    digest = hashlib.md5(base64.b64decode(key.split()[1])).hexdigest()  # noqa: S324 - DigitalOcean's format
    assert response.json()["ssh_key"]["fingerprint"] == ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def _droplet(fake: FakeDigitalOcean) -> int:
    return call(fake, "POST", "/v2/droplets", json=droplet_body()).json()["droplet"]["id"]


@pytest.mark.parametrize(("body", "words"), [
    ({"type": "explode"}, ("type", "'explode' is not one of")),
    ({}, ("'type' is a required property",)),
    ({"type": "resize"}, ("size: is required for a resize action",)),
    ({"type": "resize", "size": 2}, ("size",)),
    ({"type": "rename"}, ("name: is required",)),
    ({"type": "rename", "name": "bad name"}, ("name",)),
    ({"type": "rebuild"}, ("image: is required",)),
])
def test_droplet_actions_need_a_known_type_and_their_fields(fake_do, body, words):
    droplet_id = _droplet(fake_do)
    refused(fake_do, "POST", f"/v2/droplets/{droplet_id}/actions", body, *words)


def test_valid_droplet_actions_pass(fake_do):
    droplet_id = _droplet(fake_do)
    for body in ({"type": "power_off"}, {"type": "resize", "size": "s-2vcpu-2gb"}, {"type": "power_on"},
                 {"type": "rename", "name": "web-2"}, {"type": "snapshot", "name": "before upgrade"}):
        response = call(fake_do, "POST", f"/v2/droplets/{droplet_id}/actions", json=body)
        assert response.status_code == 201, (body, response.text)
        call(fake_do, "GET", f"/v2/actions/{response.json()['action']['id']}")  # finish it
    assert fake_do.droplets[droplet_id]["name"] == "web-2"
    assert fake_do.droplets[droplet_id]["size_slug"] == "s-2vcpu-2gb"


@pytest.mark.parametrize(("body", "words"), [({"name": "bad tag"}, "bad tag"), ({"name": "x" * 256}, "name"),
                                             ({}, "name: is required")])
def test_tag_names_are_refused_with_the_tags_error_body(fake_do, body, words):
    before = _state(fake_do)
    response = call(fake_do, "POST", "/v2/tags", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"error", "messages", "root_causes"} and words in answer["error"]
    assert response.headers["x-request-id"]
    check_answer("POST", "/v2/tags", 400, answer)
    assert _state(fake_do) == before
    assert call(fake_do, "POST", "/v2/tags", json={"name": "devpilot:server:7"}).status_code == 201


def test_app_specs_are_refused_as_app_platform_does(fake_do):
    app = fake_do.add_app("web")
    spec = {k: v for k, v in app["spec"].items() if k != "name"}
    refused(fake_do, "PUT", f"/v2/apps/{app['id']}", {"spec": spec}, "spec", "'name'",
            status=400, error_id="invalid_argument")
    bad_scope = {**app["spec"], "envs": [{"key": "A", "value": "1", "scope": "ALWAYS"}]}
    refused(fake_do, "PUT", f"/v2/apps/{app['id']}", {"spec": bad_scope}, "spec.envs[0].scope",
            status=400, error_id="invalid_argument")
