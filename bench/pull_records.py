#!/usr/bin/env python3
"""The cost of recording pulls (record_pulls, for retention and mirror eviction): manifest
GET by tag on two `berth serve` over one store, one recording (the default) and one with
record_pulls = false, each behind its own nginx rendered from the same site, alternated
round after round. Target: recording on >= 0.95 x off.

    python3 bench/pull_records.py --berth BIN [--rounds 5] [--seconds 5]

bench.py runs the same figure (`figure`) in its full run.
"""
import argparse, json, os, shutil, statistics, tempfile

import bench

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


class RecordingOff:
    """A second `berth serve` on `store` with record_pulls = false, behind its own nginx."""

    def __init__(self, systems, work, berth_bin):
        socket_path = f"{work}/norecord.sock"
        self.process = systems.start([berth_bin, "serve", "--store", systems.store, "--socket", socket_path],
                                     "berth-norecord.log", {"MALLOC_ARENA_MAX": "2", "BERTH_RECORD_PULLS": "false"})
        systems.wait(lambda: os.path.exists(socket_path), "non-recording berth socket")
        port, prefix = bench.free_port(), f"{work}/nginx-norecord"
        bench.sh(f"{bench.REPO}/scripts/nginx-conf", prefix, "--port", str(port), "--store", systems.store,
                 "--socket", socket_path, "--cert", systems.cert, "--key", systems.key, "--user", "root", "--workers", "2")
        systems.start(["nginx", "-p", prefix, "-c", f"{prefix}/nginx.conf", "-g", "daemon off;"], "nginx-norecord.log")
        systems.wait(lambda: systems.port_open(port), f"nginx on {port}")
        self.base = f"https://127.0.0.1:{port}"


def cpu_seconds(pid):
    """User + system CPU of a `berth serve` and its worker processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(child) for child in f.read().split()]
        except OSError:
            continue
    total = 0
    for each in pids:
        try:
            with open(f"/proc/{each}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def figure(systems, off, rounds, seconds, repository="bench/app", tag="v1", cpu=None):
    """Samples (req/s) of manifest GET by tag, 32 connections: {"on": [...], "off": [...]};
    with a `cpu` dict, also the worker CPU per request (µs) of each run into it."""
    urls = {"on": f"{systems.url('berth')}/v2/{repository}/manifests/{tag}",
            "off": f"{off.base}/v2/{repository}/manifests/{tag}"}
    pids = {"on": systems.workers["berth"].pid, "off": off.process.pid}
    samples = {"on": [], "off": []}
    for round_number in range(rounds):
        # Alternate which goes first, so neither always gets the warmer machine.
        order = ("on", "off") if round_number % 2 == 0 else ("off", "on")
        for variant in order:
            before = cpu_seconds(pids[variant])
            r = bench.wrk(urls[variant], seconds, 32, "GET", extra=[f"Accept: {ACCEPT}"])
            used = cpu_seconds(pids[variant]) - before
            samples[variant].append(r["requests"] / r["seconds"] if r["errors"]["status"] == 0 else 0.0)
            if cpu is not None and r["requests"]:
                cpu.setdefault(variant, []).append(used / r["requests"] * 1e6)
    return samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--berth", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="berth-bench-pulls-")
    systems = bench.Systems(work, options.berth)
    try:
        config = f"{work}/config.json"
        with open(config, "w") as f:
            f.write("{}")
        digest = bench.sha256_hex(b"{}")
        base = systems.url("berth")
        bench.push_blob(base, "bench/app", config, digest)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": ACCEPT,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": f"sha256:{digest}", "size": 2}, "layers": []}).encode()
        path = f"{work}/manifest.json"
        with open(path, "wb") as f:
            f.write(manifest)
        bench.put_manifest(base, "bench/app", "v1", path)
        off = RecordingOff(systems, work, options.berth)
        cpu = {}
        samples = figure(systems, off, options.rounds, options.seconds, cpu=cpu)
        on, off_median = statistics.median(samples["on"]), statistics.median(samples["off"])
        print(f"manifest GET by tag, 32 connections, {options.rounds} rounds x {options.seconds} s:")
        print(f"  record_pulls on : median {on:.0f} req/s ({', '.join(f'{v:.0f}' for v in samples['on'])})")
        print(f"  record_pulls off: median {off_median:.0f} req/s ({', '.join(f'{v:.0f}' for v in samples['off'])})")
        print(f"  on / off = {on / off_median:.3f} (target >= 0.95)")
        cpu_on, cpu_off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        print(f"  worker CPU per request: on {cpu_on:.1f} µs, off {cpu_off:.1f} µs (on / off = {cpu_on / cpu_off:.3f})")
        segments = os.listdir(f"{systems.store}/_berth/pulls") if os.path.isdir(f"{systems.store}/_berth/pulls") else []
        print(f"  pull record segments written meanwhile: {len(segments)}")
    finally:
        systems.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
