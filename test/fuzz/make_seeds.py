#!/usr/bin/env python3
"""Write the seed corpus of the libFuzzer harnesses (test/fuzz/corpus/).

Run once when the harnesses' input formats change; the output is kept in
the repository.  Deterministic: the same files every time.
"""
import base64
import hashlib
import hmac
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# patch: key NUL value
paths = [
    "auth.email", "auth.name", "subscription.plan", "subscription.status",
    "subscription.trial_ends_at", "subscription.polar_customer_id",
    "persona.identity", "persona.embeddings_model", "roasting.enabled",
    "roasting.roast_level", "roasting.shield_level",
    "usage.monthly_roasts_used", "usage.period_end", "organization.id",
    "usage.remaining_roasts", "auth.userId", "roasting", "",
]
values = [
    b"ann@example.com", b"Ann", b"pro", b"past_due", b"balanceado",
    b"a1b2c3d4-e5f6-4708-899a-abbccddeeff0", b"\xc3\xa9t\xc3\xa9",
    b"\xf0\x9f\x98\x80", b"a\x07b", b"\xed\xa0\x80", b"\x05\x00\x00\x00\x00\x00\x00\x00",
    b"n" * 201, b"",
]
for i, p in enumerate(paths):
    write("patch", "key-%02d" % i, p.encode() + b"\0" + values[i % len(values)])
for i, v in enumerate(values):
    write("patch", "value-%02d" % i, b"auth.name\0" + v)

# envelope: plaintexts, and bytes shaped like an envelope
write("envelope", "empty", b"")
write("envelope", "short-text", "Soy desarrolladora y me encanta el café".encode())
write("envelope", "header-like", bytes([0x52, 1, 0, 0, 0, 1]) + bytes(range(24)) + b"x" * 20 + bytes(16))
write("envelope", "bad-version", bytes([0x52, 9, 0, 0, 0, 1]) + bytes(60))
write("envelope", "max-text", b"p" * 4000)
write("envelope", "over-max", b"p" * 4001)

# webhook: secret \n id \n timestamp \n header \n body
def signed(secret_b64, msg_id, ts, body, extra=""):
    key = base64.b64decode(secret_b64)
    mac = hmac.new(key, ("%s.%s." % (msg_id, ts)).encode() + body, hashlib.sha256).digest()
    header = (extra + " " if extra else "") + "v1," + base64.b64encode(mac).decode()
    return ("whsec_%s\n%s\n%s\n%s\n" % (secret_b64, msg_id, ts, header)).encode() + body

sec = base64.b64encode(b"roastr-fuzz-secret-0123456789abc").decode()
body = b'{"type":"subscription.updated","data":{"id":"sub_1","status":"active"}}'
write("webhook", "valid", signed(sec, "msg_1", "1700000000", body))
write("webhook", "valid-two-sigs", signed(sec, "msg_2", "1700000100", body, "v1,AAAA"))
write("webhook", "v2-only", ("whsec_%s\nmsg_3\n1700000000\nv2,abc\n" % sec).encode() + body)
write("webhook", "raw-secret", signed(sec, "msg_4", "1699999800", b"{}").replace(b"whsec_" + sec.encode(), b"plain-secret"))
write("webhook", "bad-ts", ("whsec_%s\nmsg_5\n17e8\nv1,AAAA\n{}" % sec).encode())
write("webhook", "empty", b"")

# keyfile
k1 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
k2 = "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100"
write("keyfile", "one", ("1 %s\n" % k1).encode())
write("keyfile", "two-crlf-comment", ("# keys\r\n1 %s\r\n\t2\t%s  \r\n\n" % (k1, k2)).encode())
write("keyfile", "duplicate", ("1 %s\n1 %s\n" % (k1, k2)).encode())
write("keyfile", "short", ("1 %s\n" % k1[:62]).encode())
write("keyfile", "big-id", ("2147483647 %s\n2147483648 %s\n" % (k1, k2)).encode())
write("keyfile", "empty", b"")
