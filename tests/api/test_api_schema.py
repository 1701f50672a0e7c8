"""Property tests from the OpenAPI document (schemathesis): generated input never gets a 5xx.

Every documented operation is driven with hypothesis-generated requests under the admin key;
besides "no server error", responses must match their documented status codes, content
types, headers and schemas. Left out: "schema-valid data is accepted", since some rules span
fields and cannot be said in the schema (an allow-list entry of kind ``ip`` must be an IP).
"""

from __future__ import annotations

import schemathesis
from api_support import ADMIN_KEY, auth
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

MAX_EXAMPLES = 10
"""Generated requests per operation; small, so the whole sweep stays well under a minute."""


def test_generated_requests_get_no_server_error(client: TestClient, app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 19

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers=auth(ADMIN_KEY), excluded_checks=[positive_data_acceptance]
            )

        check()
