"""(pages to come)"""

from __future__ import annotations

from fastapi import APIRouter

from crowdquant.web.routing import PageRoute

router = APIRouter(route_class=PageRoute)
