"""Addresses made safe to print and log: the password of a URL's user part (also where the URL
is mistyped: `mqtt//user:pass@host`), and the values of query and fragment parameters whose
names say they carry credentials (IP cameras take them as ``?user=admin&pwd=...``; presigned
video URLs as ``X-Amz-Signature=...``)."""

from __future__ import annotations

import re

# a parameter whose name ends in one of these (any case, after any prefix: client_secret,
# X-Amz-Signature, auth_token, loginpas) carries a credential; a name such as "monkey" is
# hidden too, which does no harm
SECRET_ENDINGS = ("pass", "pas", "passwd", "password", "passcode", "pwd", "pw", "secret",
                  "token", "key", "sig", "signature", "credential", "credentials", "auth",
                  "authorization", "sid", "session", "sessionid")
_SECRET_PARAMETER = re.compile(r"([?&;#][\w.-]*?(?:%s)=)[^&;#]*" % "|".join(SECRET_ENDINGS),
                               re.IGNORECASE)
_USER_PASSWORD = re.compile(r"(://[^/@:]*):.*@")  # up to the last @: a password may hold a /
# a user part where the scheme's `://` is mistyped or missing: at the start, or after a /
_LOOSE_USER_PASSWORD = re.compile(r"(^|/)([^/@:\s]*):(?!\*\*\*@)[^/\s]*@")


def redact(text: str) -> str:
    """``text`` with a URL's password and its credential parameters' values replaced by ``***``
    (over-redacting a rare @ in a path is safe)."""
    text = _USER_PASSWORD.sub(r"\1:***@", text)
    text = _LOOSE_USER_PASSWORD.sub(r"\1\2:***@", text)
    return _SECRET_PARAMETER.sub(r"\1***", text)
