"""GET /api/openapi.json: valid JSON listing every REST route, and no Swagger UI."""

from __future__ import annotations

import json

import httpx

from crowdquant.api.rest import PREFIX, api_routes

from .helpers import RestWorld

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorOut"}


def test_the_document_lists_every_route(world: RestWorld) -> None:
    answer = httpx.get(f"{world.url}/api/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = json.loads(answer.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]

    expected = {
        (PREFIX + route.path, method.lower())
        for route in api_routes()
        if route.include_in_schema
        for method in route.methods or ()
    }
    listed = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert listed == expected
    assert len(expected) == 32  # 19 server routes, 4 of scores, 3 of diagnostics, 6 of stakes
    assert all(path.startswith(PREFIX + "/") for path, _ in listed)  # no GraphQL, no /files

    operations = [op for ops in document["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(set(ids)) == len(ids)
    for op in operations:
        for status, response in op["responses"].items():
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == ERROR_SCHEMA


def test_security_and_upload_body(world: RestWorld) -> None:
    document = httpx.get(f"{world.url}/api/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": scheme["description"],
    }
    paths = document["paths"]
    assert paths[PREFIX + "/account"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in paths[PREFIX + "/tournaments"]["get"]
    stake = paths[PREFIX + "/models/{model_id}/stake"]
    assert stake["post"]["security"] == stake["get"]["security"] == [{"ApiKey": []}]
    assert {"201", "401", "403", "404", "409", "422"} <= set(stake["post"]["responses"])
    assert paths[PREFIX + "/account/wallet"]["get"]["security"] == [{"ApiKey": []}]
    results = paths[PREFIX + "/tournaments/{number}/rounds/{round}/results"]["get"]
    assert "security" not in results and "404" in results["responses"]
    answers = {
        "submissions": {"201", "401", "403", "404", "409", "413", "415", "422"},
        "diagnostics": {"202", "401", "403", "404", "413", "415", "422", "503"},
    }
    for kind, statuses in answers.items():
        upload = paths[PREFIX + "/models/{model_id}/" + kind]["post"]
        form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"]
        assert form["properties"]["file"]["format"] == "binary"
        assert statuses <= set(upload["responses"]), kind


def test_no_swagger_ui_or_other_documents(world: RestWorld) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert httpx.get(world.url + path).status_code == 404, path
