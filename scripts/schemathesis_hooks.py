"""schemathesis hooks for scripts/api-fuzz.

`POST /v1/inbound/email` takes one RFC 5322 message as `message/rfc822`, a media type
schemathesis has no serializer for: the generated string is sent as the message's bytes
(whatever they are: refusing what is not a message is part of what is tested)."""

import schemathesis


@schemathesis.serializer("message/rfc822")
def rfc822(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
