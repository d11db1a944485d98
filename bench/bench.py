#!/usr/bin/env python3
"""Berth against Debian's docker-registry and against nginx serving the same files.

One nginx fronts all three with the same TLS settings: Berth's own site (rendered by
scripts/nginx-conf), docker-registry behind a reverse proxy, and a static server (the
ceiling). With --baseline BIN, an older Berth binary runs too, with its own store and
socket, behind a second nginx rendered the same way (its own port), and gets the same
content. Each figure runs the systems in turn, round after round (Berth, baseline,
registry, static), and the report gives medians, spreads (min-max) and ratios. Loops and
runs are bounded.

    bench/run                    full run, report in bench/results/<date>-<host>.md
    bench/run --smoke            every figure once, tiny and short; writes no report
    bench/run --baseline BIN     the same, with BIN (e.g. the commit before) as "Berth before"
    bench/run --only mirror      the mirror section alone (bench/mirror.py), report in bench/results/<date>-mirror.md
"""
import argparse, base64, datetime, gzip, hashlib, json, os, platform, random, re, shutil, signal
import http.client, socket, ssl, statistics, subprocess, sys, tempfile, threading, time
import mirror

import pull_records

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def write_random(path, size, rng):
    """`size` incompressible bytes from `rng` (in 16 MiB pieces: randbytes is capped)."""
    with open(path, "wb") as f:
        left = size
        while left:
            piece = min(left, 16 << 20)
            f.write(rng.randbytes(piece))
            left -= piece


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def stop_processes(procs):
    """SIGTERM to each (last started first), then up to 10 s each before SIGKILL."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def make_image(directory, image_layer, rng):
    """An OCI layout at `directory` with tag v1: three random `image_layer`-byte layers, a config."""
    os.makedirs(f"{directory}/blobs/sha256")
    def add_blob(path):
        digest = sh("sha256sum", path).stdout.split()[0]
        os.replace(path, f"{directory}/blobs/sha256/{digest}")
        return {"digest": "sha256:" + digest, "size": os.path.getsize(f"{directory}/blobs/sha256/{digest}")}
    # Layers already gzip'd (stored blocks: random bytes do not shrink), because
    # skopeo compresses uncompressed layers on its way to a registry, and the
    # figure would time gzip on the client.
    layers, diff_ids = [], []
    for index in range(3):
        write_random(f"{directory}/raw", image_layer, rng)
        diff_ids.append("sha256:" + sh("sha256sum", f"{directory}/raw").stdout.split()[0])
        with open(f"{directory}/raw", "rb") as raw, gzip.open(f"{directory}/layer", "wb", compresslevel=0) as out:
            shutil.copyfileobj(raw, out, 1 << 20)
        os.remove(f"{directory}/raw")
        layers.append(dict(add_blob(f"{directory}/layer"), mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
    def add_json(value, media_type):
        with open(f"{directory}/json", "w") as f:
            json.dump(value, f, separators=(",", ":"))
        return dict(add_blob(f"{directory}/json"), mediaType=media_type)
    config = add_json({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                      "application/vnd.oci.image.config.v1+json")
    manifest = add_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                         "config": config, "layers": layers}, "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    with open(f"{directory}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
    with open(f"{directory}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


class Systems:
    """Berth, docker-registry and nginx static, up and fronted by one nginx; with a
    baseline binary, the baseline Berth too, behind its own nginx (the same site)."""

    def __init__(self, work, berth_bin, baseline_bin=None):
        self.work = work
        self.procs = []
        # The order of the systems within each round.
        self.names = ["berth"] + (["baseline"] if baseline_bin else []) + ["registry", "static"]
        self.berths = [name for name in self.names if name in ("berth", "baseline")]
        tls = f"{work}/tls"
        os.makedirs(tls)
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{tls}/key.pem", "-out", f"{tls}/cert.pem")
        self.cert, self.key = f"{tls}/cert.pem", f"{tls}/key.pem"
        self.stores = {"berth": f"{work}/store", "baseline": f"{work}/store-baseline"}
        self.sockets = {"berth": f"{work}/berth.sock", "baseline": f"{work}/baseline.sock"}
        self.store = self.stores["berth"]
        self.workers = {}
        for name, binary in (("berth", berth_bin), ("baseline", baseline_bin)):
            if not binary:
                continue
            # As systemd/berth.service runs it (one malloc arena per busy thread bloats RSS).
            self.workers[name] = self.start([binary, "serve", "--store", self.stores[name], "--socket", self.sockets[name]],
                                            f"{name}.log", {"MALLOC_ARENA_MAX": "2"})
            self.wait(lambda socket_path=self.sockets[name]: os.path.exists(socket_path), f"{name} socket")

        upstream = free_port()
        with open(f"{work}/registry.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                    f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{upstream}\n")
        self.start(["docker-registry", "serve", f"{work}/registry.yml"], "registry.log")
        self.wait(lambda: self.port_open(upstream), "docker-registry")

        self.ports = {name: free_port() for name in self.names}
        nginx = f"{work}/nginx"
        for name, prefix in (("berth", nginx), ("baseline", f"{work}/nginx-baseline")):
            if name in self.workers:
                sh(f"{REPO}/scripts/nginx-conf", prefix, "--port", str(self.ports[name]), "--store", self.stores[name],
                   "--socket", self.sockets[name], "--cert", self.cert, "--key", self.key, "--user", "root",
                   "--workers", "2")
        self.json_dir = f"{work}/json"
        os.makedirs(self.json_dir)
        with open(f"{HERE}/nginx-bench.conf.in") as f:
            extra = f.read()
        for name, value in {"REGISTRY_PORT": self.ports["registry"], "REGISTRY_UPSTREAM": upstream,
                            "STATIC_PORT": self.ports["static"], "CERT": self.cert, "KEY": self.key,
                            "STORE": self.store, "JSON": self.json_dir, "PREFIX": nginx}.items():
            extra = extra.replace(f"@{name}@", str(value))
        with open(f"{nginx}/berth-site.conf", "a") as f:
            f.write("\n" + extra)
        self.start(["nginx", "-p", nginx, "-c", f"{nginx}/nginx.conf", "-g", "daemon off;"], "nginx.log")
        if "baseline" in self.workers:
            prefix = f"{work}/nginx-baseline"
            self.start(["nginx", "-p", prefix, "-c", f"{prefix}/nginx.conf", "-g", "daemon off;"], "nginx-baseline.log")
        for port in self.ports.values():
            self.wait(lambda p=port: self.port_open(p), f"nginx on {port}")

    def start(self, args, log, environment=None):
        out = open(f"{self.work}/{log}", "w")
        env = dict(os.environ, **(environment or {}))
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.procs.append(proc)
        return proc

    @staticmethod
    def port_open(port):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    def wait(self, ready, what):
        for _ in range(200):
            if ready():
                return
            time.sleep(0.05)
        raise SystemExit(f"bench: {what} did not come up (logs in {self.work})")

    def url(self, system):
        return f"https://127.0.0.1:{self.ports[system]}"

    def rss_kib(self, system="berth"):
        """The worker's resident memory. A berth serve that supervises worker processes (its
        children) reports the largest of its own and theirs: the target is per worker."""
        pid = self.workers[system].pid
        pids = [pid]
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    pids += [int(child) for child in f.read().split()]
            except OSError:
                continue
        values = []
        for each in pids:
            try:
                with open(f"/proc/{each}/status") as f:
                    values.append(int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)))
            except (OSError, AttributeError):
                continue  # a worker that exited just now
        if not values:
            raise OSError(f"no RSS for {system} (pid {pid})")
        return max(values)

    def stop(self):
        stop_processes(self.procs)


class RssSampler:
    """The worker's resident memory, sampled every 50 ms on a thread: the peak while a
    figure runs (not only the value after it)."""

    def __init__(self, systems):
        self.systems = systems
        self.peak = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped.wait(0.05):
            try:
                value = self.systems.rss_kib()
            except (OSError, AttributeError):
                continue
            with self.lock:
                self.peak = max(self.peak, value)

    def take_peak(self):
        """The peak since the last call (and starts a new period)."""
        with self.lock:
            peak, self.peak = self.peak, 0
        return peak

    def stop(self):
        self.stopped.set()


def curl(*args):
    result = sh("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %header{location}", *args, check=False)
    code, seconds, location = (result.stdout.split(" ", 2) + ["", ""])[:3]
    return int(code or 0), float(seconds or 0), location.strip()


# Large bodies go over HTTP/1.1, as docker, containerd and skopeo send them. curl's own
# HTTP/2 upload path spent 1.6 s of system CPU per 512 MiB here (small frames and window
# updates on the client), which measured curl on the shared 2 cores, not the servers.
UPLOAD_PROTOCOL = "--http1.1"


def push_blob(base, repo, path, digest):
    code, _, location = curl("-X", "POST", f"{base}/v2/{repo}/blobs/uploads/")
    assert code == 202, f"POST {base} {repo}: {code}"
    location = re.sub(r"^https?://[^/]+", "", location)
    sep = "&" if "?" in location else "?"
    code, seconds, _ = curl(UPLOAD_PROTOCOL, "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", path,
                            f"{base}{location}{sep}digest=sha256:{digest}")
    assert code == 201, f"PUT {base} {repo}: {code}"
    return seconds


def put_manifest(base, repo, ref, path):
    code, _, _ = curl("-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                      "--data-binary", f"@{path}", f"{base}/v2/{repo}/manifests/{ref}")
    assert code == 201, f"manifest {base} {repo}:{ref}: {code}"


def wrk(url, seconds, connections, method="GET", script="get.lua", extra=()):
    threads = min(connections, 2) if script == "get.lua" else connections
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
            "-s", f"{HERE}/lua/{script}", url, "--", *( [method] if script == "get.lua" else [] ), *extra]
    out = sh(*args, check=False).stdout
    match = re.search(r"BENCHJSON (\{.*\})", out)
    if not match:
        raise SystemExit(f"bench: wrk gave no result for {url}:\n{out}")
    data = json.loads(match.group(1))
    data["seconds"] = data["duration_us"] / 1e6
    return data


def ab_head(url, seconds, connections, accept, headers=()):
    """HEAD load with ApacheBench (-i): wrk cannot read HEAD answers (it waits for a body)."""
    extra = [arg for header in headers for arg in ("-H", header)]
    out = sh("ab", "-q", "-i", "-k", "-c", str(connections), "-t", str(seconds), "-n", "5000000",
             "-H", f"Accept: {accept}", *extra, url, check=False).stdout
    rate = re.search(r"Requests per second:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    p50 = re.search(r"\n\s+50%\s+(\d+)", out)
    p99 = re.search(r"\n\s+99%\s+(\d+)", out)
    if not rate:
        raise SystemExit(f"bench: ab gave no result for {url}:\n{out}")
    return {"rate": float(rate.group(1)), "failed": int(failed.group(1)) if failed else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50_ms": int(p50.group(1)) if p50 else 0, "p99_ms": int(p99.group(1)) if p99 else 0}


class AuthenticatedSystems:
    """Authentication on, next to the anonymous systems: a second `berth serve` on the same
    store with authentication in the worker (an htpasswd file at bcrypt cost 10, Docker
    token auth) behind its own nginx (the same site), and a second docker-registry on the
    same storage with its own htpasswd auth (the same file), on plain HTTP: cheaper for it
    than our TLS, so the ratio errs in its favour."""

    USER, PASSWORD = "bench", "bench-password"

    def __init__(self, systems, work, berth_bin):
        htpasswd = f"{work}/htpasswd"
        sh("htpasswd", "-B", "-C", "10", "-b", "-c", htpasswd, self.USER, self.PASSWORD)
        socket_path = f"{work}/auth.sock"
        self.berth = systems.start([berth_bin, "serve", "--store", systems.store, "--socket", socket_path], "berth-auth.log",
                                   {"MALLOC_ARENA_MAX": "2", "BERTH_HTPASSWD": htpasswd, "BERTH_TOKEN_TTL": "3600"})
        systems.wait(lambda: os.path.exists(socket_path), "authenticating berth socket")
        port, prefix = free_port(), f"{work}/nginx-auth"
        sh(f"{REPO}/scripts/nginx-conf", prefix, "--port", str(port), "--store", systems.store, "--socket", socket_path,
           "--cert", systems.cert, "--key", systems.key, "--user", "root", "--workers", "2")
        systems.start(["nginx", "-p", prefix, "-c", f"{prefix}/nginx.conf", "-g", "daemon off;"], "nginx-auth.log")
        systems.wait(lambda: systems.port_open(port), f"nginx on {port}")
        self.port = port
        self.base = f"https://127.0.0.1:{port}"
        credential = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        self.basic = "Authorization: Basic " + credential
        answer = sh("curl", "-sk", "-u", f"{self.USER}:{self.PASSWORD}",
                    f"{self.base}/token?service=berth&scope=repository:bench/app:pull").stdout
        self.bearer = "Authorization: Bearer " + json.loads(answer)["token"]

        registry_port = free_port()
        with open(f"{work}/registry-auth.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                    f"auth:\n  htpasswd:\n    realm: bench\n    path: {htpasswd}\n"
                    f"http:\n  addr: 127.0.0.1:{registry_port}\n")
        systems.start(["docker-registry", "serve", f"{work}/registry-auth.yml"], "registry-auth.log")
        systems.wait(lambda: systems.port_open(registry_port), "authenticating docker-registry")
        self.registry_base = f"http://127.0.0.1:{registry_port}"

    def worker_pids(self):
        """The authenticating supervisor and its worker processes."""
        pids = [self.berth.pid]
        for task in os.listdir(f"/proc/{self.berth.pid}/task"):
            try:
                with open(f"/proc/{self.berth.pid}/task/{task}/children") as f:
                    pids += [int(child) for child in f.read().split()]
            except OSError:
                continue
        return pids

    def cpu_seconds(self):
        """User + system CPU of the supervisor and its workers so far."""
        ticks = 0
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
            except (OSError, IndexError, ValueError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        """The largest worker RSS of the authenticating berth (the target is per worker)."""
        values = []
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    values.append(int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)))
            except (OSError, AttributeError):
                continue
        return max(values) if values else 0

    def token_cpu_ms(self, count):
        """Worker CPU per token issued from a cached credential: `count` GET /token with
        Basic credentials on one keep-alive TLS connection, after one that caches the
        credential. Returns (ms per token, tokens issued)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=30)
        headers = {"Authorization": self.basic.split(": ", 1)[1]}
        path = "/token?service=berth&scope=repository:bench/app:pull"
        def issue():
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status == 200 and b'"token"' in body
        if not issue():
            raise SystemExit("bench: the token endpoint refused the bench user")
        before = self.cpu_seconds()
        issued = sum(1 for _ in range(count) if issue())
        spent = self.cpu_seconds() - before
        connection.close()
        return spent * 1000 / max(issued, 1), issued


class Report:
    TITLES = {"berth": "Berth", "baseline": "Berth before", "registry": "docker-registry", "static": "nginx static"}

    def __init__(self, systems=("berth", "registry", "static")):
        self.systems = list(systems)
        self.rows = []

    def add(self, figure, unit, values, target=None, better="higher"):
        """values: system -> list of samples."""
        self.rows.append((figure, unit, {k: v for k, v in values.items() if v}, target, better))

    @staticmethod
    def fmt(samples):
        median = statistics.median(samples)
        spread = f" ({min(samples):.3g}–{max(samples):.3g})" if len(samples) > 1 else ""
        return f"{median:.4g}{spread}", median

    @staticmethod
    def ratio(medians, other, better):
        """Berth's median against another system's, above 1 when Berth is better."""
        if "berth" not in medians or other not in medians or medians[other if better == "higher" else "berth"] == 0:
            return None
        return medians["berth"] / medians[other] if better == "higher" else medians[other] / medians["berth"]

    @staticmethod
    def relative_spread(samples):
        """(max - min) / median of a figure's samples: the run's own noise (None with one sample)."""
        if not samples or len(samples) < 2 or statistics.median(samples) == 0:
            return None
        return (max(samples) - min(samples)) / statistics.median(samples)

    def spreads(self):
        """Per figure: the relative spread of Berth's samples (and of the baseline's)."""
        return [(figure, {system: self.relative_spread(values.get(system)) for system in ("berth", "baseline")
                          if system in self.systems})
                for figure, unit, values, target, better in self.rows if "berth" in values]

    def worse_than_before(self):
        """Figures where Berth is worse than the baseline by more than the larger relative
        spread of the two: (figure, Berth / before, that spread)."""
        worse = []
        for figure, unit, values, target, better in self.rows:
            if "berth" not in values or "baseline" not in values:
                continue
            medians = {system: statistics.median(values[system]) for system in ("berth", "baseline")}
            r = self.ratio(medians, "baseline", better)
            noise = max(self.relative_spread(values["berth"]) or 0, self.relative_spread(values["baseline"]) or 0)
            if r is not None and r < 1 - noise:
                worse.append((figure, r, noise))
        return worse

    def markdown(self):
        others = [system for system in self.systems if system != "berth"]
        ratio_columns = [system for system in ("baseline", "registry", "static") if system in self.systems]
        ratio_titles = {"baseline": "Berth / before", "registry": "Berth / registry", "static": "Berth / static"}
        header = (["figure", "unit", "Berth"] + [self.TITLES[system] for system in others]
                  + [ratio_titles[system] for system in ratio_columns] + ["target", "met"])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for figure, unit, values, target, better in self.rows:
            cells, medians = {}, {}
            for system in self.systems:
                if system in values:
                    cells[system], medians[system] = self.fmt(values[system])
            ratios = {system: self.ratio(medians, system, better) for system in ratio_columns}
            r_registry, r_static = ratios.get("registry"), ratios.get("static")
            met = ""
            if target:
                checks = []
                if "registry" in target and r_registry is not None:
                    checks.append(r_registry >= target["registry"])
                if "static" in target and r_static is not None:
                    checks.append(r_static >= target["static"])
                if "max" in target and "berth" in medians:
                    checks.append(medians["berth"] <= target["max"])
                if "min" in target and "berth" in medians:
                    checks.append(medians["berth"] >= target["min"])
                met = "yes" if checks and all(checks) else "no"
            target_text = ", ".join(f"{'≤' if k == 'max' else '≥'} {v}{' ' + unit if k in ('max', 'min') else ' × ' + k}"
                                    for k, v in (target or {}).items())
            row = ([figure, unit] + [cells.get(system, "") for system in self.systems]
                   + [f"{ratios[system]:.2f}×" if ratios[system] is not None else "" for system in ratio_columns]
                   + [target_text, met])
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)


def write_report(report, summary, name, options, rounds, seconds, systems, smoke):
    """Prints the table and the notes; unless smoke, writes them to bench/results/<date>-<name>.md."""
    text = report.markdown()
    print(text)
    print("\n".join(summary))
    if smoke:
        return
    machine = [f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
               f"- host: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}",
               "- cpu: " + next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
               "- " + sh("nginx", "-v", check=False).stderr.strip(),
               "- " + sh("swift", "--version", check=False).stdout.splitlines()[0],
               "- load average (1, 5, 15 min) before / after the run: "
               + " / ".join(" ".join(f"{value:.2f}" for value in loads) for loads in (options.load_before, os.getloadavg())),
               f"- rounds {rounds}, {seconds} s per load run, systems alternated "
               + " → ".join(Report.TITLES[system] for system in systems.names) + " in each round"]
    if options.baseline:
        machine.append(f"- Berth before: {os.path.abspath(options.baseline)}")
    os.makedirs(f"{HERE}/results", exist_ok=True)
    path = f"{HERE}/results/{datetime.date.today().isoformat()}-{name}.md"
    with open(path, "w") as f:
        f.write("# Berth benchmark\n\n" + "\n".join(machine) + "\n\nMedians, with min–max over the rounds in "
                "parentheses. Ratios compare medians (for ms, lower is better, so the ratio is inverted).\n\n"
                + text + "\n\n" + "\n".join(f"- {line}" for line in summary) + "\n")
    print(f"report: {path}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="every figure once, tiny and short; no report file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each load run")
    parser.add_argument("--berth", required=True, help="the berth binary")
    parser.add_argument("--baseline", metavar="BIN",
                        help="an older berth binary (e.g. the commit before) to run alongside, as \"Berth before\"")
    parser.add_argument("--only", choices=["mirror"], help="run one section alone")
    options = parser.parse_args()
    options.load_before = os.getloadavg()  # the machine may be shared: the report says how busy it was
    smoke = options.smoke
    rounds = 1 if smoke else options.rounds
    seconds = 1 if smoke else options.seconds
    big = (64 << 20) if not smoke else (1 << 20)
    mono = (512 << 20) if not smoke else (2 << 20)
    chunked = (1 << 30) if not smoke else (8 << 20)
    tag_count = 1000 if not smoke else 20
    repo_count = 110 if not smoke else 5
    metrics_repo_count = 1000 if not smoke else 20

    work = tempfile.mkdtemp(prefix="berth-bench-")
    systems = Systems(work, options.berth, options.baseline)
    report = Report(systems.names)
    rss = {"idle": systems.rss_kib()}
    baseline_rss = {"idle": systems.rss_kib("baseline")} if options.baseline else {}
    sampler = RssSampler(systems)
    peaks = {}
    try:
        rng = random.Random(20261123)
        if options.only == "mirror":
            note = mirror.mirror_section(systems, report, work, options.berth, rounds, seconds, smoke, rng)
            write_report(report, [note], "mirror", options, rounds, seconds, systems, smoke)
            return
        files = {}
        for name, size in (("big", big), ("small", 4096), ("config", 2)):
            data = b"{}" if name == "config" else rng.randbytes(size)
            path = f"{work}/{name}.bin"
            with open(path, "wb") as f:
                f.write(data)
            files[name] = (path, sha256_hex(data), len(data))
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": "sha256:" + files["config"][1], "size": 2},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": "sha256:" + files["big"][1], "size": files["big"][2]},
                                          {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": "sha256:" + files["small"][1], "size": 4096}]},
                              separators=(",", ":")).encode()
        manifest_path = f"{work}/manifest.json"
        with open(manifest_path, "wb") as f:
            f.write(manifest)
        manifest_digest = sha256_hex(manifest)

        # The same content in Berth (and the baseline) and docker-registry; listings copied
        # for the static server.
        for system in [name for name in systems.names if name != "static"]:
            base = systems.url(system)
            for name in ("big", "small", "config"):
                push_blob(base, "bench/app", files[name][0], files[name][1])
            put_manifest(base, "bench/app", "v1", manifest_path)
            for name in ("big", "small", "config"):
                push_blob(base, "bench/tags", files[name][0], files[name][1])
            for index in range(tag_count):
                put_manifest(base, "bench/tags", f"t{index:04d}", manifest_path)
            for index in range(repo_count):
                push_blob(base, f"bench/r{index:03d}", files["config"][0], files["config"][1])
        for endpoint, name in (("/v2/bench/tags/tags/list", "tags.json"), ("/v2/_catalog?n=100", "catalog.json")):
            body = sh("curl", "-sk", systems.url("berth") + endpoint).stdout
            with open(f"{systems.json_dir}/{name}", "w") as f:
                f.write(body)

        def blob_path(system, digest):
            if system == "static":
                return f"{systems.url('static')}/s/bench/app/blobs/sha256/{digest}"
            return f"{systems.url(system)}/v2/bench/app/blobs/sha256:{digest}"

        def each_round(run, label):
            sampler.take_peak()
            samples = {system: [] for system in systems.names}
            for _ in range(rounds):
                for system in systems.names:
                    value = run(system)
                    if value is not None:
                        samples[system].append(value)
            peaks[label] = (sampler.take_peak(), systems.rss_kib())
            return samples

        def throughput(system):
            r = wrk(blob_path(system, files["big"][1]), seconds, 8)
            return r["bytes"] / r["seconds"] / (1 << 20)
        report.add(f"blob GET {big >> 20} MiB, 8 connections", "MiB/s", each_round(throughput, "blob GET 64 MiB"),
                   {"static": 0.9, "registry": 2})

        def small_gets(system):
            r = wrk(blob_path(system, files["small"][1]), seconds, 32)
            return r["requests"] / r["seconds"]
        report.add("blob GET 4 KiB, 32 connections", "req/s", each_round(small_gets, "blob GET 4 KiB"), {"registry": 10})

        latencies = {}
        accept = "application/vnd.oci.image.manifest.v1+json"
        def manifest_requests(method, reference):
            def run(system):
                if system == "static":
                    url = f"{systems.url('static')}/s/bench/app/blobs/sha256/{manifest_digest}"
                else:
                    url = f"{systems.url(system)}/v2/bench/app/manifests/{reference}"
                if method == "HEAD":
                    r = ab_head(url, seconds, 32, accept)
                    latencies.setdefault((method, system), []).append((r["p50_ms"] * 1000, r["p99_ms"] * 1000))
                    return r["rate"] if r["failed"] == 0 and r["non2xx"] == 0 else 0.0
                r = wrk(url, seconds, 32, method, extra=[f"Accept: {accept}"])
                latencies.setdefault((method, system), []).append((r["latency_us"]["p50"], r["latency_us"]["p99"]))
                return r["requests"] / r["seconds"]
            return run
        report.add("manifest HEAD by tag, 32 connections", "req/s", each_round(manifest_requests("HEAD", "v1"), "manifest HEAD"),
                   {"registry": 8, "static": 0.3})
        report.add("manifest GET by digest, 32 connections", "req/s",
                   each_round(manifest_requests("GET", "sha256:" + manifest_digest), "manifest GET"), {"registry": 8, "static": 0.3})

        # Pull recording (record_pulls, on by default) against a second Berth on the same
        # store with it off, alternated in each round (target: on >= 0.95 x off).
        recording_off = pull_records.RecordingOff(systems, work, options.berth)
        pull_samples = pull_records.figure(systems, recording_off, rounds, seconds)
        report.add("manifest GET by tag, 32 connections, pulls recorded (same rounds)", "req/s", {"berth": pull_samples["on"]},
                   {"min": round(0.95 * statistics.median(pull_samples["off"]))})
        report.add("manifest GET by tag, 32 connections, record_pulls = false", "req/s", {"berth": pull_samples["off"]})

        # Authenticated pulls next to anonymous ones, alternated in each round: Basic
        # (bcrypt cost 10, cached by the worker), a Bearer token from /token, and
        # docker-registry with its own htpasswd auth (the same file).
        authenticating = AuthenticatedSystems(systems, work, options.berth)
        def authenticated(kind, method):
            def run(variant):
                base, headers = {"anonymous": (systems.url("berth"), []),
                                 "Basic": (authenticating.base, [authenticating.basic]),
                                 "Bearer": (authenticating.base, [authenticating.bearer]),
                                 "registry": (authenticating.registry_base, [authenticating.basic])}[variant]
                if kind == "blob":
                    url = f"{base}/v2/bench/app/blobs/sha256:{files['small'][1]}"
                elif method == "HEAD":
                    url = f"{base}/v2/bench/app/manifests/v1"
                else:
                    url = f"{base}/v2/bench/app/manifests/sha256:{manifest_digest}"
                if method == "HEAD":
                    r = ab_head(url, seconds, 32, accept, headers)
                    return r["rate"] if r["failed"] == 0 and r["non2xx"] == 0 else 0.0
                r = wrk(url, seconds, 32, method, extra=[f"Accept: {accept}"] + headers)
                if variant == "registry":
                    # Its bcrypt per request on 32 connections: count the answered ones only.
                    return (r["requests"] - r["errors"]["status"]) / r["seconds"]
                return r["requests"] / r["seconds"] if r["errors"]["status"] == 0 else 0.0
            return run
        for figure, kind, method in (("manifest HEAD by tag", "manifest", "HEAD"), ("manifest GET by digest", "manifest", "GET"),
                                     ("blob GET 4 KiB", "blob", "GET")):
            run = authenticated(kind, method)
            samples = {"anonymous": [], "Basic": [], "Bearer": [], "registry": []}
            for _ in range(rounds):
                for variant in samples:
                    samples[variant].append(run(variant))
            anonymous = statistics.median(samples["anonymous"])
            report.add(f"{figure}, 32 connections, anonymous (same rounds)", "req/s", {"berth": samples["anonymous"]})
            for variant in ("Basic", "Bearer"):
                label = "Basic, bcrypt cost 10" if variant == "Basic" else "Bearer token"
                # The docker-registry column: its own htpasswd auth (Basic; it has no token server).
                report.add(f"{figure}, 32 connections, {label}", "req/s",
                           {"berth": samples[variant], "registry": samples["registry"]},
                           {"min": round(0.8 * anonymous), "registry": 20})
        token_ms, tokens_issued = authenticating.token_cpu_ms(200 if smoke else 3000)
        auth_rss = authenticating.rss_kib()

        def listing(berth_path, static_name):
            def run(system):
                url = (f"{systems.url('static')}/j/{static_name}" if system == "static"
                       else f"{systems.url(system)}{berth_path}")
                r = wrk(url, seconds, 8)
                return r["requests"] / r["seconds"]
            return run
        report.add(f"tags list ({tag_count} tags), 8 connections", "req/s",
                   each_round(listing("/v2/bench/tags/tags/list", "tags.json"), "tags list"), {"registry": 5})
        report.add("catalog page of 100, 8 connections", "req/s",
                   each_round(listing("/v2/_catalog?n=100", "catalog.json"), "catalog"))

        # /metrics on a store of metrics_repo_count repositories, Berth (and the baseline)
        # only: the store is topped up with one monolithic blob POST (the 2-byte config) per
        # new repository, a hundred to a curl.
        new_repos = [f"bench/m{index:04d}" for index in range(max(0, metrics_repo_count - 2 - repo_count))]
        for system in systems.berths:
            base = systems.url(system)
            for start in range(0, len(new_repos), 100):
                batch = new_repos[start:start + 100]
                urls = [a for repo in batch
                        for a in ("-o", "/dev/null", f"{base}/v2/{repo}/blobs/uploads/?digest=sha256:{files['config'][1]}")]
                codes = sh("curl", "-sk", "-X", "POST", "-H", "Content-Type: application/octet-stream",
                           "--data-binary", f"@{files['config'][0]}", "-w", "%{http_code}\n", *urls, check=False).stdout.split()
                assert codes == ["201"] * len(batch), f"monolithic POST {base}: {sorted(set(codes))}"
        metrics_seen = {}
        def metrics_scrape(system):
            if system not in systems.berths:
                return None
            r = wrk(f"{systems.url(system)}/metrics", seconds, 8)
            seen = metrics_seen.setdefault(system, {"non2xx": 0})
            seen["non2xx"] += r["errors"]["status"]
            if "repositories" not in seen:
                body = sh("curl", "-sk", f"{systems.url(system)}/metrics").stdout
                found = re.search(r"^berth_repositories(?:\{\})? (\S+)$", body, re.M)
                seen["repositories"] = found.group(1) if found else "?"
            return r["requests"] / r["seconds"] if r["errors"]["status"] == 0 else 0.0
        report.add(f"/metrics scrape, store of {metrics_repo_count} repositories", "req/s",
                   each_round(metrics_scrape, "/metrics scrape"))

        upload_errors = []
        def uploads(system):
            digest_dir = tempfile.mkdtemp(dir=work)
            tag = f"{system}{random.randrange(1 << 30)}"
            per_thread = 20000 if not smoke else 200
            for thread in range(16):
                with open(f"{digest_dir}/{thread}.txt", "w") as f:
                    for i in range(1, per_thread + 1):
                        unit = f"{tag}-{thread}-{i}|".encode()
                        data = (unit * (1024 // len(unit) + 1))[:1024]
                        f.write(sha256_hex(data) + "\n")
            base = f"{systems.url('static')}/null" if system == "static" else systems.url(system)
            r = wrk(base, seconds, 16, script="upload.lua", extra=["bench/uploads", digest_dir, tag, "1024"])
            upload_errors.append((system, r["bad_status"], r["bad_statuses"][:80]))
            return r["uploads"] / r["seconds"]
        report.add("small uploads (POST + PUT 1 KiB), 16 clients", "uploads/s", each_round(uploads, "small uploads"), {"registry": 3})

        # Large uploads: monolithic, and chunked with the final PUT timed on its own.
        mono_path = f"{work}/mono.bin"
        write_random(mono_path, mono, rng)
        mono_digest = sh("sha256sum", mono_path).stdout.split()[0]
        sha = sh("openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "1").stdout
        sha_mib = float(sha.strip().split()[-1].rstrip("k")) * 1000 / (1 << 20)
        def dd_mib(*flags):
            out = sh("dd", f"if={mono_path}", f"of={work}/dd.out", "bs=1M", *flags).stderr
            os.remove(f"{work}/dd.out")
            return mono / float(re.search(r"copied, ([\d.]+) s", out).group(1)) / (1 << 20)
        os.sync()
        dd_buffered = dd_mib("conv=fsync")
        dd_direct = dd_mib("conv=fsync", "oflag=direct")
        mono_floor = 0.8 * min(sha_mib, dd_buffered)
        def monolithic(system):
            if system == "static":
                # The ceiling: the same PUT to nginx's /null/, which reads and drops the body.
                code, seconds_taken, _ = curl(UPLOAD_PROTOCOL, "-X", "PUT", "-T", mono_path,
                                              f"{systems.url('static')}/null/upload")
                assert code == 201, f"null PUT: {code}"
            else:
                seconds_taken = push_blob(systems.url(system), f"bench/mono{random.randrange(1 << 30)}", mono_path, mono_digest)
            return mono / seconds_taken / (1 << 20)
        report.add(f"monolithic {mono >> 20} MiB PUT", "MiB/s", each_round(monolithic, "monolithic PUT"),
                   {"registry": 1.5, "min": round(mono_floor)})

        # Every upload is a blob new to the store: its first chunk is fresh each time (a
        # blob pushed again is a different, cheaper path: the second copy is set aside).
        chunk = chunked // 8
        chunk_path, first_path = f"{work}/chunk.bin", f"{work}/first.bin"
        write_random(chunk_path, chunk, rng)
        with open(chunk_path, "rb") as f:
            chunk_data = f.read()
        def fresh_first_chunk():
            write_random(first_path, chunk, rng)
            whole = hashlib.sha256()
            with open(first_path, "rb") as f:
                whole.update(f.read())
            for _ in range(7):
                whole.update(chunk_data)
            return whole.hexdigest()
        def chunked_upload(system):
            if system == "static":
                return None
            base = systems.url(system)
            chunked_digest = fresh_first_chunk()
            code, _, location = curl("-X", "POST", f"{base}/v2/bench/chunked{random.randrange(1 << 30)}/blobs/uploads/")
            assert code == 202
            for index in range(8):
                location = re.sub(r"^https?://[^/]+", "", location)
                code, _, location = curl(UPLOAD_PROTOCOL, "-X", "PATCH", "-H", "Content-Type: application/octet-stream",
                                         "-H", f"Content-Range: {index * chunk}-{(index + 1) * chunk - 1}",
                                         "-T", first_path if index == 0 else chunk_path, f"{base}{location}")
                assert code == 202, f"PATCH {system}: {code}"
            location = re.sub(r"^https?://[^/]+", "", location)
            sep = "&" if "?" in location else "?"
            # Flush what earlier runs (of any system) left dirty, so the final PUT is timed
            # on its own and not charged for another system's writeback.
            os.sync()
            code, final_seconds, _ = curl("-X", "PUT", f"{base}{location}{sep}digest=sha256:{chunked_digest}")
            assert code == 201, f"final PUT {system}: {code}"
            return final_seconds * 1000
        report.add(f"final PUT after {chunked >> 20} MiB in 8 PATCHes", "ms", each_round(chunked_upload, "chunked upload"),
                   {"max": 50}, better="lower")

        # A whole image with a real client: skopeo push (oci: layout -> registry) and pull.
        image_layer = (64 << 20) if not smoke else (1 << 20)
        def skopeo_seconds(*args):
            started = time.monotonic()
            sh("skopeo", "copy", "--quiet", *args)
            return time.monotonic() - started

        image_dir, pushed = f"{work}/image", {}
        def skopeo_push(system):
            if system == "static":
                return None
            if system == "berth":  # a new image each round, so no blob is already there
                shutil.rmtree(image_dir, ignore_errors=True)
                make_image(image_dir, image_layer, rng)
            pushed[system] = f"127.0.0.1:{systems.ports[system]}/bench/skopeo{random.randrange(1 << 30)}:v1"
            return skopeo_seconds("--dest-tls-verify=false", f"oci:{image_dir}:v1", f"docker://{pushed[system]}")
        def skopeo_pull(system):
            if system == "static":
                return None
            target = f"{work}/pulled"
            shutil.rmtree(target, ignore_errors=True)
            seconds_taken = skopeo_seconds("--src-tls-verify=false", f"docker://{pushed[system]}", f"oci:{target}:v1")
            missing = set(os.listdir(f"{image_dir}/blobs/sha256")) - set(os.listdir(f"{target}/blobs/sha256"))
            assert not missing, f"skopeo pull from {system}: blobs differ from the pushed image: {sorted(missing)}"
            shutil.rmtree(target, ignore_errors=True)
            return seconds_taken
        registries = [name for name in systems.names if name != "static"]
        push_samples, pull_samples = {name: [] for name in registries}, {name: [] for name in registries}
        sampler.take_peak()
        for _ in range(rounds):
            for system in registries:
                push_samples[system].append(skopeo_push(system))
            for system in registries:
                pull_samples[system].append(skopeo_pull(system))
        peaks["skopeo push and pull"] = (sampler.take_peak(), systems.rss_kib())
        layer_text = f"3 × {image_layer >> 20} MiB image"
        report.add(f"skopeo push, {layer_text}", "s", push_samples, better="lower")
        report.add(f"skopeo pull, {layer_text}", "s", pull_samples, better="lower")

        mirror_note = mirror.mirror_section(systems, report, work, options.berth, rounds, seconds, smoke, rng)

        # Soak: RSS after many requests.
        soak_requests = 0
        soak_start = systems.rss_kib()
        deadline = time.time() + (2 if smoke else 30)
        while time.time() < deadline and soak_requests < 100_000:
            r = wrk(f"{systems.url('berth')}/v2/bench/app/manifests/v1", 2 if smoke else 5, 32, "GET")
            soak_requests += r["requests"]
        rss["after soak"] = systems.rss_kib()
        peaks["soak"] = (sampler.take_peak(), rss["after soak"])
        if options.baseline:
            baseline_rss["after the run"] = systems.rss_kib("baseline")

        hashes_ok = all(errors == 0 for system, errors, _ in upload_errors if system != "static")
        summary = [
            f"single-core SHA-256 (openssl speed): {sha_mib:.0f} MiB/s; dd {mono >> 20} MiB conv=fsync: {dd_buffered:.0f} MiB/s;"
            f" 0.8 × the slower = {mono_floor:.0f} MiB/s (the monolithic PUT's \"min\" target). dd with oflag=direct"
            f" (how Berth writes uploads): {dd_direct:.0f} MiB/s",
            f"large uploads use curl {UPLOAD_PROTOCOL}; the monolithic PUT's static column is the same PUT to nginx"
            " reading and dropping the body (TLS and client alone)",
            "upload errors (non-2xx): " + ", ".join(f"{s}={e}" + (f" [{seen}]" if seen else "") for s, e, seen in upload_errors),
            f"worker RSS (KiB), peak during / after each figure: idle {rss['idle']}; "
            + "; ".join(f"{label} {peak} / {after}" for label, (peak, after) in peaks.items())
            + f"; highest {max(peak for peak, _ in peaks.values())} (target ≤ 30720)",
            f"token endpoint: {tokens_issued} tokens issued from a cached credential (Basic, one keep-alive TLS"
            f" connection) cost {token_ms:.3f} ms of worker CPU each (target < 1 ms); authenticating worker RSS"
            f" after the authenticated figures and the tokens: {auth_rss} KiB (target ≤ 30720)",
            f"RSS flat after many requests: soak of {soak_requests} manifest GETs, {soak_start} -> {rss['after soak']} KiB",
            "manifest latency p50/p99 (µs) per run: " + "; ".join(
                f"{m} {s}: " + " ".join(f"{p50}/{p99}" for p50, p99 in v) for (m, s), v in sorted(latencies.items())),
            f"/metrics scrape: {len(new_repos)} repositories added by monolithic POST; " + "; ".join(
                f"{s}: berth_repositories {v.get('repositories', '?')}, {v['non2xx']} non-2xx" for s, v in metrics_seen.items()),
            mirror_note,
        ]
        def percent(value):
            return "–" if value is None else f"{value * 100:.1f}%"
        spread_systems = "Berth / Berth before" if options.baseline else "Berth"
        summary.append(f"relative spread (max−min)/median over the {rounds} round(s), {spread_systems}: "
                       + ("none with one round" if rounds < 2 else "; ".join(
                           f"{figure} " + " / ".join(percent(v) for v in values.values())
                           for figure, values in report.spreads())))
        if options.baseline:
            summary.append(f"baseline worker ({options.baseline}) RSS (KiB), not sampled during the figures: idle "
                           f"{baseline_rss['idle']}, after the run {baseline_rss['after the run']}")
            worse = report.worse_than_before()
            summary.append("worse than before by more than the run's own noise (Berth / before below 1 − the larger "
                           "relative spread of the two): "
                           + ("not judged with one round" if rounds < 2 else "; ".join(
                               f"{figure} {r:.2f}× (spread {noise * 100:.1f}%)" for figure, r, noise in worse) or "none"))
        write_report(report, summary, platform.node(), options, rounds, seconds, systems, smoke)
        if not hashes_ok:
            raise SystemExit("bench: uploads had errors")
    finally:
        sampler.stop()
        systems.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
