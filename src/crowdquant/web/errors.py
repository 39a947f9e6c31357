"""What a page handler raises when it cannot show the page (`routing.PageRoute` answers)."""

from __future__ import annotations


class SignInRequired(Exception):  # noqa: N818
    """The page is for signed-in participants: go to the sign-in page, then come back."""


class PageError(Exception):
    """A page that cannot be shown: its status and a sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
