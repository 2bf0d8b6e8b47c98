#!/usr/bin/env python3
"""S7 server peer for Petra's tests (python-snap7, started by petra_test_support::s7).

Two independent server implementations behind one script, chosen by which ``snap7`` Python
package is importable (the Rust side puts the native one first on PYTHONPATH):

* ``impl=pure``: python-snap7 **3.3.x**, a server written in Python (``snap7.server.Server``),
  installed with ``python3 -m pip install python-snap7==3.3.0``;
* ``impl=native``: python-snap7 **2.0.x**, a ctypes wrapper around the bundled native snap7 C
  library (``snap7/lib/libsnap7.so``), installed apart from the pure one with
  ``python3 -m pip install --target /var/tmp/petra-peers/python-snap7-2.0.2 python-snap7==2.0.2``
  and selected with ``PYTHONPATH=/var/tmp/petra-peers/python-snap7-2.0.2``.

Any other version is refused (``--impl`` additionally asserts which one was expected, so a
missing native install cannot silently fall back to the pure server).

The server serves only what the test declared: ``--db N:SIZE`` (repeatable), ``--flags SIZE``,
``--inputs SIZE``, ``--outputs SIZE`` (0 or absent: the area does not exist). A DB that is not
declared does not exist in the server. Values start at 0 and are lost when the process ends.

Control channel: a TCP socket on 127.0.0.1 (port printed in the ready line), one command per line,
one answer line per command. AREA is ``db``, ``flags`` (``m``, ``mk``), ``inputs`` (``i``,
``e``, ``pe``) or ``outputs`` (``q``, ``a``, ``pa``); DB is the DB number (0 for other areas)::

    get AREA DB OFFSET LEN      -> ok HEX       (LEN >= 1 bytes as the server holds them now)
    set AREA DB OFFSET HEX      -> ok
    ping                        -> ok
    anything wrong              -> err MESSAGE

Both access the very buffer the server serves, under the server's own area lock
(``lock_area``/``unlock_area``: a ``threading.Lock`` in the pure server, the area's critical
section in native snap7, which its read and byte-write paths hold while copying), so a client
never sees half of a ``set``.

Start-up prints exactly one line starting with ``PETRA-S7-SIM``:
``PETRA-S7-SIM READY port=P control=C impl=pure|native pdu=N`` or ``PETRA-S7-SIM ERROR ...``
followed by an exit with status 3. Before printing READY the script connects to its own server
(COTP connect to rack 0 slot 1, then setup communication proposing PDU 65535); ``pdu=N`` is the
PDU size the server granted to that proposal, i.e. the largest it ever negotiates.

What the two servers answer (found in their sources and on the wire; the table rows marked
with * are asserted by ``crates/petra-test-support/tests/s7_peers.rs``; "item code" is the
per-item return code byte, "header error" an ack (ROSCTR 2) with error class/code and no
parameters):

===========================  ==================================  ==================================
                             pure (python-snap7 3.3.0)           native (snap7 C, python-snap7
                                                                 2.0.2)
===========================  ==================================  ==================================
COTP connect                 any TSAPs (rack/slot not checked);  the same
                             CC echoes TPDU size and TSAPs,
                             dst ref = our src ref, src ref 1
PDU negotiated *             min(proposed, 480), so pdu=480;     the proposal clamped to
                             a proposal below 240 is granted     [240, 4096], so pdu=4096;
                             as is (100 -> 100); AMQ 1/1         AMQ echoed
Multi-item read *            yes (22 items tested)               yes, but at most 20: a request
                                                                 with more gets the first 20
                                                                 items only (item count 20)
Pad byte after an odd item   0x00                                **not zeroed** (stale buffer
                                                                 bytes such as 0x04, 0xa8)
Multi-item write *           **no**: only the first item is      yes
                             written; the answer carries one
                             item code
Missing DB, read *           item code 0x0A, length 0            item code 0x0A, **length 4**
Missing DB, write *          **header error 0x84 0x04**          item code 0x0A
Out of range, read *         item code 0x05, length 0            item code 0x05, **length 4**
Out of range, write          **header error 0x84 0x04**, and a   item code 0x05, nothing written
                             write that starts inside the area
                             first writes the part inside
Bit read (transport 0x01) *  **the whole byte**: data            data transport 0x03, length 1
                             transport 0x04, length 8, value =   (bit), value 0x00/0x01
                             the byte holding the bit
Bit write (transport 0x01) * **overwrites the whole byte** with  sets/clears only that bit (without
                             the data byte (0x00 / 0x01)         taking the area lock)
Read bigger than the PDU     answered in full up to 8191 data    answered in full up to 4078 data
                             bytes; from 8192 header error       bytes (a 4096-byte PDU) whatever
                             0x80 0x00                           was negotiated; 4079..4130: **no
                                                                 answer** (connection stays open);
                                                                 from about 4140: **the process
                                                                 dies with SIGSEGV**
Transport sizes              01 (1 byte), 02, 03, 04/05 (x2),    01..08 with the CPU's data
                             06/07/08 (x4); any other code is    transports (02/04/06 -> 04,
                             read as bytes; data transport is    05/07 -> 05, 08 -> 07, 03 -> 09);
                             always 0x04                         other codes: item code 0x05
Byte item with a bit offset  the bit offset is ignored           item code 0x05
Non-DB item with DB != 0     item code 0x0A                      served (DB number ignored)
Read with item count 0       answers one item: DB 1 bytes 0..4   answers zero items
Responses vs TPDU size       never fragmented to the COTP TPDU size (a 425-byte frame on a
                             connection that negotiated TPDU 128)
Area size                    any                                 at most 65535 bytes (16-bit sizes)
===========================  ==================================  ==================================

"length 4" (native): a failed read item is sent as ``CODE 00 00 04`` -- return code, data
transport 0x00 (null), length **4** -- followed by *no* data bytes; the next item (or the end of
the PDU) comes right after. Real CPUs send length 0. A decoder that trusts the length of a failed
item reports a truncated frame or reads the next item's header as data.

Other quirks from the pure server's source: a request it cannot parse gets no answer at all (the
connection stays open); a connection that stops for 5 s in the middle of a frame is dropped (an
idle one is kept); it binds with SO_REUSEPORT, so two pure servers can share one port.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import socket
import socketserver
import struct
import sys
import threading

TAG = "PETRA-S7-SIM"
NATIVE_DIR = "/var/tmp/petra-peers/python-snap7-2.0.2"
INSTALL = {
    "pure": "python3 -m pip install python-snap7==3.3.0",
    "native": f"python3 -m pip install --target {NATIVE_DIR} python-snap7==2.0.2",
}
# Largest area the native server can hold (its sizes are 16-bit).
MAX_AREA = 65535


def fail(message: str) -> None:
    print(f"{TAG} ERROR {message}", flush=True)
    sys.exit(3)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("pure", "native"), help="fail unless this one loads")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--db", action="append", default=[], metavar="N:SIZE")
    parser.add_argument("--flags", type=int, default=0, metavar="SIZE")
    parser.add_argument("--inputs", type=int, default=0, metavar="SIZE")
    parser.add_argument("--outputs", type=int, default=0, metavar="SIZE")
    return parser.parse_args()


ARGS = parse_args()


def install_hint(impl: str | None) -> str:
    if impl:
        return f"install it with `{INSTALL[impl]}`"
    return f"install the pure one with `{INSTALL['pure']}` and the native one with `{INSTALL['native']}`"


try:
    import snap7
    from snap7.server import Server
    from snap7.type import SrvArea
except Exception as exc:  # pylint: disable=broad-except  # ImportError, or OSError from ctypes
    fail(f"cannot import snap7 ({type(exc).__name__}: {exc}); {install_hint(ARGS.impl)}")

VERSION = getattr(snap7, "__version__", "unknown")
if VERSION.startswith("3.3."):
    IMPL = "pure"
elif VERSION.startswith("2.0."):
    IMPL = "native"
else:
    fail(
        f"python-snap7 {VERSION} ({snap7.__file__}) is neither 3.3.x (pure Python server) nor "
        f"2.0.x (native snap7); {install_hint(ARGS.impl)}"
    )
if ARGS.impl and ARGS.impl != IMPL:
    fail(
        f"expected the {ARGS.impl} server but python-snap7 {VERSION} ({snap7.__file__}) was "
        f"imported; {install_hint(ARGS.impl)}"
    )

AREA_NAMES = {
    "db": "db",
    "flags": "flags",
    "m": "flags",
    "mk": "flags",
    "inputs": "inputs",
    "i": "inputs",
    "e": "inputs",
    "pe": "inputs",
    "outputs": "outputs",
    "q": "outputs",
    "a": "outputs",
    "pa": "outputs",
}
SRV_AREA = {"db": SrvArea.DB, "flags": SrvArea.MK, "inputs": SrvArea.PE, "outputs": SrvArea.PA}


class Memory:
    """The declared areas: (area, index) -> the buffer registered with the server."""

    def __init__(self, server) -> None:
        self.server = server
        self.areas: dict[tuple[str, int], object] = {}

    def declare(self, area: str, index: int, size: int) -> None:
        if not 1 <= size <= MAX_AREA:
            fail(f"{area} {index}: size {size} out of 1..={MAX_AREA}")
        if (area, index) in self.areas:
            fail(f"{area} {index} declared twice")
        # pure: the bytearray itself is served; native: snap7 keeps a pointer to the ctypes array.
        buf = bytearray(size) if IMPL == "pure" else (ctypes.c_ubyte * size)()
        self.server.register_area(SRV_AREA[area], index, buf)
        self.areas[(area, index)] = buf

    def _find(self, area: str, index: int, offset: int, length: int):
        buf = self.areas.get((area, index))
        if buf is None:
            what = f"DB {index}" if area == "db" else area
            raise ValueError(f"{what} is not declared")
        size = len(buf)
        if offset < 0 or length < 1 or offset + length > size:
            raise ValueError(f"{offset}..{offset + length} is outside {area} {index} (size {size})")
        return buf

    def get(self, area: str, index: int, offset: int, length: int) -> bytes:
        buf = self._find(area, index, offset, length)
        self.server.lock_area(SRV_AREA[area], index)
        try:
            if IMPL == "pure":
                return bytes(buf[offset : offset + length])
            return ctypes.string_at(ctypes.addressof(buf) + offset, length)
        finally:
            self.server.unlock_area(SRV_AREA[area], index)

    def set(self, area: str, index: int, offset: int, data: bytes) -> None:
        buf = self._find(area, index, offset, len(data))
        self.server.lock_area(SRV_AREA[area], index)
        try:
            if IMPL == "pure":
                buf[offset : offset + len(data)] = data
            else:
                ctypes.memmove(ctypes.addressof(buf) + offset, data, len(data))
        finally:
            self.server.unlock_area(SRV_AREA[area], index)


def control(memory: Memory, line: str) -> str:
    words = line.split()
    if not words:
        return "err empty command"
    if words[0] == "ping" and len(words) == 1:
        return "ok"
    if words[0] not in ("get", "set") or len(words) != 5:
        return f"err unknown or malformed command {line.strip()!r}"
    op, area_word = words[0], words[1].lower()
    area = AREA_NAMES.get(area_word)
    if area is None:
        return f"err unknown area {words[1]!r} (db, flags, inputs, outputs)"
    try:
        index, offset = int(words[2]), int(words[3])
    except ValueError:
        return f"err not a number in {line.strip()!r}"
    if area != "db" and index != 0:
        return f"err {area} has no DB number (give 0), got {index}"
    if op == "get":
        try:
            length = int(words[4])
        except ValueError:
            return f"err bad length in {line.strip()!r}"
        return "ok " + memory.get(area, index, offset, length).hex()
    try:
        data = bytes.fromhex(words[4])
    except ValueError:
        return f"err bad hex {words[4]!r}"
    memory.set(area, index, offset, data)
    return "ok"


class ControlHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:
            try:
                answer = control(self.server.memory, raw.decode("utf-8", "replace"))
            except Exception as exc:  # pylint: disable=broad-except
                answer = f"err {exc}"
            self.wfile.write(answer.replace("\n", " ").encode() + b"\n")
            self.wfile.flush()


class ControlServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def recv_frame(sock: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            out += chunk
        return out

    header = exact(4)
    return header + exact(struct.unpack(">H", header[2:4])[0] - 4)


def probe_pdu(host: str, port: int) -> int:
    """Connects like a client and returns the PDU size granted to a proposal of 65535."""
    with socket.create_connection((host, port), timeout=10) as sock:
        # TPKT + COTP CR: src ref 1, TPDU size 1024, calling TSAP 0x0100, called 0x0101.
        sock.sendall(bytes.fromhex("0300 0016 11e0 0000 0001 00 c0010a c1020100 c2020101"))
        cc = recv_frame(sock)
        if len(cc) < 6 or cc[5] & 0xF0 != 0xD0:
            raise ConnectionError(f"no COTP connect confirm: {cc.hex()}")
        # DT + S7 job: setup communication, AMQ 1/1, PDU 65535.
        job = bytes.fromhex("3201 0000 0000 0008 0000" + "f000 0001 0001 ffff")
        sock.sendall(bytes.fromhex("0300 0019 02f080") + job)
        answer = recv_frame(sock)
        if len(answer) < 27 or answer[7] != 0x32 or answer[8] != 0x03 or answer[19] != 0xF0:
            raise ConnectionError(f"bad setup communication answer: {answer.hex()}")
        return struct.unpack(">H", answer[25:27])[0]


def start(server, host: str, port: int) -> int:
    """Starts the S7 listener; returns the port it serves."""
    if IMPL == "pure":
        server.start_to(host, port)
        return server.server_socket.getsockname()[1]
    if port != 0:
        server.start_to(host, port)
        return port
    # snap7 cannot say which port it bound: pick a free one, retry if it was taken meanwhile.
    last = None
    for _ in range(20):
        with socket.socket() as s:
            s.bind((host, 0))
            candidate = s.getsockname()[1]
        try:
            server.start_to(host, candidate)
            return candidate
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"no free port found: {last}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format=f"{IMPL} %(name)s %(levelname)s: %(message)s")
    try:
        server = Server(log=False)
    except Exception as exc:  # pylint: disable=broad-except  # the native library did not load
        fail(f"cannot create the {IMPL} snap7 server ({exc}); {install_hint(IMPL)}")
    memory = Memory(server)
    for spec in ARGS.db:
        try:
            number_s, size_s = spec.split(":")
            number, size = int(number_s), int(size_s)
        except ValueError:
            fail(f"bad --db {spec!r}, expected N:SIZE")
        if not 1 <= number <= 65535:
            fail(f"--db {spec!r}: DB number out of 1..=65535")
        memory.declare("db", number, size)
    for area, size in (("flags", ARGS.flags), ("inputs", ARGS.inputs), ("outputs", ARGS.outputs)):
        if size:
            memory.declare(area, 0, size)
    if not memory.areas:
        fail("no area declared")

    try:
        port = start(server, ARGS.host, ARGS.port)
    except Exception as exc:  # pylint: disable=broad-except
        fail(f"cannot serve on {ARGS.host}:{ARGS.port}: {exc}")
    try:
        pdu = probe_pdu(ARGS.host, port)
    except Exception as exc:  # pylint: disable=broad-except
        fail(f"the {IMPL} server on {ARGS.host}:{port} does not answer like an S7 CPU: {exc}")

    ctl = ControlServer(("127.0.0.1", 0), ControlHandler)
    ctl.memory = memory
    threading.Thread(target=ctl.serve_forever, daemon=True).start()
    print(
        f"{TAG} READY port={port} control={ctl.server_address[1]} impl={IMPL} pdu={pdu}",
        flush=True,
    )
    threading.Event().wait()


if __name__ == "__main__":
    main()
