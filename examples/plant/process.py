#!/usr/bin/env python3
"""The physical process behind the example plant (started by examples/plant/run).

The simulated devices (pymodbus servers, the python-snap7 PLC) only hold registers; this script
is the water, the pump, the valves and the heat between them. Through the devices' control
channels (the same ones the tests use) it reads what Petra commanded — P1's run command and
speed reference on the pump skid, H1's enable and power reference on the heater controller,
the valve and trace heating bits in the PLC's DB2 — integrates tank levels, flow, pressure and
temperature, and writes what the field instruments would measure back into the devices. It also
plays the weather station, publishing to the broker every few seconds.

Process time runs ``--speedup`` times faster than the wall clock (default 20), so a whole batch
(fill, heat, deliver) takes a few minutes instead of an hour. Petra's logic runs in real time.

Only the Python standard library is used (the MQTT publisher is a minimal MQTT 3.1.1 client).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import struct
import sys
import time

T1_AREA = 12.5  # m², as in plant.yaml
T2_AREA = 4.0  # m²
P1_MAX_FLOW = 20.0  # m³/h at full speed, V1 open
T2_OUTFLOW = 12.0  # m³/h through V2 fully open
T1_SUPPLY = 8.0  # m³/h of raw water while T1 is below its float valve's level
T1_FLOAT_LEVEL = 4.0  # m
H1_MAX_POWER = 400.0  # kW
LOSS = 0.6  # kW/K from T2 to the outside air
COLD_WATER = 12.0  # °C
VALVE_TRAVEL = 3.0  # s (process time) from closed to open
VFD_RATE = 20.0  # %/s (process time)


class Control:
    """One line-based control connection to a simulator (modbus_sim.py / s7_sim.py)."""

    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.sock: socket.socket | None = None
        self.file = None

    def cmd(self, line: str) -> str:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.file = self.sock.makefile("r", encoding="utf-8")
        self.sock.sendall(line.encode() + b"\n")
        answer = self.file.readline().strip()
        if answer == "ok":
            return ""
        if not answer.startswith("ok "):
            raise RuntimeError(f"{self.name}: `{line}` answered `{answer}`")
        return answer[3:]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.file = None


class Mqtt:
    """Publishes QoS 0 messages; connects (again) when needed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    @staticmethod
    def _length(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n % 128, n // 128
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    @staticmethod
    def _str(s: str) -> bytes:
        b = s.encode()
        return struct.pack(">H", len(b)) + b

    def _connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        body = self._str("MQTT") + bytes([4, 0x02]) + struct.pack(">H", 60)
        body += self._str("plant-weather-station")
        sock.sendall(bytes([0x10]) + self._length(len(body)) + body)
        ack = sock.recv(4)
        if len(ack) != 4 or ack[0] != 0x20 or ack[3] != 0:
            sock.close()
            raise RuntimeError(f"the broker refused the connection: {ack!r}")
        self.sock = sock

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if self.sock is None:
            self._connect()
        body = self._str(topic) + payload
        header = bytes([0x31 if retain else 0x30]) + self._length(len(body))
        try:
            self.sock.sendall(header + body)
        except OSError:
            self.sock.close()
            self.sock = None
            raise


class Process:
    def __init__(self) -> None:
        self.t1 = 3.0
        self.t2 = 1.2
        self.temp = 48.0
        self.speed = 0.0
        self.v1 = 0.0
        self.v2 = 0.0
        self.vfd_temp = 30.0
        self.overtemp = False
        self.batch = 1
        self.delivered = False
        self.outdoor = 8.0

    def step(self, dt: float, cmd: dict) -> None:
        """Advances the process by `dt` seconds of process time under Petra's commands."""
        running = cmd["p1_run"]
        target = cmd["p1_speed"] if running else 0.0
        if self.speed < target:
            self.speed = min(target, self.speed + VFD_RATE * dt)
        else:
            self.speed = max(target, self.speed - 2 * VFD_RATE * dt)
        for name, open_cmd in (("v1", cmd["v1"]), ("v2", cmd["v2"])):
            pos = getattr(self, name) + (dt if open_cmd else -dt) / VALVE_TRAVEL
            setattr(self, name, min(1.0, max(0.0, pos)))
        if self.v2 >= 1.0:
            self.delivered = True
        elif self.v2 <= 0.0 and self.delivered:
            self.delivered = False
            self.batch += 1

        flow = P1_MAX_FLOW * self.speed / 100 * self.v1 if self.t1 > 0.05 else 0.0
        supply = T1_SUPPLY if self.t1 < T1_FLOAT_LEVEL else 0.0
        out = T2_OUTFLOW * self.v2 if self.t2 > 0.02 else 0.0
        self.t1 = max(0.0, self.t1 + (supply - flow) / 3600 * dt / T1_AREA)
        volume_before = max(self.t2 * T2_AREA, 0.05)
        self.t2 = max(0.0, self.t2 + (flow - out) / 3600 * dt / T2_AREA)

        power = H1_MAX_POWER * cmd["h1_power"] / 100 if cmd["h1_enable"] else 0.0
        if self.overtemp:
            power = 0.0
        capacity = volume_before * 1000 * 4.186  # kJ/K
        heat = power - LOSS * (self.temp - self.outdoor)
        mixing = flow / 3600 * dt * (COLD_WATER - self.temp) / volume_before
        self.temp += heat * dt / capacity + mixing
        if self.temp > 90.0:
            self.overtemp = True
        elif self.temp < 70.0:
            self.overtemp = False
        self.vfd_temp += (30.0 + 15.0 * self.speed / 100 - self.vfd_temp) * min(1.0, dt / 120)
        self.flow = flow
        self.power = power / H1_MAX_POWER * 100
        self.running = running and self.speed > 0.5

    def pressure(self) -> float:
        s = self.speed / 100
        closed = 1.3 if self.v1 < 0.5 else 1.0
        return 0.3 + 6.5 * s * s * closed if self.running else 0.3


def words(value: float) -> tuple[int, int]:
    """An f32 as two registers in word order CDAB (low word first)."""
    bits = struct.unpack(">I", struct.pack(">f", value))[0]
    return bits & 0xFFFF, bits >> 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skid", type=int, required=True, help="control port of the pump skid")
    parser.add_argument("--heater", type=int, required=True, help="control port of the heater")
    parser.add_argument("--plc", type=int, required=True, help="control port of the PLC")
    parser.add_argument("--mqtt", type=int, required=True, help="port of the broker")
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.2, help="seconds between updates")
    args = parser.parse_args()

    skid = Control("skid", args.skid)
    heater = Control("heater", args.heater)
    plc = Control("plc", args.plc)
    mqtt = Mqtt(args.mqtt)
    p = Process()
    p.flow = p.power = 0.0
    p.running = False
    # What Petra commands, as last read: a device that does not answer keeps its last commands
    # (and its instruments their last values) while the others go on.
    cmd = {"p1_run": False, "p1_speed": 0.0, "h1_enable": False, "h1_power": 0.0}
    cmd |= {"v1": False, "v2": False}
    failing: set[str] = set()

    def attempt(name: str, control: Control | Mqtt | None, action) -> None:
        try:
            action()
            if name in failing:
                print(f"process: {name} answers again", flush=True)
                failing.discard(name)
        except (OSError, RuntimeError, ValueError) as exc:
            if isinstance(control, Control):
                control.close()
            if name not in failing:
                print(f"process: {name} does not answer ({exc}); retrying", flush=True)
                failing.add(name)

    def read_skid() -> None:
        run, speed = skid.cmd("get coil 1 0 1"), skid.cmd("get holding 1 0 1")
        cmd.update(p1_run=run == "1", p1_speed=int(speed) / 10.0)

    def read_heater() -> None:
        enable, power = heater.cmd("get coil 7 0 1"), heater.cmd("get holding 7 0 1")
        cmd.update(h1_enable=enable == "1", h1_power=int(power) / 10.0)

    def read_plc() -> None:
        db2 = bytes.fromhex(plc.cmd("get db 2 0 5"))
        cmd.update(v1=bool(db2[0] & 1), v2=bool(db2[1] & 1))

    def write_skid() -> None:
        raw = min(10000, round(p.flow / P1_MAX_FLOW * 10000))
        lo, hi = words(1.5 + 18.0 * (p.speed / 100) ** 3 if p.running else 0.0)
        skid.cmd(f"set input 1 0 {raw} {lo} {hi} {round(p.vfd_temp * 10)}")
        skid.cmd(f"set discrete 1 0 {int(p.running)} 0")

    def write_heater() -> None:
        temp = max(-32768, min(32767, round(p.temp * 10))) & 0xFFFF
        heater.cmd(f"set input 7 0 {temp} {round(p.power * 10)}")
        heater.cmd(f"set discrete 7 0 {int(p.overtemp)}")

    def write_plc() -> None:
        # DB1: t1 level, t2 level (REAL), PT-101 raw (INT), limit switches and E-stop (byte 10),
        # the batch number as STRING[16] at byte 12.
        bits = (p.v1 >= 1.0) | (p.v1 <= 0.0) << 1 | (p.v2 >= 1.0) << 2 | 1 << 3
        pressure = round(min(10.0, p.pressure()) / 10 * 27648)
        batch = f"B-{p.batch:04d}".encode()
        db1 = struct.pack(">ffh", p.t1, p.t2, pressure) + bytes([bits, 0, 16, len(batch)])
        plc.cmd("set db 1 0 " + (db1 + batch.ljust(16, b"\0")).hex())

    def weather(minutes: float) -> None:
        p.outdoor = 5.0 + 6.0 * math.sin(2 * math.pi * minutes / 15)
        payload = {
            "temp": round(p.outdoor, 1),
            "humidity": round(70 + 20 * math.sin(2 * math.pi * minutes / 11), 1),
        }
        mqtt.publish("weather/station1", json.dumps(payload).encode(), retain=True)

    started = last = time.monotonic()
    next_weather = 0.0
    print("process: running", flush=True)
    while True:
        now = time.monotonic()
        dt = (now - last) * args.speedup
        last = now
        attempt("the pump skid", skid, read_skid)
        attempt("the heater controller", heater, read_heater)
        attempt("the PLC", plc, read_plc)
        p.step(dt, cmd)
        attempt("the pump skid", skid, write_skid)
        attempt("the heater controller", heater, write_heater)
        attempt("the PLC", plc, write_plc)
        if now >= next_weather:
            next_weather = now + 5.0
            attempt("the broker", mqtt, lambda: weather((now - started) / 60))
        time.sleep(max(0.0, args.tick - (time.monotonic() - now)))

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
