"""Absolute signed download links to the app's file endpoint, as the GraphQL `dataset`
field gives them, for the REST API and the pages alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request

from crowdquant.http.services import ServicesDep, base_url
from crowdquant.http.signing import DOWNLOAD_TTL, EXPIRES, FILES_PATH, UrlSigner
from crowdquant.tournament.visibility import servable_key


@dataclass(frozen=True)
class SignedLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Links:
    """Signed URLs to this app's file endpoint, absolute under `base_url`."""

    signer: UrlSigner
    base_url: str

    def download(self, storage_key: str, expires_in: timedelta = DOWNLOAD_TTL) -> SignedLink:
        if not servable_key(storage_key):  # the file endpoint would refuse it anyway
            raise HTTPException(404, "this file is not served")
        path = FILES_PATH + storage_key
        query = self.signer.sign("GET", path, expires_in)
        expires = int(parse_qs(query)[EXPIRES][0])
        return SignedLink(f"{self.base_url}{path}?{query}", datetime.fromtimestamp(expires, UTC))


def links(request: Request, services: ServicesDep) -> Links:
    return Links(services.signer, base_url(request))


LinksDep = Annotated[Links, Depends(links)]
