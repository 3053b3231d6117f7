#!/usr/bin/env python3
"""Writes the hand-written seeds of the fuzz targets (fuzz/seeds/<target>/seed-*).

They live apart from the fuzzer's corpora (fuzz/corpus/<target>), which `cargo fuzz cmin` rewrites
and may shrink to the inputs that add coverage: a named seed (an empty frame, invalid UTF-8, an
unmasked frame) stays a test whatever the minimizer keeps. The test suite replays both folders on
stable Rust (core/tests/fuzz_corpus.rs, adapter-tokio/tests/fuzz_corpus.rs), and
scripts/test.sh hands both to the fuzzer. Run again after changing this file.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
UUID = "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"


def write(target, name, data):
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def nasty(target, wrap):
    """Cases both parsers must survive; `wrap(raw_json)` puts a value where data goes."""
    write(target, "deep-array", wrap("[" * 100_000 + "]" * 100_000))
    write(target, "deep-object", wrap('{"a":' * 50_000 + "1" + "}" * 50_000))
    write(target, "deep-unclosed", wrap("[" * 200_000))
    write(target, "huge-integer", wrap("9" * 5_000))
    write(target, "huge-exponent", wrap("1e99999999999999999999"))
    write(target, "negative-zero-float", wrap("-0.0e-0"))
    write(target, "lone-surrogate", wrap('"\\ud800"'))
    write(target, "lone-low-surrogate", wrap('"\\udc00x"'))
    write(target, "raw-lone-surrogate", wrap('"\ud800"'))
    write(target, "string-1mib", wrap('"' + "x" * (1 << 20) + '"'))
    write(target, "escapes-1mib", wrap('"' + "\\u00e9" * (1 << 18) + '"'))
    write(target, "nul-bytes", wrap('"a\\u0000b"'))
    write(target, "control-char-raw", wrap('"a\x01b"'))


def client_frames():
    t = "client_frame"
    nasty(t, lambda v: b'{"event":"chat","data":' + v.encode("utf-8", "surrogatepass") + b"}")
    write(t, "empty", b"")
    write(t, "top-level-deep", "[" * 100_000)
    write(t, "whitespace", b" \t\r\n")
    write(t, "invalid-utf8", b'{"event":"\xff\xfe"}')
    write(t, "invalid-utf8-in-data", b'{"event":"x","data":"\xc3\x28"}')
    write(t, "overlong-utf8", b'{"event":"\xc0\xaf"}')
    write(t, "bom", b'\xef\xbb\xbf{"event":"x"}')
    write(t, "event-surrogate", '{"event":"\\ud83d"}')
    write(t, "event-pair", '{"event":"\\ud83d\\ude00"}')
    write(t, "event-129", '{"event":"' + "e" * 129 + '"}')
    write(t, "event-128", '{"event":"' + "e" * 128 + '"}')
    write(t, "duplicate-event", '{"event":"join","event":"publish"}')
    write(t, "duplicate-data", '{"event":"x","data":1,"data":2}')
    write(t, "duplicate-id", '{"event":"x","id":1,"id":2}')
    write(t, "array-frame", '["join",{"rooms":["a"]}]')
    write(t, "id-bool", '{"event":"x","id":true}')
    write(t, "id-huge", '{"event":"x","id":' + "1" * 1000 + "}")
    write(t, "id-float", '{"event":"x","id":-1.5e300}')
    write(t, "trailing-garbage", '{"event":"x"} {"event":"y"}')
    write(t, "trailing-comma", '{"event":"x",}')
    write(t, "heartbeat", '{"event":"heartbeat"}')
    write(t, "authenticate", '{"event":"authenticate","data":{"token":"t"},"id":"a"}')
    write(t, "authenticate-no-token", '{"event":"authenticate","data":{}}')
    write(t, "join", '{"event":"join","data":{"rooms":["r","s"]},"id":1}')
    write(t, "join-empty-name", '{"event":"join","data":{"rooms":[""]}}')
    write(t, "join-long-name", '{"event":"join","data":{"rooms":["' + "r" * 257 + '"]}}')
    write(t, "join-many", json.dumps({"event": "join", "data": {"rooms": [f"r{i}" for i in range(5000)]}}))
    write(t, "join-dup-rooms", '{"event":"join","data":{"rooms":["r","r","r"]}}')
    write(t, "join-rooms-null", '{"event":"join","data":{"rooms":null}}')
    write(t, "join-data-array", '{"event":"join","data":["r"]}')
    write(t, "leave", '{"event":"leave","data":{"rooms":["r"]}}')
    write(t, "publish", '{"event":"publish","data":{"room":"r","event":"m","data":{"x":[1,2]}}}')
    write(t, "publish-self", '{"event":"publish","data":{"room":"r","event":"m","excludeSelf":false}}')
    write(t, "publish-reserved", '{"event":"publish","data":{"room":"r","event":"connected"}}')
    write(t, "publish-not-member", '{"event":"publish","data":{"room":"nope","event":"m"}}')
    write(t, "publish-bad-flag", '{"event":"publish","data":{"room":"r","event":"m","excludeSelf":"no"}}')
    write(t, "unknown-event", '{"event":"custom","data":[1,"two",null],"id":"q"}')
    write(t, "over-64kib", '{"event":"x","data":"' + "y" * 70_000 + '"}')


def envelopes():
    t = "bus_envelope"
    nasty(t, lambda v: b'{"serverId":"emitter","type":"room","target":"r","event":"e","data":' + v.encode("utf-8", "surrogatepass") + b"}")
    write(t, "room", '{"serverId":"emitter","type":"room","target":"r","event":"news","data":{"a":1}}')
    write(t, "room-exclude", '{"serverId":"s2","type":"room","target":"r","event":"e","data":1,"exclude":["' + UUID + '","junk"]}')
    write(t, "room-exclude-users", '{"serverId":"s2","type":"room","target":"r","event":"e","data":1,"excludeUsers":["b"]}')
    write(t, "user", '{"serverId":"emitter","type":"user","target":"b","event":"dm","data":"hi"}')
    write(t, "client", '{"serverId":"emitter","type":"client","target":"' + UUID + '","event":"one","data":null}')
    write(t, "client-bad-target", '{"serverId":"emitter","type":"client","target":"not-a-uuid","event":"one"}')
    write(t, "broadcast", '{"serverId":"emitter","type":"broadcast","event":"all","data":[]}')
    write(t, "own-server", '{"serverId":"probe","type":"broadcast","event":"all","data":[]}')
    write(t, "no-data", '{"serverId":"emitter","type":"broadcast","event":"all"}')
    write(t, "unknown-type", '{"serverId":"emitter","type":"galaxy","event":"x","data":1}')
    write(t, "missing-target", '{"serverId":"emitter","type":"room","event":"x","data":1}')
    write(t, "empty-event", '{"serverId":"emitter","type":"broadcast","event":"","data":1}')
    write(t, "duplicate-type", '{"serverId":"emitter","type":"room","type":"broadcast","target":"r","event":"x","data":1}')
    write(t, "exclude-not-array", '{"serverId":"emitter","type":"broadcast","event":"x","data":1,"exclude":"' + UUID + '"}')
    write(t, "exclude-huge", json.dumps({"serverId": "emitter", "type": "broadcast", "event": "x", "data": 1, "exclude": [UUID] * 20000}))
    write(t, "server-id-number", '{"serverId":7,"type":"broadcast","event":"x","data":1}')
    write(t, "invalid-utf8", b'{"serverId":"\xff","type":"broadcast","event":"x","data":1}')
    write(t, "empty", b"")
    write(t, "presence-join", '{"serverId":"p2","op":"join","room":"r","members":[{"id":"' + UUID + '","userId":"ann","info":{"n":1}}]}')
    write(t, "presence-sync", '{"serverId":"p2","op":"sync","room":"r","members":[{"id":"' + UUID + '"},{"id":"junk"}]}')
    write(t, "presence-leave", '{"serverId":"p2","op":"leave","room":"r","members":[{"id":"' + UUID + '"}]}')
    write(t, "presence-sync-request", '{"serverId":"p3","op":"sync_request","room":"r"}')
    write(t, "presence-heartbeat", '{"serverId":"p3","op":"heartbeat"}')
    write(t, "presence-own", '{"serverId":"probe","op":"heartbeat"}')
    write(t, "presence-goodbye", '{"serverId":"p3","op":"goodbye"}')
    write(t, "presence-own-goodbye", '{"serverId":"probe","op":"goodbye"}')
    write(t, "presence-unknown-op", '{"serverId":"p3","op":"explode","room":"r"}')
    write(t, "presence-many", json.dumps({"serverId": "p4", "op": "sync", "room": "r", "members": [{"id": UUID, "userId": "u%d" % i} for i in range(5000)]}))


def hub_programs():
    t = "hub_inputs"
    write(t, "connect-auth-join-publish", bytes([0, 1, 11, 1, 1, 1, 9, 1, 10, 1, 5, 1]))
    write(t, "two-users-timeouts", bytes([0, 1, 0, 2, 1, 1, 1, 2, 2, 1, 2, 2, 4, 1, 6, 50, 6, 250, 6, 250]))
    frame = b'{"event":"join","data":{"rooms":["r0","r1","r2","r3","r4"]}}'
    write(t, "frame-from-input", bytes([0, 3, 1, 3, 7, len(frame)]) + frame + bytes([4, 3, 3, 3, 5, 3]))
    env = b'{"serverId":"emitter","type":"broadcast","event":"x","data":1}'
    write(t, "envelope-from-input", bytes([0, 4, 1, 4, 8, len(env)]) + env)
    write(t, "churn", bytes([0, 5, 1, 5, 2, 5, 5, 5] * 64))


def masked(first, payload, mask=b"\x11\x22\x33\x44"):
    """A client frame: `first` is FIN and opcode; the payload is masked."""
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def websocket_streams():
    """The first byte chooses where the probe splits the stream in two."""
    t = "websocket_frames"
    join = json.dumps({"event": "join", "data": {"rooms": ["r"]}}).encode()
    write(t, "one-text", bytes([3]) + masked(0x81, join))
    write(t, "fragments-ping-between", bytes([9]) + masked(0x01, join[:5]) + masked(0x89, b"hey") + masked(0x80, join[5:]))
    write(t, "close-with-code", bytes([1]) + masked(0x88, (1000).to_bytes(2, "big") + b"bye"))
    write(t, "close-empty", bytes([0]) + masked(0x88, b""))
    write(t, "pong-binary", bytes([2]) + masked(0x8A, b"") + masked(0x82, b"\x00\x01"))
    write(t, "text-126", bytes([4]) + masked(0x81, b"a" * 300))
    write(t, "too-big-header", bytes([2]) + masked(0x81, b"a" * 2000)[:8])
    write(t, "unmasked", bytes([1]) + bytes([0x81, 0x02]) + b"{}")
    write(t, "bad-utf8", bytes([5]) + masked(0x81, b"\xc3\x28"))
    write(t, "utf8-split-across-fragments", bytes([7]) + masked(0x01, "é".encode()[:1]) + masked(0x80, "é".encode()[1:]))
    write(t, "reserved-opcode", bytes([1]) + masked(0x83, b"x"))
    write(t, "long-ping", bytes([1]) + masked(0x89, b"p" * 126))
    write(t, "many-small", bytes([200]) + b"".join(masked(0x81, b"%d" % i) for i in range(100)))


if __name__ == "__main__":
    client_frames()
    envelopes()
    hub_programs()
    websocket_streams()
