"""Scale-out measurement driven from outside: N `touchline node` processes, each
in its own cgroup (v1 `cpu`) with the same CFS quota, the group placement; a
fresh topic per run, the dataset produced once the cluster settled, the apply
rate from the first commit until the owners' committed offsets reach the
records produced (BENCHMARKS.md, Scale-out). `touchline bench-scale` does the
same from the binary; this script measured the baseline while it could not be
built.

usage: python3 benches/scripts/scale_baseline.py BROKERS PARTITIONS NODES PERSONS QUOTA_CORES [TENANTS]
env: TOUCHLINE_BIN (default $CARGO_TARGET_DIR/debug/touchline); needs root (cgroups).
Runs with Tansu's compatibility flags (roundrobin, no static membership).
"""
import json, os, subprocess, sys, time, urllib.request, socket
B = os.environ.get("TOUCHLINE_BIN") or os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "touchline")
BROKERS = sys.argv[1]; P = int(sys.argv[2]); N = int(sys.argv[3]); PERSONS = int(sys.argv[4]); QUOTA = float(sys.argv[5]); TENANTS = int(sys.argv[6]) if len(sys.argv) > 6 else 24
tag = f"pl{os.getpid()}-p{P}-n{N}"
topic = f"scale-{tag}"
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def cg(name):
    d = f"/sys/fs/cgroup/cpu/{name}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/cpu.cfs_period_us", "w").write("100000"); open(f"{d}/cpu.cfs_quota_us", "w").write(str(int(QUOTA * 100000)))
    return d
def get(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=2) as r: return json.loads(r.read())
    except Exception: return None
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read(); rest = f[f.rfind(")") + 2:].split(); return (int(rest[11]) + int(rest[12])) / 100.0
TMP = f"/tmp/touchline-scale-{os.getpid()}"
os.makedirs(TMP, exist_ok=True)
nodes = []
for i in range(N):
    nid = f"{tag}-{i}"; addr = f"127.0.0.1:{port()}"; d = cg(f"touchline-{nid}")
    cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', f"{d}/cgroup.procs", B, "node", "--node-id", nid, "--brokers", BROKERS, "--topic", topic,
           "--dlq-topic", topic + ".dlq", "--group", topic + "-g", "--http", addr, "--session-timeout-ms", "6000", "--partitions", str(P),
           "--changelog-topic", topic + ".changelog", "--members-topic", topic + ".members", "--results-topic", topic + ".attr",
           "--kafka-property", "partition.assignment.strategy=roundrobin", "--kafka-property", "group.instance.id=",
           "--data-dir", f"{TMP}/{nid}"]
    log = open(f"{TMP}/{nid}.log", "w")
    nodes.append((nid, addr, subprocess.Popen(cmd, stdout=log, stderr=log), d))
def view(): return get(nodes[0][1], "/v1/cluster")
t = time.time()
while True:
    v = view()
    if v and len(v["partitions"]) == P and all(p["state"] == "active" for p in v["partitions"]) and len({p["owner"] for p in v["partitions"]}) == min(N, P):
        break
    if time.time() - t > 240: print("no settle", v and [(p["owner"], p["state"]) for p in v["partitions"]]); sys.exit(1)
    time.sleep(0.3)
print(f"settled in {time.time()-t:.1f}s", flush=True)
cpu0 = [cpu(n[2].pid) for n in nodes]
# Produce in the background and poll from the start, so the first commit is
# seen when it happens. EXTRA_GEN: a second `gen` to the same topic (e.g.
# "--tenants 1 --persons 4000 --seed 11" makes the largest tenant ~27 %).
gens = [[B, "gen", "--brokers", BROKERS, "--topic", topic, "--tenants", str(TENANTS), "--persons", str(PERSONS), "--seed", "5", "--partitions", str(P), "--quiet"]]
if os.environ.get("EXTRA_GEN"):
    gens.append([B, "gen", "--brokers", BROKERS, "--topic", topic, "--partitions", str(P), "--quiet"] + os.environ["EXTRA_GEN"].split())
out = open(f"{TMP}/gen.out", "w")
producer = subprocess.Popen(["sh", "-c", " && ".join(" ".join(f"'{a}'" for a in g) for g in gens)], stdout=out, stderr=subprocess.STDOUT)
first = None
sent = None
while True:
    own = {}
    for nid, addr, _, _ in nodes:
        v = get(addr, "/v1/cluster")
        if v:
            for p in v["partitions"]:
                if p["owner"] == nid: own[p["partition"]] = (nid, p["consumed_offset"] or 0)
    done = sum(o for _, o in own.values())
    now = time.time()
    if first is None and done > 0: first = (now, done)
    if sent is None and producer.poll() is not None:
        text = open(f"{TMP}/gen.out").read(); print(text.strip(), flush=True)
        sent = sum(int(l.split("sent ")[1].split(" ")[0]) for l in text.splitlines() if l.startswith("sent "))
    if sent is not None and done >= sent and len(own) == P: break
    time.sleep(0.05)
secs = now - first[0]; rate = (sent - first[1]) / secs
for i, (nid, addr, pr, d) in enumerate(nodes):
    mine = sum(o for (n, o) in own.values() if n == nid)
    st = dict(l.split() for l in open(f"{d}/cpu.stat"))
    print(f"  {nid}: {100*mine/sent:.1f}% of records, cpu {cpu(pr.pid)-cpu0[i]:.1f}s ({(cpu(pr.pid)-cpu0[i])/secs:.2f} cores), throttled {st['nr_throttled']}/{st['nr_periods']}")
shares = sorted(((o, p) for p, (_, o) in own.items()), reverse=True)
print("  partition shares:", ", ".join(f"p{p} {100*o/sent:.1f}%" for o, p in shares))
print(f"RESULT P={P} N={N} quota={QUOTA} records={sent} applied in {secs:.1f}s = {rate:.0f} rec/s", flush=True)
for nid, addr, pr, d in nodes:
    pr.terminate()
for nid, addr, pr, d in nodes:
    pr.wait(); os.rmdir(d); subprocess.run(["rm", "-rf", f"{TMP}/{nid}"])
