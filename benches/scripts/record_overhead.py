#!/usr/bin/env python3
"""What `qubot record` costs the loop: pipeline CPU and capture -> applied p99, without and with a
recorder, alternating for three rounds (`just record-overhead`; BENCHMARKS.md, "Recording").

Each run: `qubot up` on the patrol world, 30 s for the robot to reach its steady patrol, then a
20 s window. CPU is utime + stime of the three actor processes from /proc (the exporter's
process_cpu_seconds_total only moves in whole seconds); p99 from the actuator's
qubot_pipeline_latency_seconds buckets over the window. Loopback only, bounded in time."""
import subprocess, time, os, signal
from probe import buckets, cpu_seconds, kids, p99, scrape, total
ROOT=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Q=os.path.join(ROOT,"target/release/qubot"); WORLD=os.path.join(ROOT,"deploy/chaos/worlds/patrol.toml")
OUT=os.path.join(ROOT,"target/record-overhead.mcap")
def one(rec, base, hub):
    up=subprocess.Popen([Q,"up","--robot","ovh","--world",WORLD,"--hub",hub,"--metrics-port-base",str(base),"--timeout","90"],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    time.sleep(30)  # past patrol's discovery of the walled-in goal (BENCHMARKS, flood-10x control)
    r=None
    if rec:
        r=subprocess.Popen([Q,"record","--robot","ovh","--connect",hub,"--out",OUT,"--metrics-addr",f"127.0.0.1:{base+9}"],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
        time.sleep(2)
    actors=kids(up.pid)
    t0=[scrape(base+i) for i in range(1,4)]; rc0=scrape(base+9) if rec else None; w0=time.time(); j0=cpu_seconds(actors); r0=cpu_seconds([r.pid]) if rec else 0
    time.sleep(20)
    t1=[scrape(base+i) for i in range(1,4)]; rc1=scrape(base+9) if rec else None; w1=time.time(); j1=cpu_seconds(actors); r1=cpu_seconds([r.pid]) if rec else 0
    cpu=(j1-j0)/(w1-w0)*100
    lat=p99(buckets(t0[2],"qubot_pipeline_latency_seconds"),buckets(t1[2],"qubot_pipeline_latency_seconds"))
    rcpu=(r1-r0)/(w1-w0)*100
    msgs=(total(rc1,"qubot_record_messages_total")-total(rc0,"qubot_record_messages_total")) if rec else 0
    if r: r.send_signal(signal.SIGINT); r.wait(timeout=30)
    up.send_signal(signal.SIGINT); up.wait(timeout=30)
    return cpu, lat*1e3 if lat else None, rcpu, msgs/(w1-w0)
res={"without":[], "with":[]}
for k in range(3):
    for rec in (False, True):
        base=19700+k*20+(10 if rec else 0); hub=f"tcp/127.0.0.1:{base+5}"
        c,l,rc,m=one(rec,base,hub)
        res["with" if rec else "without"].append((c,l,rc,m))
        print(("with   " if rec else "without"), f"pipeline CPU {c:.2f} % of a core, p99 {l:.2f} ms, recorder CPU {rc:.2f} %, {m:.1f} msg/s", flush=True)
import statistics as st
for k in res:
    print(k, "median pipeline CPU %.2f %%, p99 %.2f ms, recorder CPU %.2f %%" % (st.median(x[0] for x in res[k]), st.median(x[1] for x in res[k]), st.median(x[2] for x in res[k])))
