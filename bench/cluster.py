#!/usr/bin/env python3
"""Berth over a shared GlusterFS volume (issue 14): what the shared filesystem costs one
node, and what three nodes behind the load balancer give against one, in one run.

The cluster is `scripts/cluster` (one GlusterFS volume with a local brick, a FUSE mount
per node with every client cache off, nginx + `berth serve` per node, a round-robin TLS
load balancer), under its own root. The reference for the filesystem's cost is the same
node set-up (`berth serve` with one worker behind nginx with TLS, one nginx worker) on a
store on local disk, the same disk that holds the brick. Each round runs every system in
turn: local disk, node 1 straight to its nginx, the load balancer over node 1 only, the
load balancer over nodes 1-3 (`scripts/cluster up 1|3` switches it). Then, with a fixed
number of requests each, where the time goes: CPU seconds by process group, the worker's
syscalls (strace -c -w: calls and wall time in them), and the brick's file operations per
request (gluster volume profile): with the client caches off, each of those is a round
trip from the FUSE mount to the brick.

    bench/cluster.py --berth BIN            full run (about 8 minutes), report in bench/results/<date>-cluster.md
    bench/cluster.py --berth BIN --smoke    every figure once, tiny and short; writes no report

Needs root (FUSE mounts, glusterd) and port 24007 free (no other cluster up).
"""
import argparse, datetime, glob, http.client, os, random, re, resource, shutil, signal, ssl, statistics, subprocess
import sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import ab_head, put_manifest, push_blob, sh, sha256_hex, wrk  # noqa: E402  (shared helpers)
from scale import Server  # noqa: E402

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TICK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ["local", "node1", "lb1", "lb3"]
TITLES = {"local": "local disk, 1 node", "node1": "GlusterFS, node 1 direct", "lb1": "GlusterFS, LB → 1 node",
          "lb3": "GlusterFS, LB → 3 nodes"}


class Cluster:
    """`scripts/cluster` under its own root; `use(n)` points the load balancer at nodes 1..n."""

    def __init__(self, root, berth):
        self.root, self.berth = root, berth
        self.run("purge")
        self.use(3)

    def run(self, *args):
        result = subprocess.run([f"{REPO}/scripts/cluster", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, CLUSTER_ROOT=self.root, BERTH_BIN=self.berth, CLUSTER_WORKERS="1"))
        if result.returncode != 0:
            raise SystemExit(f"cluster: scripts/cluster {' '.join(args)} failed:\n{result.stderr}\n{result.stdout}")
        return result.stdout

    def use(self, count):
        lines = self.run("up", str(count)).split("\n")
        lines = [line for line in lines if line]
        self.nodes = [line.split()[1] for line in lines if line.startswith("node")]
        self.lb = lines[-1]
        self.nodes_in_lb = count
        # `up` reloads the load balancer: wait until its old worker has gone (it closes
        # keep-alive connections as it drains, which a load run would count as failures).
        master = self.pidfile(f"{self.root}/lb/nginx.pid")
        for _ in range(100):
            if len(descendants(master)) <= 2:
                break
            time.sleep(0.1)

    def gluster(self, *args):
        return sh("gluster", "--mode=script", f"--glusterd-sock={self.root}/run/glusterd.socket",
                  f"--log-file={self.root}/log/cli.log", *args, check=False).stdout

    def pidfile(self, path):
        try:
            return [int(open(path).read().strip())]
        except (OSError, ValueError):
            return []

    def groups(self):
        """Process group name -> root pids (their descendants count too)."""
        nodes = sorted(glob.glob(f"{self.root}/node*/berth.pid"))
        return {
            "berth (supervisor + worker)": [p for f in nodes for p in self.pidfile(f)],
            "node nginx": [p for f in sorted(glob.glob(f"{self.root}/node*/nginx/nginx.pid")) for p in self.pidfile(f)],
            "load balancer nginx": self.pidfile(f"{self.root}/lb/nginx.pid"),
            "GlusterFS FUSE clients (glusterfs)": [p for f in sorted(glob.glob(f"{self.root}/run/mount*.pid")) for p in self.pidfile(f)],
            "brick (glusterfsd)": [p for f in glob.glob(f"{self.root}/run/vols/*/*.pid") for p in self.pidfile(f)],
            "glusterd": self.pidfile(f"{self.root}/run/glusterd.pid"),
        }

    def worker_pids(self, node):
        return [pid for pid in descendants(self.pidfile(f"{self.root}/node{node}/berth.pid")) if is_worker(pid)]

    def down(self):
        self.run("purge")


def descendants(roots):
    """`roots` and every process below them."""
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pin(roots, cpus):
    """Every thread of `roots` and their descendants onto `cpus` (threads they start later
    inherit it). Returns how many threads were pinned."""
    pinned = 0
    for pid in descendants(roots):
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                os.sched_setaffinity(int(tid), cpus)
                pinned += 1
            except OSError:
                pass
    return pinned


def is_worker(pid):
    """A worker process of `berth serve` (the supervisor spawns it with --worker-of-supervisor)."""
    try:
        return b"--worker-of-supervisor" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False


def cpu_seconds(pids):
    total = 0
    for pid in descendants(pids):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (not children's)
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def load_generator_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CPU:
    """CPU seconds each process group used between `start()` and `stop()`."""

    def __init__(self, groups):
        self.groups = groups

    def start(self):
        self.before = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        self.before["load generator (ab / wrk / curl)"] = load_generator_seconds()
        self.wall = time.monotonic()

    def stop(self):
        after = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        after["load generator (ab / wrk / curl)"] = load_generator_seconds()
        return {name: after[name] - self.before[name] for name in after}, time.monotonic() - self.wall


def seed(base):
    """One small image tagged v1 in bench/app (for the HEADs)."""
    work = tempfile.mkdtemp()
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = random.Random(14).randbytes(4096)
    for name, data in (("config", config), ("layer", layer)):
        with open(f"{work}/{name}", "wb") as f:
            f.write(data)
        push_blob(base, "bench/app", f"{work}/{name}", sha256_hex(data))
    manifest = (f'{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json",'
                f'"digest":"sha256:{sha256_hex(config)}","size":{len(config)}}},"layers":[{{"mediaType":'
                f'"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{sha256_hex(layer)}","size":{len(layer)}}}]}}')
    with open(f"{work}/manifest", "w") as f:
        f.write(manifest)
    put_manifest(base, "bench/app", "v1", f"{work}/manifest")


def upload_digests(work, tag, threads, per_thread):
    """Per wrk thread, the digests of the 1 KiB blobs upload.lua sends (see bench/lua/upload.lua)."""
    folder = tempfile.mkdtemp(dir=work)
    for thread in range(threads):
        with open(f"{folder}/{thread}.txt", "w") as f:
            for i in range(1, per_thread + 1):
                unit = f"{tag}-{thread}-{i}|".encode()
                f.write(sha256_hex((unit * (1024 // len(unit) + 1))[:1024]) + "\n")
    return folder


def uploads_in_sequence(base, count, tag):
    """`count` complete 1 KiB uploads (POST, PUT ?digest=) on one keep-alive TLS connection."""
    host, port = base.split("//")[1].split(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
    bad = 0
    for i in range(count):
        data = f"{tag}-{i}|".encode() * 100
        conn.request("POST", "/v2/bench/profile/blobs/uploads/")
        answer = conn.getresponse()
        answer.read()
        location = re.sub(r"^https?://[^/]+", "", answer.getheader("Location") or "")
        if answer.status != 202 or not location:
            bad += 1
            continue
        sep = "&" if "?" in location else "?"
        conn.request("PUT", f"{location}{sep}digest=sha256:{sha256_hex(data)}", body=data,
                     headers={"Content-Type": "application/octet-stream"})
        answer = conn.getresponse()
        answer.read()
        bad += answer.status != 201
    conn.close()
    return bad


def strace_summary(pids, action):
    """Runs `action()` with strace -c -w -f attached to `pids`; calls and wall seconds per syscall."""
    out = tempfile.mktemp(suffix=".strace")
    args = ["strace", "-c", "-w", "-f", "-o", out] + [arg for pid in pids for arg in ("-p", str(pid))]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    try:
        action()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    rows = {}
    for line in open(out):
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(fields) >= 5 and re.match(r"^[\d.]+$", fields[0]) and fields[-1] != "total":
            rows[fields[-1]] = (int(fields[3]), float(fields[1]))
    os.remove(out)
    return rows


def brick_profile(cluster, action):
    """Runs `action()` and returns the brick's calls per file operation during it."""
    cluster.gluster("volume", "profile", "berth", "start")
    cluster.gluster("volume", "profile", "berth", "info", "clear")
    action()
    text = cluster.gluster("volume", "profile", "berth", "info", "cumulative")
    cluster.gluster("volume", "profile", "berth", "stop")
    calls = {}
    for line in text.split("\n"):
        fields = line.split()
        # %-latency  Avg  Min  Max (each "N us")  No. of calls  Fop
        if len(fields) >= 6 and fields[-1].isupper() and fields[-2].isdigit():
            calls[fields[-1]] = calls.get(fields[-1], 0) + int(fields[-2])
    return calls


def fmt(samples):
    median = statistics.median(samples)
    spread = f" ({min(samples):.3g}–{max(samples):.3g})" if len(samples) > 1 else ""
    return f"{median:.4g}{spread}", median


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--berth", required=True, help="the berth binary (a release build)")
    parser.add_argument("--smoke", action="store_true", help="every figure once, tiny and short; no report file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4, help="duration of each load run")
    parser.add_argument("--root", default="/tmp/berth-cluster-bench", help="the cluster's CLUSTER_ROOT")
    parser.add_argument("--out", help="report file (default bench/results/<date>-cluster.md)")
    args = parser.parse_args()
    if os.getuid() != 0:
        raise SystemExit("cluster: needs root (FUSE mounts, glusterd)")
    rounds, seconds = (1, 1) if args.smoke else (args.rounds, args.seconds)
    head_requests, profile_uploads = (200, 20) if args.smoke else (3000, 300)
    started = time.monotonic()
    berth = os.path.abspath(args.berth)
    work = tempfile.mkdtemp(prefix="berth-cluster-bench-", dir="/tmp")
    cluster = Cluster(args.root, berth)
    local = None
    try:
        local = Server(work, berth, f"{work}/store", nginx_workers=1, environment={"BERTH_WORKERS": "1"})
        url = {"local": local.base, "node1": cluster.nodes[0], "lb1": cluster.lb, "lb3": cluster.lb}
        seed(local.base)
        seed(cluster.lb)
        groups = {"local": {"berth (supervisor + worker)": [local.berth.pid], "node nginx": [p.pid for p in local.procs[1:]]},
                  "cluster": cluster.groups()}
        samples = {(figure, system): [] for figure in ("head", "upload") for system in SYSTEMS}
        cpu = {}
        errors = []

        def point(system):
            wanted = 3 if system == "lb3" else 1
            if system.startswith("lb") and cluster.nodes_in_lb != wanted:
                cluster.use(wanted)
            return CPU(groups["local" if system == "local" else "cluster"])

        for round_number in range(rounds):
            for system in SYSTEMS:
                meter = point(system)
                meter.start()
                r = ab_head(f"{url[system]}/v2/bench/app/manifests/v1", seconds, 16, MANIFEST)
                used, wall = meter.stop()
                samples[("head", system)].append(r["rate"])
                cpu.setdefault(("head", system), []).append((used, r["rate"] * wall))
                if r["failed"] or r["non2xx"]:
                    errors.append(f"HEAD {system}: {r['failed']} failed, {r['non2xx']} not 2xx")
            for system in SYSTEMS:
                meter = point(system)
                tag = f"{system}-{round_number}-{random.randrange(1 << 30)}"
                digests = upload_digests(work, tag, 8, 200 if args.smoke else 4000)
                meter.start()
                r = wrk(url[system], seconds, 8, script="upload.lua", extra=["bench/uploads", digests, tag, "1024"])
                used, _ = meter.stop()
                samples[("upload", system)].append(r["uploads"] / r["seconds"])
                cpu.setdefault(("upload", system), []).append((used, r["uploads"]))
                bad = r["bad_status"] + sum(r["errors"].values())
                if bad:
                    errors.append(f"uploads {system}: {r['bad_status']} bad statuses {r['bad_statuses'][:80]}, errors {r['errors']}")
            print(f"cluster: round {round_number + 1} of {rounds} done", file=sys.stderr)

        # Where the time goes, with a fixed number of requests: node 1 direct against local.
        cluster.use(1)
        profiles = {}
        for system in ("local", "node1"):
            pids = ([p for p in descendants([local.berth.pid]) if is_worker(p)] if system == "local"
                    else cluster.worker_pids(1))
            heads = lambda: sh("ab", "-q", "-i", "-k", "-c", "4", "-n", str(head_requests), "-H", f"Accept: {MANIFEST}",
                               f"{url[system]}/v2/bench/app/manifests/v1", check=False)
            ups = lambda: errors.extend([f"profile uploads {system}: {bad} failed"] if (bad := uploads_in_sequence(
                url[system], profile_uploads, f"p-{system}-{random.randrange(1 << 30)}")) else [])
            profiles[("head", system)] = strace_summary(pids, heads)
            profiles[("upload", system)] = strace_summary(pids, ups)
        bricks = {"head": brick_profile(cluster, lambda: sh("ab", "-q", "-i", "-k", "-c", "4", "-n", str(head_requests),
                                                             "-H", f"Accept: {MANIFEST}",
                                                             f"{url['node1']}/v2/bench/app/manifests/v1", check=False)),
                  "upload": brick_profile(cluster, lambda: uploads_in_sequence(url["node1"], profile_uploads,
                                                                                f"b-{random.randrange(1 << 30)}"))}
        scrub = sh(berth, "scrub", "--store", f"{args.root}/mnt/node1", check=False)
        if "problems=0" not in scrub.stdout:
            errors.append(f"scrub of the volume: {scrub.stdout}{scrub.stderr}")
    finally:
        if local:
            local.stop()
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"# Cluster bench, {datetime.date.today().isoformat()}", "",
             f"`bench/cluster.py --berth <release berth>{' --smoke' if args.smoke else ''}` at "
             f"{sh('git', '-C', REPO, 'rev-parse', '--short', 'HEAD', check=False).stdout.strip()}: {rounds} round(s) of "
             f"{seconds} s per load run; manifest HEAD by tag with ab, 16 keep-alive connections; small uploads (POST + "
             "PUT ?digest= of 1 KiB) with wrk, 8 connections; every system behind nginx with TLS; one berth worker and "
             f"one nginx worker per node; 2 shared cores. Took {time.monotonic() - started:.0f} s.", "",
             "| figure | unit | " + " | ".join(TITLES[s] for s in SYSTEMS) + " | GlusterFS / local | 3 nodes / 1 |",
             "|---|---|" + "---|" * (len(SYSTEMS) + 2)]
    for figure, title, unit in (("head", "manifest HEAD by tag", "req/s"), ("upload", "small uploads 1 KiB", "uploads/s")):
        cells, medians = [], {}
        for system in SYSTEMS:
            cell, medians[system] = fmt(samples[(figure, system)])
            cells.append(cell)
        lines.append(f"| {title} | {unit} | " + " | ".join(cells)
                     + f" | {medians['node1'] / medians['local']:.2f}× | {medians['lb3'] / medians['lb1']:.2f}× |")
    lines += ["", f"Errors: {'; '.join(errors) if errors else 'none'} (every HEAD 200, every upload 201; `berth scrub` of the volume clean afterwards: "
              f"{'yes' if not any(e.startswith('scrub') for e in errors) else 'no'})", ""]

    lines += ["## CPU per request by process group (median round; ms of CPU per request; a group's figures "
              "sum over every node)", "",
              "| process group | " + " | ".join(f"HEAD {TITLES[s]}" for s in SYSTEMS) + " | " +
              " | ".join(f"upload {TITLES[s]}" for s in SYSTEMS) + " |", "|---|" + "---|" * (2 * len(SYSTEMS))]
    names = []
    for (figure, system), runs in cpu.items():
        for used, _ in runs:
            names += [n for n in used if n not in names]
    for name in names:
        row = []
        for figure in ("head", "upload"):
            for system in SYSTEMS:
                per = [used.get(name, 0) * 1000 / count for used, count in cpu[(figure, system)] if count and name in used]
                row.append(f"{statistics.median(per):.3f}" if per else "")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines.append("")

    lines += ["## The worker's syscalls per request (strace -c -w -f on node 1's worker and on the local one; "
              f"{head_requests} HEADs with 4 connections, {profile_uploads} uploads one after another)", "",
              "| syscall | HEAD local: calls | HEAD local: µs | HEAD GlusterFS: calls | HEAD GlusterFS: µs | "
              "upload local: calls | upload local: µs | upload GlusterFS: calls | upload GlusterFS: µs |",
              "|---|---|---|---|---|---|---|---|---|"]
    wait_calls = {"futex", "epoll_wait", "poll", "accept", "accept4", "select", "pselect6", "ppoll", "nanosleep",
                  "clock_nanosleep", "restart_syscall", "rt_sigtimedwait", "wait4"}
    per_request = {("head", s): head_requests for s in ("local", "node1")}
    per_request.update({("upload", s): profile_uploads for s in ("local", "node1")})
    counted = set()
    for key, rows in profiles.items():
        counted |= {name for name, (calls, secs) in rows.items() if name not in wait_calls}
    ranked = sorted(counted, key=lambda n: -max(profiles[k].get(n, (0, 0))[1] / per_request[k] for k in profiles))
    totals = {k: [0.0, 0.0] for k in profiles}
    for name in ranked:
        cells = []
        for key in (("head", "local"), ("head", "node1"), ("upload", "local"), ("upload", "node1")):
            calls, secs = profiles[key].get(name, (0, 0.0))
            totals[key][0] += calls / per_request[key]
            totals[key][1] += secs * 1e6 / per_request[key]
            cells += [f"{calls / per_request[key]:.2f}", f"{secs * 1e6 / per_request[key]:.1f}"]
        if any(float(c) >= 0.05 for c in cells[0::2]):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **all but waits** | " + " | ".join(f"**{v:.2f}**" if i % 2 == 0 else f"**{v:.1f}**"
                                                        for k in (("head", "local"), ("head", "node1"), ("upload", "local"),
                                                                  ("upload", "node1"))
                                                        for i, v in enumerate(totals[k])) + " |")
    lines += ["", f"(Waiting calls left out: {', '.join(sorted(wait_calls & set().union(*[set(r) for r in profiles.values()])))}.)", ""]

    lines += ["## Brick file operations per request (gluster volume profile, node 1 direct)", "",
              "With every client cache off, each operation is a round trip from node 1's FUSE client to the brick.", "",
              "| operation | per HEAD | per upload |", "|---|---|---|"]
    fops = sorted(set(bricks["head"]) | set(bricks["upload"]),
                  key=lambda f: -(bricks["head"].get(f, 0) / head_requests + bricks["upload"].get(f, 0) / profile_uploads))
    for fop in fops:
        lines.append(f"| {fop} | {bricks['head'].get(fop, 0) / head_requests:.2f} | {bricks['upload'].get(fop, 0) / profile_uploads:.2f} |")
    lines.append(f"| **all** | **{sum(bricks['head'].values()) / head_requests:.2f}** | "
                 f"**{sum(bricks['upload'].values()) / profile_uploads:.2f}** |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.smoke:
        out = args.out or f"{HERE}/results/{datetime.date.today().isoformat()}-cluster.md"
        with open(out, "w") as f:
            f.write(report)
        print(f"cluster: report in {out}", file=sys.stderr)
    if errors:
        raise SystemExit(f"cluster: errors: {errors}")


if __name__ == "__main__":
    main()
