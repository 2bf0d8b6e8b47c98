#!/usr/bin/env python3
"""Modbus server peer for Petra's tests (pymodbus 3.16, started by petra_test_support::modbus).

The server serves only what the test declared:

* units: ``--unit N`` (repeatable); a unit that is not declared gets no answer at all on RTU
  (the request is dropped before it reaches the datastore) and exception 0x0B (gateway target
  device failed to respond) on TCP for the data functions (1-6, 15, 16, 22, 23);
* address ranges: ``--range UNIT:AREA:START:COUNT`` (repeatable), AREA one of coil, discrete,
  input, holding; a request that touches any address outside the declared ranges of its area
  gets exception 2 (illegal data address), also for coils and discrete inputs (pymodbus alone
  only checks bits per 16-bit word).

Values are kept by pymodbus's own datastore (SimDevice/SimData, addresses 1:1 with the PDU,
non-shared blocks: one block per area), start at 0/false, and are lost when the process ends.

Control channel: a TCP socket on 127.0.0.1 (port printed in the ready line), one command per line,
one answer line per command:

    get AREA UNIT ADDRESS COUNT         -> ok V1 V2 ...        (bits as 0/1)
    set AREA UNIT ADDRESS V1 [V2 ...]   -> ok
    ping                                -> ok
    anything wrong                      -> err MESSAGE

Start-up prints exactly one line starting with ``PETRA-MODBUS-SIM``:
``PETRA-MODBUS-SIM READY port=P control=C`` (port=0 for RTU) or
``PETRA-MODBUS-SIM ERROR ...`` followed by an exit with status 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import termios

TAG = "PETRA-MODBUS-SIM"
INSTALL_HINT = "pip install pymodbus==3.16.1 pyserial"


def fail(message: str) -> None:
    print(f"{TAG} ERROR {message}", flush=True)
    sys.exit(3)


try:
    import pymodbus
    from pymodbus.constants import ExcCodes
    from pymodbus.exceptions import NoSuchIdException
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice
except ImportError as exc:  # pragma: no cover - depends on the machine
    fail(f"cannot import pymodbus ({exc}); install it with `{INSTALL_HINT}`")

if not pymodbus.__version__.startswith("3.16."):
    fail(
        f"pymodbus {pymodbus.__version__} is installed, the simulator needs 3.16.x; "
        f"install it with `{INSTALL_HINT}`"
    )

AREAS = ("coil", "discrete", "input", "holding")
BIT_AREAS = ("coil", "discrete")
# Function code used to reach each area through the datastore.
AREA_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
FC_AREA = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input"}
FC_AREA.update((fc, "holding") for fc in (3, 6, 16, 22, 23))


class Layout:
    """Declared units and, per unit and area, the declared [start, end) ranges."""

    def __init__(self) -> None:
        self.units: dict[int, dict[str, list[tuple[int, int]]]] = {}

    def add_unit(self, unit: int) -> None:
        if not 0 <= unit <= 255:
            fail(f"unit {unit} out of 0..=255")
        self.units.setdefault(unit, {area: [] for area in AREAS})

    def add_range(self, spec: str) -> None:
        try:
            unit_s, area, start_s, count_s = spec.split(":")
            unit, start, count = int(unit_s), int(start_s), int(count_s)
        except ValueError:
            fail(f"bad --range {spec!r}, expected UNIT:AREA:START:COUNT")
        if area not in AREAS:
            fail(f"bad area {area!r} in --range {spec!r}")
        if count < 1 or start < 0 or start + count > 65536:
            fail(f"bad address range in --range {spec!r}")
        self.add_unit(unit)
        ranges = self.units[unit][area]
        for s, e in ranges:
            if start < e and s < start + count:
                fail(f"--range {spec!r} overlaps {s}..{e}")
        ranges.append((start, start + count))
        ranges.sort()

    def covered(self, unit: int, area: str, address: int, count: int) -> bool:
        """Whether [address, address + count) lies inside declared ranges (adjacent ones join)."""
        pos, end = address, address + count
        for s, e in self.units[unit][area]:
            if s <= pos < e:
                pos = e
                if pos >= end:
                    return True
        return count > 0 and pos >= end

    def sim_device(self, unit: int) -> SimDevice:
        blocks = []
        for area in ("coil", "discrete", "holding", "input"):
            ranges = self.units[unit][area]
            entries = []
            for s, e in ranges:
                if area in BIT_AREAS:
                    entries.append(
                        SimData(s, values=[False] * (e - s), datatype=DataType.BITS)
                    )
                else:
                    entries.append(
                        SimData(s, count=e - s, values=0, datatype=DataType.REGISTERS)
                    )
            if not entries:
                # pymodbus needs a non-empty block; the layout check refuses every access anyway.
                entries.append(
                    SimData(0, values=[False], datatype=DataType.BITS)
                    if area in BIT_AREAS
                    else SimData(0, datatype=DataType.INVALID)
                )
            blocks.append(entries)
        return SimDevice(unit, simdata=tuple(blocks))


class CheckedContext:
    """The server's datastore (pymodbus SimCore) behind the layout's unit and range checks."""

    def __init__(self, inner, layout: Layout) -> None:
        self.inner = inner
        self.layout = layout

    def _check(self, device_id: int, func_code: int, address: int, count: int):
        if device_id not in self.layout.units:
            raise NoSuchIdException(f"unit {device_id} is not declared")
        area = FC_AREA.get(func_code)
        if area is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not self.layout.covered(device_id, area, address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    def device_ids(self) -> list[int]:
        return self.inner.device_ids()

    async def async_getValues(self, device_id, func_code, address, count=1):
        if exc := self._check(device_id, func_code, address, count):
            return exc
        return await self.inner.async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id, func_code, address, values):
        if exc := self._check(device_id, func_code, address, len(values)):
            return exc
        return await self.inner.async_setValues(device_id, func_code, address, values)


async def control(context: CheckedContext, line: str) -> str:
    words = line.split()
    if not words:
        return "err empty command"
    if words[0] == "ping":
        return "ok"
    if words[0] not in ("get", "set") or len(words) < 5:
        return f"err unknown or short command {line!r}"
    op, area = words[0], words[1]
    if area not in AREAS:
        return f"err unknown area {area!r}"
    try:
        unit, address = int(words[2]), int(words[3])
        numbers = [int(w) for w in words[4:]]
    except ValueError:
        return f"err not a number in {line!r}"
    if unit not in context.layout.units:
        return f"err unit {unit} is not declared"
    fc = AREA_FC[area]
    if op == "get":
        count = numbers[0]
        if len(numbers) != 1 or count < 1:
            return f"err bad count in {line!r}"
        if not context.layout.covered(unit, area, address, count):
            return f"err {area} {address}..{address + count} of unit {unit} is not declared"
        values = await context.async_getValues(unit, fc, address, count)
        if isinstance(values, ExcCodes):
            return f"err datastore answered {values.name}"
        return "ok " + " ".join(str(int(v)) for v in values)
    if not context.layout.covered(unit, area, address, len(numbers)):
        return f"err {area} {address}..{address + len(numbers)} of unit {unit} is not declared"
    if area in BIT_AREAS:
        if any(n not in (0, 1) for n in numbers):
            return f"err bits must be 0 or 1 in {line!r}"
        values = [n == 1 for n in numbers]
    else:
        if any(not 0 <= n <= 0xFFFF for n in numbers):
            return f"err registers must be 0..=65535 in {line!r}"
        values = numbers
    if rc := await context.async_setValues(unit, fc, address, values):
        return f"err datastore answered {rc!r}"
    return "ok"


async def serve_control(context: CheckedContext):
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while line := await reader.readline():
                try:
                    answer = await control(context, line.decode("utf-8", "replace"))
                except Exception as exc:  # pylint: disable=broad-except
                    answer = f"err {type(exc).__name__}: {exc}"
                writer.write(answer.replace("\n", " ").encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, "127.0.0.1", 0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tcp-port", type=int, help="serve TCP on 127.0.0.1:PORT (0: any)")
    mode.add_argument("--rtu", help="serve RTU on this serial device")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", default="N", choices=("N", "E", "O"))
    parser.add_argument("--stop", type=int, default=1, choices=(1, 2))
    parser.add_argument("--unit", type=int, action="append", default=[])
    parser.add_argument("--range", action="append", default=[])
    args = parser.parse_args()

    layout = Layout()
    for unit in args.unit:
        layout.add_unit(unit)
    for spec in args.range:
        layout.add_range(spec)
    if not layout.units:
        fail("no unit declared")
    devices = [layout.sim_device(unit) for unit in sorted(layout.units)]

    if args.rtu:
        # Drop whatever the other end wrote while no server was reading (e.g. before a restart).
        fd = os.open(args.rtu, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        termios.tcflush(fd, termios.TCIOFLUSH)
        os.close(fd)

        def drop_unknown_units(sending: bool, pdu):
            # A unit that is not on the line never answers: drop the request before handling.
            if not sending and pdu.dev_id not in layout.units:
                return None
            return pdu

        server = ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=args.rtu,
            baudrate=args.baud,
            parity=args.parity,
            stopbits=args.stop,
            bytesize=8,
            ignore_missing_devices=True,
            trace_pdu=drop_unknown_units,
        )
    else:
        server = ModbusTcpServer(
            devices,
            framer=FramerType.SOCKET,
            address=("127.0.0.1", args.tcp_port),
            ignore_missing_devices=False,
        )
    context = CheckedContext(server.context, layout)
    server.context = context
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        fail(f"cannot start the server: {exc}")
    port = server.transport.sockets[0].getsockname()[1] if not args.rtu else 0
    ctl = await serve_control(context)
    ctl_port = ctl.sockets[0].getsockname()[1]
    print(f"{TAG} READY port={port} control={ctl_port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
