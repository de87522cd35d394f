"""The floor's Python side (bench/floor.c): the least a Python worker does per invocation: read a
length-prefixed event from its socket, json.loads it, json.dumps a result, write it back."""

import json
import socket
import struct
import sys

sock = socket.socket(fileno=int(sys.argv[1]))
reader = sock.makefile("rb")
while True:
    size = reader.read(4)
    if len(size) < 4:
        break
    event = json.loads(reader.read(struct.unpack("<I", size)[0]))
    result = json.dumps({"statusCode": 200, "body": "ok"}).encode()
    sock.sendall(struct.pack("<I", len(result)) + result)
