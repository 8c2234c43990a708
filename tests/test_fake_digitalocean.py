"""The fake behaves like DigitalOcean, so tests against it mean something."""

import requests

from tests.fake_digitalocean import FakeDigitalOcean

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
