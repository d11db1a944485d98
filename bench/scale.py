#!/usr/bin/env python3
"""Berth's costs as the store grows (issue 16): large repositories, many repositories,
many blobs, each figure next to a small one measured in the same run.

Stores are built with a fixed seed. Repository content that would take minutes through
the API (20,000 and 100,000 tags, 20,000 repositories, 200,000 blobs) is written directly
as OCI image layouts, as any OCI tool would write them (the layout is the contract);
then pushes through the API make Berth rewrite the indexes it serves. Each store is
served by its own `berth serve` behind nginx with TLS, as in production.

    bench/scale.py --berth BIN            full run (about 10 minutes), report in bench/results/<date>-scale.md
    bench/scale.py --berth BIN --smoke    every figure once, tiny and short; writes no report
"""
import argparse, datetime, hashlib, http.client, json, os, random, re, shutil, signal, socket, ssl
import statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import ab_head, free_port, sh, stop_processes, wrk  # noqa: E402  (small helpers shared with bench.py)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def canonical(value):
    """JSON as Berth writes it: sorted keys, no spaces, unescaped slashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Server:
    """One `berth serve` on `store`, fronted by nginx with TLS (scripts/nginx-conf)."""

    def __init__(self, work, berth_bin, store, nginx_workers=2, environment=None):
        self.work, self.store, self.procs = work, store, []
        tls = f"{work}/tls"
        os.makedirs(tls, exist_ok=True)
        self.cert, self.key = f"{tls}/cert.pem", f"{tls}/key.pem"
        if not os.path.exists(self.cert):
            sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
               "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", self.key, "-out", self.cert)
        name = os.path.basename(store)
        self.socket = f"{work}/{name}.sock"
        self.berth = self.start([berth_bin, "serve", "--store", store, "--socket", self.socket], f"{name}-berth.log",
                                dict({"MALLOC_ARENA_MAX": "2"}, **(environment or {})))
        self.wait(lambda: os.path.exists(self.socket), "berth socket")
        self.port = free_port()
        nginx = f"{work}/nginx-{name}"
        sh(f"{REPO}/scripts/nginx-conf", nginx, "--port", str(self.port), "--store", store, "--socket", self.socket,
           "--cert", self.cert, "--key", self.key, "--user", "root", "--workers", str(nginx_workers))
        self.start(["nginx", "-p", nginx, "-c", f"{nginx}/nginx.conf", "-g", "daemon off;"], f"{name}-nginx.log")
        self.wait(self.port_open, "nginx")
        self.base = f"https://127.0.0.1:{self.port}"

    def start(self, args, log, environment=None):
        out = open(f"{self.work}/{log}", "w")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **(environment or {})))
        self.procs.append(proc)
        return proc

    def port_open(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def wait(self, ready, what):
        for _ in range(200):
            if ready():
                return
            time.sleep(0.05)
        raise SystemExit(f"scale: {what} did not come up (logs in {self.work})")

    def connection(self):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=60)

    def stop(self):
        stop_processes(self.procs)


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    data = answer.read()
    return answer.status, data, answer


class StoreBuilder:
    """Writes OCI layouts straight into a store, with a seeded random generator."""

    def __init__(self, root, seed):
        self.root, self.rng = root, random.Random(seed)
        self.shared = f"{root}/_berth/blobs/sha256"
        for path in (self.shared, f"{root}/_berth/tmp", f"{root}/_berth/uploads", f"{root}/_berth/locks"):
            os.makedirs(path, exist_ok=True)

    def blob(self, repo, data):
        digest = sha256_hex(data)
        shared = f"{self.shared}/{digest}"
        if not os.path.exists(shared):
            with open(shared, "wb") as f:
                f.write(data)
        link = f"{self.root}/{repo}/blobs/sha256/{digest}"
        if not os.path.exists(link):
            os.link(shared, link)
        return {"digest": "sha256:" + digest, "size": len(data)}

    def repository(self, repo, layers, tags, image=None):
        """A layout with one image of `layers` random layers, tagged with every name in `tags`
        (with `image`, a name: the same image in every repository given that name)."""
        os.makedirs(f"{self.root}/{repo}/blobs/sha256", exist_ok=True)
        rng = random.Random(image) if image else self.rng
        config = self.blob(repo, canonical({"architecture": "amd64", "os": "linux", "repo": image or repo}))
        layer_descriptors = [dict(self.blob(repo, rng.randbytes(64)), mediaType="application/vnd.oci.image.layer.v1.tar")
                             for _ in range(layers)]
        manifest = canonical({"schemaVersion": 2, "mediaType": MANIFEST,
                              "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                              "layers": layer_descriptors})
        described = dict(self.blob(repo, manifest), mediaType=MANIFEST)
        entries = [dict(described, annotations={"org.opencontainers.image.ref.name": tag}) for tag in tags] or [described]
        with open(f"{self.root}/{repo}/index.json", "wb") as f:
            f.write(canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}))
        with open(f"{self.root}/{repo}/oci-layout", "wb") as f:
            f.write(b'{"imageLayoutVersion":"1.0.0"}')
        # The repository's lock file, as Berth leaves it after the first push.
        os.makedirs(f"{self.root}/_berth/locks/{repo}", exist_ok=True)
        open(f"{self.root}/_berth/locks/{repo}/_lock", "a").close()
        return manifest

    def referrers(self, repo, subject, count):
        """`count` referrers of the manifest `subject` (bytes) in `repo`, as Berth's referrers
        index keeps them: a descriptor file per referrer in the subject's folder and its
        stamp. The referrer manifests themselves are not written (listings read only the index)."""
        folder = f"{self.root}/_berth/referrers/{repo}/_subject/sha256/{sha256_hex(subject)}"
        os.makedirs(folder, exist_ok=True)
        for number in range(count):
            body = canonical({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/vnd.bench.sig",
                              "referrer": number})
            digest = sha256_hex(body)
            with open(f"{folder}/sha256-{digest}.json", "wb") as f:
                f.write(canonical({"mediaType": MANIFEST, "digest": "sha256:" + digest, "size": len(body),
                                   "artifactType": "application/vnd.bench.sig"}))
        with open(f"{folder}/_stamp", "wb") as f:
            f.write(f"built-{count}".encode())
        return sorted(f"sha256:{name[7:-5]}" for name in os.listdir(folder) if name.endswith(".json"))


def write_and_fsync_seconds(directory, size, rounds):
    """What Berth's commit of an index of `size` bytes cannot beat: temp file, write,
    fsync, rename, directory fsync, in the store's filesystem."""
    data = os.urandom(size)
    samples = []
    for round_ in range(rounds):
        started = time.perf_counter()
        temp, final = f"{directory}/bench-{round_}.tmp", f"{directory}/bench-index.json"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(temp, final)
        dfd = os.open(directory, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        samples.append(time.perf_counter() - started)
    os.unlink(f"{directory}/bench-index.json")
    return samples


class Pusher(threading.Thread):
    """Pushes `manifest` to new tags of `repo` at `rate` per second until stopped."""

    def __init__(self, server, repo, manifest, rate, prefix):
        super().__init__(daemon=True)
        self.server, self.repo, self.manifest, self.rate, self.prefix = server, repo, manifest, rate, prefix
        self.stopped, self.pushed, self.failed = threading.Event(), 0, 0

    def run(self):
        conn = self.server.connection()
        next_time = time.monotonic()
        while not self.stopped.is_set():
            status, _, _ = request(conn, "PUT", f"/v2/{self.repo}/manifests/{self.prefix}-{self.pushed}", self.manifest,
                                   {"Content-Type": MANIFEST})
            if status == 201:
                self.pushed += 1
            else:
                self.failed += 1
            next_time += 1 / self.rate
            self.stopped.wait(max(0, next_time - time.monotonic()))


def push_throughput(server, repo, manifest, clients, seconds, prefix):
    """Tag pushes per second from `clients` connections, each pushing as fast as it can."""
    counts, failures = [0] * clients, [0] * clients
    deadline = time.monotonic() + seconds

    def client(number):
        conn = server.connection()
        while time.monotonic() < deadline:
            status, _, _ = request(conn, "PUT", f"/v2/{repo}/manifests/{prefix}-{number}-{counts[number]}", manifest,
                                   {"Content-Type": MANIFEST})
            if status == 201:
                counts[number] += 1
            else:
                failures[number] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(failures) == 0, f"{sum(failures)} pushes failed"
    return sum(counts) / (time.monotonic() - started)


def maintenance(berth, command, store):
    """Runs `berth gc|scrub` on `store`: seconds, peak RSS (KiB, the process's own VmHWM:
    wait4's ru_maxrss would count this Python process's memory at fork) and the phases."""
    started = time.perf_counter()
    proc = subprocess.Popen([berth, command, "--store", store], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    match = re.search(r"VmHWM:\s+(\d+)", f.read())
                if match and os.readlink(f"/proc/{proc.pid}/exe").endswith("berth"):
                    peak[0] = max(peak[0], int(match.group(1)))
            except OSError:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    proc.wait()
    sampler.join()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scale: berth {command} failed:\n{out}")
    phases = dict(re.findall(rf"{command} phase (\S+): ([\d.e-]+) s", out))
    return seconds, peak[0], {name: float(value) for name, value in phases.items()}, out.strip().splitlines()[-1]


class Table:
    def __init__(self):
        self.rows = []

    def add(self, figure, unit, value, reference=None, target=None, better="higher"):
        """`target`: the least (better="higher") or most (better="lower") value/reference allowed."""
        ratio = None
        if reference:
            ratio = value / reference
        met = ""
        if target is not None and ratio is not None:
            met = "yes" if (ratio >= target if better == "higher" else ratio <= target) else "no"
        self.rows.append((figure, unit, value, reference, ratio, target, better, met))
        print(f"  {figure}: {value:.4g} {unit}" + (f" (reference {reference:.4g}, ratio {ratio:.2f}, met {met or '-'})"
                                                     if reference else ""), flush=True)

    def markdown(self):
        lines = ["| figure | unit | value | reference | ratio | target | met |", "|---|---|---|---|---|---|---|"]
        for figure, unit, value, reference, ratio, target, better, met in self.rows:
            target_text = "" if target is None else f"{'≥' if better == 'higher' else '≤'} {target}×"
            lines.append(f"| {figure} | {unit} | {value:.4g} | {'' if reference is None else f'{reference:.4g}'} | "
                         f"{'' if ratio is None else f'{ratio:.2f}×'} | {target_text} | {met} |")
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--berth", required=True, help="the berth binary (a release build)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, every figure once; writes no report")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each load run")
    options = parser.parse_args()
    smoke = options.smoke
    seconds = 1 if smoke else options.seconds
    sizes = {"tags": 200 if smoke else 20_000, "tags_listing": 1000 if smoke else 100_000, "tags_listing_small": 100 if smoke else 1_000,
             "repos": 200 if smoke else 20_000, "repos_small": 20 if smoke else 1_000, "layers": 9,
             "referrers": 2000 if smoke else 10_000, "referrers_small": 300 if smoke else 1_000}
    work = tempfile.mkdtemp(prefix="berth-scale-")
    table, notes = Table(), []
    servers = []
    try:
        # Store "small": 1,000 repositories (10,000 blobs): the catalog and maintenance references.
        # Store "large": the same shape at 20,000 repositories (200,000 blobs), plus the big repositories.
        built = {}
        for name, repos, seed in (("small", sizes["repos_small"], 1601), ("large", sizes["repos"], 1602)):
            started = time.perf_counter()
            builder = StoreBuilder(f"{work}/{name}", seed)
            for number in range(repos):
                builder.repository(f"org{number % 50:02d}/app{number:05d}", sizes["layers"], ["v1"])
            os.system("sync")
            built[name] = time.perf_counter() - started
            built[f"builder-{name}"] = builder
            print(f"built store {name}: {repos} repositories in {built[name]:.1f} s", flush=True)

        # Maintenance first, on stores no server holds (times are the store's, not the load's).
        for name, blobs in (("small", sizes["repos_small"] * (sizes["layers"] + 2)), ("large", sizes["repos"] * (sizes["layers"] + 2))):
            for command in ("gc", "scrub"):
                wall, rss, phases, summary = maintenance(options.berth, command, f"{work}/{name}")
                notes.append(f"- `berth {command}` on store {name} ({blobs} blobs): {wall:.2f} s, peak RSS {rss / 1024:.1f} MiB; "
                             f"phases: {', '.join(f'{k} {v:.2f} s' for k, v in phases.items())}; `{summary}`")
                print(notes[-1], flush=True)
                built[f"{command}-{name}"] = (wall, rss)
        # The big repositories of the load figures, then maintenance again: memory follows
        # the largest repository (100,000 tags), not the number of repositories or blobs.
        builder = built["builder-large"]
        builder.repository("bench/ten", 2, [f"t{n:02d}" for n in range(10)], "bench")
        manifest = builder.repository("bench/tags", 2, [f"t{n:06d}" for n in range(sizes["tags"])], "bench")
        builder.repository("bench/list", 2, [f"l{n:06d}" for n in range(sizes["tags_listing"])], "bench")
        builder.repository("bench/list1k", 2, [f"l{n:06d}" for n in range(sizes["tags_listing_small"])], "bench")
        os.system("sync")
        for command in ("gc", "scrub"):
            wall, rss, phases, summary = maintenance(options.berth, command, f"{work}/large")
            notes.append(f"- `berth {command}` on store large plus repositories of {sizes['tags']:,} and {sizes['tags_listing']:,} tags: "
                         f"{wall:.2f} s, peak RSS {rss / 1024:.1f} MiB; phases: {', '.join(f'{k} {v:.2f} s' for k, v in phases.items())}")
            print(notes[-1], flush=True)
        many, few = f"{sizes['repos'] * 11:,}", f"{sizes['repos_small'] * 11:,}"
        for command in ("gc", "scrub"):
            table.add(f"`berth {command}` time per blob, {many} blobs vs {few}", "µs/blob",
                      built[f"{command}-large"][0] / (sizes["repos"] * 11) * 1e6,
                      built[f"{command}-small"][0] / (sizes["repos_small"] * 11) * 1e6, target=1.5, better="lower")
            table.add(f"`berth {command}` peak RSS, {many} blobs vs {few}", "MiB", built[f"{command}-large"][1] / 1024,
                      built[f"{command}-small"][1] / 1024, target=1.5, better="lower")

        # Subjects with many and with few referrers (after maintenance: their referrer
        # manifests are not written, only the referrers index).
        subject_many = builder.repository("bench/refs", 2, ["subject"], "bench-refs-many")
        subject_few = builder.repository("bench/refs-few", 2, ["subject"], "bench-refs-few")
        referrers_many = builder.referrers("bench/refs", subject_many, sizes["referrers"])
        referrers_few = builder.referrers("bench/refs-few", subject_few, sizes["referrers_small"])
        os.system("sync")

        small = Server(work, options.berth, f"{work}/small")
        servers.append(small)
        conn = small.connection()
        catalog_small_last = f"org25/app{sizes['repos_small'] // 2:05d}"
        request(conn, "GET", "/v2/_catalog?n=1")
        catalog_small = wrk(f"{small.base}/v2/_catalog?n=100&last={catalog_small_last}", seconds, 16)
        small.stop()
        servers.remove(small)

        large = Server(work, options.berth, f"{work}/large")
        servers.append(large)
        conn = large.connection()
        # One push through the API into each big repository: from here on Berth's own commits write them.
        for repo in ("bench/ten", "bench/tags", "bench/list", "bench/list1k"):
            status, _, _ = request(conn, "PUT", f"/v2/{repo}/manifests/api-0", manifest, {"Content-Type": MANIFEST})
            assert status == 201, f"{repo}: {status}"
        index_size = os.path.getsize(f"{work}/large/bench/tags/index.json")

        def head_and_get(repo, tag, label):
            head = ab_head(f"{large.base}/v2/{repo}/manifests/{tag}", seconds, 16, MANIFEST)
            get = wrk(f"{large.base}/v2/{repo}/manifests/{tag}", seconds, 16)
            assert head["non2xx"] == 0 and get["errors"]["status"] == 0, f"{label}: errors"
            return head["rate"], get["requests"] / get["seconds"]

        small_head, small_get = head_and_get("bench/ten", "t05", "10 tags")
        middle = f"t{sizes['tags'] // 2:06d}"
        big_head, big_get = head_and_get("bench/tags", middle, "big repository")
        pusher = Pusher(large, "bench/tags", manifest, 5, "ci")
        pusher.start()
        busy_head, busy_get = head_and_get("bench/tags", middle, "big repository, pushes")
        pusher.stopped.set()
        pusher.join()
        assert pusher.failed == 0, "pushes failed during reads"
        n = f"{sizes['tags']:,}"
        table.add(f"manifest HEAD by tag, {n} tags at rest vs 10 tags", "req/s", big_head, small_head, 0.8)
        table.add(f"manifest GET by tag, {n} tags at rest vs 10 tags", "req/s", big_get, small_get, 0.8)
        table.add(f"manifest HEAD by tag, {n} tags, 5 pushes/s vs 10 tags at rest", "req/s", busy_head, small_head, 0.8)
        table.add(f"manifest GET by tag, {n} tags, 5 pushes/s vs 10 tags at rest", "req/s", busy_get, small_get, 0.8)
        notes.append(f"- pushes during the busy reads: {pusher.pushed} acknowledged, 0 failed")

        # Manifest PUT at 20,000 tags, sequential, one connection; against write+fsync of that size.
        rounds = 5 if smoke else 30
        puts = []
        for number in range(rounds):
            started = time.perf_counter()
            status, _, _ = request(conn, "PUT", f"/v2/bench/tags/manifests/put-{number}", manifest, {"Content-Type": MANIFEST})
            puts.append(time.perf_counter() - started)
            assert status == 201
        index_size = os.path.getsize(f"{work}/large/bench/tags/index.json")
        fsync = write_and_fsync_seconds(f"{work}/large/_berth/tmp", index_size, rounds)
        table.add(f"manifest PUT (new tag) at {n} tags vs write+fsync of its {index_size / 1e6:.2f} MB index.json", "ms",
                  statistics.median(puts) * 1000, statistics.median(fsync) * 1000, 2, better="lower")
        small_puts = []
        for number in range(rounds):
            started = time.perf_counter()
            request(conn, "PUT", f"/v2/bench/ten/manifests/put-{number}", manifest, {"Content-Type": MANIFEST})
            small_puts.append(time.perf_counter() - started)
        notes.append(f"- manifest PUT into the 10-tag repository: median {statistics.median(small_puts) * 1000:.2f} ms")

        one = push_throughput(large, "bench/tags", manifest, 1, max(seconds, 3), "one")
        sixteen = push_throughput(large, "bench/tags", manifest, 16, max(seconds, 3), "many")
        table.add(f"tag pushes into one repository ({n}+ tags), 16 clients vs 1", "pushes/s", sixteen, one)

        # Listings: a page from the middle (n=100, last=...).
        listing_small = wrk(f"{large.base}/v2/bench/list1k/tags/list?n=100&last=l{sizes['tags_listing_small'] // 2:06d}", seconds, 16)
        listing_big = wrk(f"{large.base}/v2/bench/list/tags/list?n=100&last=l{sizes['tags_listing'] // 2:06d}", seconds, 16)
        table.add(f"tags list page (n=100) at {sizes['tags_listing']:,} tags vs {sizes['tags_listing_small']:,}", "req/s",
                  listing_big["requests"] / listing_big["seconds"], listing_small["requests"] / listing_small["seconds"], 0.5)
        request(conn, "GET", "/v2/_catalog?n=1")
        catalog_last = f"org25/app{sizes['repos'] // 2:05d}"
        catalog_big = wrk(f"{large.base}/v2/_catalog?n=100&last={catalog_last}", seconds, 16)
        table.add(f"catalog page (n=100) at {sizes['repos']:,} repositories vs {sizes['repos_small']:,}", "req/s",
                  catalog_big["requests"] / catalog_big["seconds"], catalog_small["requests"] / catalog_small["seconds"], 0.5)
        # A repository created through the API, then the next catalog page: no walk of the store.
        after_create = []
        for number in range(5 if smoke else 20):
            status, _, _ = request(conn, "POST", f"/v2/new/r{number:02d}/blobs/uploads/?digest=sha256:{sha256_hex(b'{}')}", b"{}",
                                   {"Content-Type": "application/octet-stream"})
            assert status == 201
            started = time.perf_counter()
            status, body, _ = request(conn, "GET", f"/v2/_catalog?n=100&last=new/r{number - 1:02d}" if number else "/v2/_catalog?n=100&last=new")
            after_create.append(time.perf_counter() - started)
            assert status == 200 and f"new/r{number:02d}".encode() in body
        notes.append(f"- first catalog page after creating a repository at {sizes['repos']:,} repositories: median "
                     f"{statistics.median(after_create) * 1000:.2f} ms (max {max(after_create) * 1000:.2f} ms)")
        # Referrers: a page from the middle, and the first page after a new referrer arrives.
        def referrers_page(repo, subject, listed):
            url = f"{large.base}/v2/{repo}/referrers/sha256:{sha256_hex(subject)}?n=100&last={listed[len(listed) // 2]}"
            request(conn, "GET", url[len(large.base):])
            result = wrk(url, seconds, 16)
            assert result["errors"]["status"] == 0, f"{repo}: referrers errors"
            return result["requests"] / result["seconds"]
        table.add(f"referrers page (n=100) of a subject with {sizes['referrers']:,} referrers vs {sizes['referrers_small']:,}",
                  "req/s", referrers_page("bench/refs", subject_many, referrers_many),
                  referrers_page("bench/refs-few", subject_few, referrers_few), 0.5)
        empty = b"{}"
        after_referrer = {}
        for repo, subject in (("bench/refs", subject_many), ("bench/refs-few", subject_few)):
            status, _, _ = request(conn, "POST", f"/v2/{repo}/blobs/uploads/?digest=sha256:{sha256_hex(empty)}", empty,
                                   {"Content-Type": "application/octet-stream"})
            assert status == 201, f"{repo}: empty blob {status}"
            times = []
            for number in range(5 if smoke else 20):
                body = canonical({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/vnd.bench.new",
                                  "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                             "digest": f"sha256:{sha256_hex(empty)}", "size": 2},
                                  "layers": [{"mediaType": "application/vnd.oci.empty.v1+json",
                                              "digest": f"sha256:{sha256_hex(empty)}", "size": 2}],
                                  "subject": {"mediaType": MANIFEST, "digest": f"sha256:{sha256_hex(subject)}", "size": len(subject)},
                                  "annotations": {"n": str(number)}})
                status, _, _ = request(conn, "PUT", f"/v2/{repo}/manifests/sha256:{sha256_hex(body)}", body, {"Content-Type": MANIFEST})
                assert status == 201, f"{repo}: referrer push {status}"
                started = time.perf_counter()
                status, answer, _ = request(conn, "GET", f"/v2/{repo}/referrers/sha256:{sha256_hex(subject)}?n=100")
                times.append(time.perf_counter() - started)
                assert status == 200
            after_referrer[repo] = statistics.median(times)
        notes.append(f"- first referrers page after a new referrer: median {after_referrer['bench/refs'] * 1000:.2f} ms at "
                     f"{sizes['referrers']:,} referrers, {after_referrer['bench/refs-few'] * 1000:.2f} ms at {sizes['referrers_small']:,}")
        notes.append(f"- stores built directly as layouts: small {built['small']:.0f} s, large {built['large']:.0f} s")

        if not smoke:
            date = datetime.date.today().isoformat()
            path = f"{HERE}/results/{date}-scale.md"
            with open(path, "w") as f:
                f.write(f"# Scale bench, {date}\n\n`bench/scale.py --berth <release berth>` (seconds per load run: {seconds}; "
                        f"16 connections through nginx TLS; 2 shared cores).\n\n{table.markdown()}\n\n" + "\n".join(notes) + "\n")
            print(f"report: {path}")
        else:
            print(table.markdown())
            print("\n".join(notes))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
