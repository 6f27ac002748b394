"""Addresses made safe to print and log: the password of a URL's user part, and the values of
query parameters that carry credentials (IP cameras take them as ``?user=admin&pwd=...``)."""

from __future__ import annotations

import re

# query parameters whose value is a credential (matched whole, in any case)
SECRET_PARAMETERS = ("pass", "passwd", "password", "pwd", "pw", "secret", "token",
                     "access_token", "auth", "authorization", "key", "apikey", "api_key",
                     "sig", "signature", "credential", "credentials")
_SECRET_QUERY = re.compile(r"([?&;](?:%s)=)[^&;#]*" % "|".join(SECRET_PARAMETERS), re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with a URL's password and its credential query values replaced by ``***``."""
    # up to the last @: a password may hold a / (over-redacting a rare @ in a path is safe)
    text = re.sub(r"(://[^/@:]*):.*@", r"\1:***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)
