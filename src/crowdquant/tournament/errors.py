"""The one shape of a refusal by a service: a stable `code` and a message for the person.

Interfaces (the API, the CLI) catch `ServiceError` and show `message`; anything else is a
bug and is reported as an internal error.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(ValueError):
    code: ClassVar[str] = "refused"
    default_message: ClassVar[str] = "the request was refused"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
