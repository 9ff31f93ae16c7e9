"""Schemathesis hooks for the fuzz test: how to put a raw e-mail on the wire."""

import schemathesis

# An RFC 822 message is bytes on the wire, like any octet stream.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")
