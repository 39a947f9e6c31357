"""How deeply a JSON body nests, checked before it is parsed.

A parser recursing once per level overflows the C stack, and kills the process, long before
a body under the size cap runs out: Python's recursion limit is no guard, as libraries may
raise it (py_ecc, imported with web3, sets it to 100,000). So every JSON body is checked
here first, in one linear pass, and one nested deeper than `MAX_JSON_DEPTH` is refused.
"""

from __future__ import annotations

MAX_JSON_DEPTH = 256

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def nested_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body` opens more than `limit` arrays and objects inside each other (brackets
    in strings do not count). Invalid JSON is left for the parser to refuse."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: no scan
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False
