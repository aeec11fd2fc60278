"""What the overhead scripts read from a running pipeline: its processes' /metrics, a p99 from
histogram buckets over a window, and CPU seconds from /proc. Loopback only."""
import os, re, subprocess, urllib.request


def scrape(port):
    """The /metrics text at 127.0.0.1:port, or "" if it does not answer."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        return ""


def total(text, name, filt=""):
    """The sum of the samples of `name` whose line contains `filt`."""
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name) and filt in l)


def buckets(text, name):
    """Histogram `name`'s cumulative buckets, summed over its series: {le: count}."""
    b = {}
    for l in text.splitlines():
        if l.startswith(name + "_bucket"):
            le = float(re.search(r'le="([^"]+)"', l).group(1))
            b[le] = b.get(le, 0) + float(l.split()[-1])
    return b


def p99(b0, b1):
    """The 99th percentile of what was observed between two bucket snapshots, interpolated
    within its bucket; None if nothing was."""
    d = [(le, b1[le] - b0.get(le, 0)) for le in sorted(b1)]
    count = d[-1][1] if d else 0
    if count <= 0:
        return None
    target, prev_le, prev_c = 0.99 * count, 0.0, 0.0
    for le, c in d:
        if c >= target:
            return prev_le if le == float("inf") else prev_le + (le - prev_le) * (target - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c


def cpu_seconds(pids):
    """utime + stime of `pids` (the exporter's process_cpu_seconds_total moves in whole seconds)."""
    t = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except OSError:
            pass
    return t / os.sysconf("SC_CLK_TCK")


def kids(pid):
    """The child processes of `pid` (a supervisor's actors)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]
