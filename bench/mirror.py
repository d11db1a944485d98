"""bench.py's mirror section: a Berth mirroring the bench's own Berth (the upstream, on
loopback with TLS behind its nginx), measured against hosted repositories of the same
mirror worker and against pulling from the upstream directly, in the same rounds.

- manifest HEAD by tag, cached and within tag_ttl, through the mirror vs hosted (≥ 0.9×);
- first pull (skopeo) of a 3-layer image through the mirror vs directly from the upstream
  (≤ 1.3×); each round pulls a repository the mirror has never seen; with the CPU each
  process group spent on it (the machine's two cores are shared by all of them); then the
  same pulls with the mirror pinned to a core of its own (client and upstream on the other);
- time to first byte (curl) of an uncached blob through the mirror vs the upstream's own
  (≤ 2×), on a repository the mirror has never seen each round.
"""
import os, shutil, statistics, time


def mirror_section(systems, report, work, berth_bin, rounds, seconds, smoke, rng):
    # bench.py is __main__ when it runs; its helpers are imported here, when the section runs.
    from bench import REPO, ab_head, curl, free_port, make_image, push_blob, put_manifest, sh, sha256_hex, write_random
    from cluster import CPU, pin

    upstream = systems.url("berth")
    config = f"{work}/mirror.conf"
    with open(config, "w") as f:
        f.write(f"mirror.up.upstream = {upstream}\nmirror.up.ca_file = {systems.cert}\nmirror.up.tag_ttl = 3600\n")
    socket_path = f"{work}/mirror.sock"
    systems.start([berth_bin, "serve", "--store", f"{work}/store-mirror", "--socket", socket_path, "--config", config],
                  "berth-mirror.log", {"MALLOC_ARENA_MAX": "2"})
    systems.wait(lambda: os.path.exists(socket_path), "mirroring berth socket")
    port, prefix = free_port(), f"{work}/nginx-mirror"
    sh(f"{REPO}/scripts/nginx-conf", prefix, "--port", str(port), "--store", f"{work}/store-mirror",
       "--socket", socket_path, "--cert", systems.cert, "--key", systems.key, "--user", "root", "--workers", "2")
    mirror_berth = systems.procs[-1]
    mirror_nginx = systems.start(["nginx", "-p", prefix, "-c", f"{prefix}/nginx.conf", "-g", "daemon off;"], "nginx-mirror.log")
    systems.wait(lambda: systems.port_open(port), f"nginx on {port}")
    mirror = f"https://127.0.0.1:{port}"
    mirror_host, upstream_host = f"127.0.0.1:{port}", upstream.split("//", 1)[1]

    # Manifest HEAD: one small image, hosted in the mirror's worker and mirrored from the upstream.
    blobs = {}
    for name, data in (("config", b"{}"), ("layer", rng.randbytes(4096))):
        path = f"{work}/mirror-{name}.bin"
        with open(path, "wb") as f:
            f.write(data)
        blobs[name] = (path, sha256_hex(data), len(data))
    manifest_path = f"{work}/mirror-manifest.json"
    with open(manifest_path, "w") as f:
        f.write('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{blobs["config"][1]}","size":2}},'
                f'"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{blobs["layer"][1]}","size":4096}}]}}')
    for base, repo in ((upstream, "bench/mirrored"), (mirror, "bench/hosted")):
        for path, digest, _ in blobs.values():
            push_blob(base, repo, path, digest)
        put_manifest(base, repo, "v1", manifest_path)
    accept = "application/vnd.oci.image.manifest.v1+json"
    # The first GET fetches and stores the tag; from then on it is current for tag_ttl.
    code, _, _ = curl("-H", f"Accept: {accept}", f"{mirror}/v2/up/bench/mirrored/manifests/v1")
    assert code == 200, f"manifest through the mirror: {code}"
    urls = {"hosted": f"{mirror}/v2/bench/hosted/manifests/v1", "mirrored": f"{mirror}/v2/up/bench/mirrored/manifests/v1"}
    head = {"hosted": [], "mirrored": []}
    for _ in range(rounds):
        for kind, url in urls.items():
            r = ab_head(url, seconds, 32, accept)
            head[kind].append(r["rate"] if r["failed"] == 0 and r["non2xx"] == 0 else 0.0)
    hosted = statistics.median(head["hosted"])
    report.add("mirror: manifest HEAD by tag, hosted repository of the mirror's worker, 32 connections (same rounds)",
               "req/s", {"berth": head["hosted"]})
    report.add("mirror: manifest HEAD by tag, cached within tag_ttl, 32 connections", "req/s", {"berth": head["mirrored"]},
               {"min": round(0.9 * hosted)})

    # First pull of a 3-layer image: each round a repository new to the mirror (the same
    # blobs upstream, pushed there again under another name).
    layer = (64 << 20) if not smoke else (1 << 20)
    image = f"{work}/mirror-image"
    make_image(image, layer, rng)
    def skopeo_seconds(*args, client=()):
        started = time.monotonic()
        sh(*client, "skopeo", "copy", "--quiet", *args)
        return time.monotonic() - started
    upstream_nginx = next(proc for proc in systems.procs if proc.args[0] == "nginx")
    groups = {"mirror worker": [mirror_berth.pid], "mirror nginx": [mirror_nginx.pid],
              "upstream worker": [systems.workers["berth"].pid], "upstream nginx": [upstream_nginx.pid]}
    cpu = CPU(groups)
    def first_pulls(names, client=()):
        """Each round pushes the image upstream under a new name, then pulls it through the
        mirror and directly (alternating which goes first): seconds and CPU per pull."""
        pulls, spent = {"direct": [], "mirror": []}, {"direct": [], "mirror": []}
        for index, repo in enumerate(names):
            skopeo_seconds("--dest-tls-verify=false", f"oci:{image}:v1", f"docker://{upstream_host}/{repo}:v1")
            sources = {"direct": f"docker://{upstream_host}/{repo}:v1", "mirror": f"docker://{mirror_host}/up/{repo}:v1"}
            for kind in (("mirror", "direct") if index % 2 == 0 else ("direct", "mirror")):
                target = f"{work}/mirror-pulled"
                shutil.rmtree(target, ignore_errors=True)
                os.sync()
                cpu.start()
                pulls[kind].append(skopeo_seconds("--src-tls-verify=false", sources[kind], f"oci:{target}:v1", client=client))
                spent[kind].append(cpu.stop()[0])
                missing = set(os.listdir(f"{image}/blobs/sha256")) - set(os.listdir(f"{target}/blobs/sha256"))
                assert not missing, f"skopeo pull ({kind}): blobs differ from the pushed image: {sorted(missing)}"
        shutil.rmtree(f"{work}/mirror-pulled", ignore_errors=True)
        return pulls, spent
    pulls, spent = first_pulls([f"bench/pull{index}" for index in range(rounds)])
    direct = statistics.median(pulls["direct"])
    report.add(f"mirror: skopeo pull of 3 × {layer >> 20} MiB from the upstream directly (same rounds)", "s",
               {"berth": pulls["direct"]}, better="lower")
    report.add(f"mirror: first skopeo pull of 3 × {layer >> 20} MiB through the mirror", "s", {"berth": pulls["mirror"]},
               {"max": round(1.3 * direct, 3)}, better="lower")

    # The same pulls with the mirror on a core of its own: nginx and worker of the mirror
    # on CPU 1; skopeo, the upstream's nginx and worker on CPU 0. On two shared cores the
    # mirror's own work (hashing, writing, a second TLS hop) competes with the client and
    # the upstream for the same cores; here it does not, as on a real mirror host.
    pinned_note = ""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        everything = set(range(os.cpu_count() or 1))
        mirror_side, rest = [mirror_berth.pid, mirror_nginx.pid], [systems.workers["berth"].pid, upstream_nginx.pid]
        pin(mirror_side, {1})
        pin(rest, {0})
        try:
            pinned, _ = first_pulls([f"bench/pinned{index}" for index in range(rounds)], client=("taskset", "-c", "0"))
        finally:
            pin(mirror_side + rest, everything)
        pinned_direct = statistics.median(pinned["direct"])
        report.add(f"mirror: skopeo pull of 3 × {layer >> 20} MiB from the upstream directly, client and upstream on CPU 0"
                   " (same rounds)", "s", {"berth": pinned["direct"]}, better="lower")
        report.add(f"mirror: first skopeo pull of 3 × {layer >> 20} MiB through the mirror, the mirror on CPU 1 of its own",
                   "s", {"berth": pinned["mirror"]}, {"max": round(1.3 * pinned_direct, 3)}, better="lower")
        pinned_note = (f" Pinned series: {statistics.median(pinned['mirror']) / pinned_direct:.2f}× direct"
                       " (mirror on its own core).")

    def cpu_note(kind):
        groups = [name for name in spent[kind][0] if statistics.median(sample[name] for sample in spent[kind]) >= 0.005]
        return ", ".join(f"{name.replace('load generator (ab / wrk / curl)', 'skopeo')} "
                         f"{statistics.median(sample[name] for sample in spent[kind]):.2f}" for name in groups)
    cpu_summary = (f"CPU seconds per first pull (medians): through the mirror: {cpu_note('mirror')};"
                   f" directly: {cpu_note('direct')}")

    # Time to first byte of an uncached blob: mounted upstream into a new repository each round.
    size = (256 << 20) if not smoke else (1 << 20)
    blob_path = f"{work}/mirror-ttfb.bin"
    write_random(blob_path, size, rng)
    digest = sh("sha256sum", blob_path).stdout.split()[0]
    push_blob(upstream, "bench/ttfb", blob_path, digest)
    os.remove(blob_path)
    def first_byte(url):
        result = sh("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
                    url, check=False)
        code, starttransfer, total, downloaded = result.stdout.split()
        assert code == "200" and int(downloaded) == size, f"GET {url}: {code}, {downloaded} bytes"
        return float(starttransfer) * 1000, float(total)
    ttfb, totals = {"upstream": [], "mirror": []}, {"upstream": [], "mirror": []}
    for index in range(rounds):
        repo = f"bench/ttfb{index}"
        code, _, _ = curl("-X", "POST", f"{upstream}/v2/{repo}/blobs/uploads/?mount=sha256:{digest}&from=bench/ttfb")
        assert code == 201, f"mount upstream: {code}"
        urls = {"upstream": f"{upstream}/v2/{repo}/blobs/sha256:{digest}", "mirror": f"{mirror}/v2/up/{repo}/blobs/sha256:{digest}"}
        for kind in (("mirror", "upstream") if index % 2 == 0 else ("upstream", "mirror")):
            os.sync()
            first, total = first_byte(urls[kind])
            ttfb[kind].append(first)
            totals[kind].append(total)
    own = statistics.median(ttfb["upstream"])
    report.add(f"mirror: time to first byte of a {size >> 20} MiB blob from the upstream itself (same rounds)", "ms",
               {"berth": ttfb["upstream"]}, better="lower")
    report.add(f"mirror: time to first byte of an uncached {size >> 20} MiB blob through the mirror", "ms",
               {"berth": ttfb["mirror"]}, {"max": round(2 * own, 2)}, better="lower")
    return (f"mirror: a second berth serve (2 workers, its own nginx) mirrors the bench's Berth over TLS (tag_ttl 3600);"
            f" whole {size >> 20} MiB GET through the mirror (uncached) took {statistics.median(totals['mirror']):.2f} s"
            f" vs {statistics.median(totals['upstream']):.2f} s from the upstream (medians). {cpu_summary}.{pinned_note}")
