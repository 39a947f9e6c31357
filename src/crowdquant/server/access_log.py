"""uvicorn's access log with every URL signature and signed token hidden: the log shows each
request's query string, and a signed URL's signature (or a sign-up link's token) is its
whole authorization."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from crowdquant.http.signing import SIGNATURE, TOKEN

HIDDEN = "[hidden]"
_SIGNED = re.compile(rf"([?&](?:{SIGNATURE}|{TOKEN})=)[^&\s]*")


def hide_signatures(text: str) -> str:
    """`text` with the value of every ``signature=`` and ``token=`` query parameter hidden."""
    return _SIGNED.sub(rf"\g<1>{HIDDEN}", text)


class HideSignatures(logging.Filter):
    """Hides signatures in a record's message and arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = hide_signatures(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                hide_signatures(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's own logging setup, its access logger filtered by `HideSignatures`, and the
    platform's own messages (``crowdquant.*``, from `level` up) on standard error."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_signatures"] = {"()": HideSignatures}
    config["loggers"]["uvicorn.access"]["filters"] = ["hide_signatures"]
    # what the scheduler does (rounds opened, closed, resolved), marked with the process
    config["formatters"]["crowdquant"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s [%(process)d] %(message)s",
    }
    config["handlers"]["crowdquant"] = {
        "formatter": "crowdquant",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["crowdquant"] = {"handlers": ["crowdquant"], "level": level.upper()}
    return config
