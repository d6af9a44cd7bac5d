"""Verifies a message's DKIM signature with dkimpy (RFC 6376, Ed25519 per RFC 8463) against a
published record, as a receiving mail server would, with the record given instead of looked
up in DNS.

    dkim-verify.py MESSAGE.eml 'SELECTOR._domainkey.DOMAIN TXT "v=DKIM1; k=ed25519; p=..."'

Exit 0 and `pass` when the signature verifies; 1 and `fail` otherwise."""

import sys

import dkim


def main():
    message = open(sys.argv[1], "rb").read()
    # The test server prepends its envelope lines; they are not part of what was signed.
    while message.startswith((b"X-Envelope-To:", b"X-Envelope-From:")):
        message = message.split(b"\r\n", 1)[1]
    name, _, record = sys.argv[2].partition(" TXT ")
    record = record.strip().strip('"').encode()
    name = name.strip().rstrip(".") + "."

    def dns(qname, timeout=5):
        return record if qname.decode().rstrip(".") + "." == name else None

    ok = dkim.verify(message, dnsfunc=dns)
    print("pass" if ok else "fail")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
