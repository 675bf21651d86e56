#!/usr/bin/env python3
"""End-to-end latency of a stream: bench/latency/pipeline.pipe reads events on standard input
and writes them on standard output; this driver sends RATE events per second for SECONDS and
times each event from the write of its line to the read of its output line.

    python3 bench/latency.py BINARY [RATE] [SECONDS]     (default 5000 events/s for 10 s)

Prints p50, p99 and the maximum in milliseconds (the first second is warm-up, not counted).
"""
import json
import os
import subprocess
import sys
import threading
import time

binary = sys.argv[1]
rate = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
n = int(rate * seconds)
proc = subprocess.Popen([binary, "--mode", "stream", "--quiet", "--metrics-interval", "0"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
latencies = []


def read():
    for line in proc.stdout:
        now = time.perf_counter_ns()
        ev = json.loads(line)
        if ev["id"] >= rate:  # skip the first second
            latencies.append((now - ev["sent_ns"]) / 1e6)


reader = threading.Thread(target=read)
reader.start()
start = time.perf_counter()
for i in range(n):
    due = start + i / rate
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    line = '{"id":%d,"at":%d,"sent_ns":%d}\n' % (i, int(time.time() * 1000), time.perf_counter_ns())
    os.write(proc.stdin.fileno(), line.encode())
sent_for = time.perf_counter() - start
proc.stdin.close()
reader.join()
proc.wait()
latencies.sort()
if not latencies:
    sys.exit("no events came back")
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"latency at {n / sent_for:.0f} events/s over {sent_for:.1f}s ({len(latencies)} events timed): "
      f"p50 {pick(0.5):.3f} ms, p99 {pick(0.99):.3f} ms, max {latencies[-1]:.3f} ms")
