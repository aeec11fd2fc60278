#!/usr/bin/env python3
"""What the live Foxglove view costs: pipeline CPU and capture -> applied p99 without a view,
with `qubot up --foxglove` and nobody connected, with a client reading every channel, and with
a client that subscribes to everything and never reads (4 KiB window), alternating for three rounds (`just live-overhead`; BENCHMARKS.md, "Live view").

Each run: `qubot up` on the patrol world, 30 s for the robot to reach its steady patrol, then a
20 s window. CPU is utime + stime from /proc: the three actors (pipeline) and the recorder
process that serves the view; p99 from the actuator's qubot_pipeline_latency_seconds buckets
over the window. The client is a plain socket speaking RFC 6455 and Foxglove's WebSocket
protocol, subscribed to every advertised channel, reading as fast as the frames come.
Loopback only, bounded in time."""
import json, os, signal, socket, statistics as st, subprocess, sys, threading, time

from probe import buckets, cpu_seconds, kids, p99, scrape, total

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Q = os.path.join(ROOT, "target/release/qubot")
WORLD = os.path.join(ROOT, "deploy/chaos/worlds/patrol.toml")
SETTLE_S, WINDOW_S, ROUNDS = 30, 20, 3


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")
    except OSError:
        return []


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            for l in open(f"/proc/{p}/status"):
                if l.startswith("VmRSS:"):
                    total += int(l.split()[1])
        except OSError:
            pass
    return total


class Reader(threading.Thread):
    """Connects, subscribes to every channel, and reads until told to stop; `stuck` stops
    reading once subscribed, with a 4 KiB receive window."""

    def __init__(self, port, stuck=False):
        super().__init__(daemon=True)
        self.stuck = stuck
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if stuck:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        self.s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: foxglove.sdk.v1\r\n\r\n").encode())
        self.buf, self.data, self.bytes, self.stop = b"", 0, 0, False
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def frame(self):
        while True:
            if len(self.buf) >= 2:
                n, h = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, h = int.from_bytes(self.buf[2:4], "big"), 4
                elif n == 127 and len(self.buf) >= 10:
                    n, h = int.from_bytes(self.buf[2:10], "big"), 10
                if n < 126 or h > 2:
                    if len(self.buf) >= h + n:
                        op, payload, self.buf = self.buf[0] & 0x0F, self.buf[h:h + n], self.buf[h + n:]
                        return op, payload
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def send_text(self, text):
        p, mask = text.encode(), b"\x01\x02\x03\x04"
        head = bytes([0x81]) + (bytes([0x80 | len(p)]) if len(p) < 126 else bytes([0x80 | 126]) + len(p).to_bytes(2, "big"))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(p)))

    def run(self):
        self.s.settimeout(1)
        while not self.stop:
            try:
                op, payload = self.frame()
            except socket.timeout:
                continue
            except (EOFError, OSError):
                return
            if op == 1:
                m = json.loads(payload)
                if m.get("op") == "advertise":
                    subs = [{"id": i + 1, "channelId": c["id"]} for i, c in enumerate(m["channels"])]
                    self.send_text(json.dumps({"op": "subscribe", "subscriptions": subs}))
                    if self.stuck:
                        return
            elif op == 2 and payload[:1] == b"\x01":
                self.data += 1
                self.bytes += len(payload)


def one(mode, base):
    hub = f"tcp/127.0.0.1:{base + 5}"
    view_port = base + 8
    args = [Q, "up", "--robot", "lvo", "--world", WORLD, "--hub", hub, "--metrics-port-base", str(base), "--timeout", "90"]
    if mode != "no view":
        args += ["--foxglove", f"127.0.0.1:{view_port}"]
    up = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(SETTLE_S)
    client = None
    if mode in ("client", "stuck client"):
        client = Reader(view_port, stuck=mode == "stuck client")
        client.start()
        time.sleep(2)
    procs = kids(up.pid)
    view = [p for p in procs if "record" in cmdline(p)]
    actors = [p for p in procs if p not in view]
    m0, w0, a0, v0 = scrape(base + 3), time.time(), cpu_seconds(actors), cpu_seconds(view)
    d0, b0 = (client.data, client.bytes) if client else (0, 0)
    time.sleep(WINDOW_S)
    m1, w1, a1, v1 = scrape(base + 3), time.time(), cpu_seconds(actors), cpu_seconds(view)
    view_rss = rss_kib(view)
    d1, b1 = (client.data, client.bytes) if client else (0, 0)
    drops = total(scrape(base + 4), "qubot_view_dropped_total")
    if client:
        client.stop = True
    up.send_signal(signal.SIGINT)
    up.wait(timeout=30)
    w = w1 - w0
    lat = p99(buckets(m0, "qubot_pipeline_latency_seconds"), buckets(m1, "qubot_pipeline_latency_seconds"))
    return {
        "pipeline_cpu": (a1 - a0) / w * 100,
        "p99_ms": lat * 1e3 if lat else float("nan"),
        "view_cpu": (v1 - v0) / w * 100,
        "client_msgs_s": (d1 - d0) / w,
        "client_kib_s": (b1 - b0) / w / 1024,
        "dropped": drops,
        "view_rss_mib": view_rss / 1024,
    }


def main():
    # `live_overhead.py "stuck client"` runs only the modes named.
    modes = sys.argv[1:] or ["no view", "view, nobody", "client", "stuck client"]
    res = {m: [] for m in modes}
    for k in range(ROUNDS):
        for i, mode in enumerate(modes):
            r = one(mode, 19800 + k * 40 + i * 10)
            res[mode].append(r)
            print(f"{mode:13} pipeline CPU {r['pipeline_cpu']:.2f} %, p99 {r['p99_ms']:.2f} ms, "
                  f"view CPU {r['view_cpu']:.2f} %, client {r['client_msgs_s']:.0f} msg/s "
                  f"{r['client_kib_s']:.0f} KiB/s, dropped {r['dropped']:.0f}, view RSS {r['view_rss_mib']:.1f} MiB", flush=True)
    for mode in modes:
        rs = res[mode]
        med = lambda key: st.median(r[key] for r in rs)
        runs = lambda key: ", ".join(f"{r[key]:.2f}" for r in rs)
        print(f"{mode}: median pipeline CPU {med('pipeline_cpu'):.2f} % ({runs('pipeline_cpu')}), "
              f"p99 {med('p99_ms'):.2f} ms ({runs('p99_ms')}), view CPU {med('view_cpu'):.2f} % "
              f"({runs('view_cpu')}), view RSS {med('view_rss_mib'):.1f} MiB, client {med('client_msgs_s'):.0f} msg/s "
              f"{med('client_kib_s'):.0f} KiB/s, dropped {med('dropped'):.0f}")


if __name__ == "__main__":
    main()
