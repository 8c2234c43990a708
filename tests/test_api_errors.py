"""Every API error is JSON in the one shape, whatever refused the request."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_oversized_body_is_a_json_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.post("/api/v3/secrets/batch/raw", {"secrets": [{"secretKey": "K", "secretValue": "x" * 4096}]})
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert response.json()["statusCode"] == 413 and "larger than 1024 bytes" in response.json()["message"]


def test_a_very_long_url_is_a_json_404(api):
    response = api.get("/api/v1/" + "a" * 10_000)
    assert response.status_code == 404 and response.json()["statusCode"] == 404


def test_a_body_that_is_not_json_is_a_json_400(api):
    response = api.client.post("/api/v1/servers", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["message"] == "The request body is not valid JSON."
