-- wrk script for the read figures: every connection repeats one request.
--   wrk ... URL -- METHOD ["Header: value" ...]
-- At the end it prints one line "BENCHJSON {...}" (requests, bytes, duration, errors,
-- latency percentiles in microseconds) that bench/bench.py parses.

function init(args)
    wrk.method = args[1] or "GET"
    for i = 2, #args do
        local name, value = args[i]:match("^([^:]+):%s*(.*)$")
        if name then wrk.headers[name] = value end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"bytes":%d,"duration_us":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
        summary.requests, summary.bytes, summary.duration,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean))
end
