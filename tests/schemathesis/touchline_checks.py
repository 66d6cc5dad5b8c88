"""Schemathesis hooks of tests/tests/openapi.rs (loaded through
SCHEMATHESIS_HOOKS=touchline_checks): every error answer is the JSON error
shape {"error": {"code", "message"}} (a 422 adds `fields`), whatever the
operation documents."""

import json

import schemathesis

CODES = {"bad_request", "unauthorized", "forbidden", "not_found", "conflict", "invalid", "too_large", "overloaded", "unavailable", "internal"}


@schemathesis.check
def error_is_the_json_error_shape(ctx, response, case):
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"error answer {response.status_code} is {content_type!r}, not JSON"
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"error answer is not {{\"error\": ...}}: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) - {"fields"} == {"code", "message"}, f"error is not {{code, message}}: {error!r}"
    # A 422 (`invalid`) lists the offending fields; no other error has `fields`.
    if "fields" in error:
        assert error["code"] == "invalid" and isinstance(error["fields"], list), f"`fields` outside a 422: {error!r}"
    assert error["code"] in CODES, f"unknown error code {error['code']!r}"
    assert isinstance(error["message"], str) and error["message"], f"empty error message: {error!r}"
    return None
