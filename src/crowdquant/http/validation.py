"""How a request that fails validation is told: where and what, without the input."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

MAX_REPORTED_PROBLEMS = 10


def describe_validation(error: RequestValidationError) -> str:
    """``body.name: Field required; path.number: ...``: where and what, without the input."""
    problems = []
    for problem in error.errors()[:MAX_REPORTED_PROBLEMS]:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"
