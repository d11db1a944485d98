-- wrk script for complete small uploads: POST /v2/<repo>/blobs/uploads/, then PUT the
-- Location of that answer with ?digest= and the blob as body; repeat with the next blob.
-- Run with as many threads as connections (-t N -c N): a wrk thread's Lua state then
-- belongs to exactly one connection, so the POST -> PUT sequence is per connection.
--   wrk -t16 -c16 ... URL -- REPO DIGEST_DIR TAG SIZE [READ_PATH ...]
-- Blob i of thread t is the string "<TAG>-<t>-<i>|" repeated and cut to SIZE bytes;
-- DIGEST_DIR/<t>.txt lists their sha256 hex digests, one a line (bench.py writes them).
-- With READ_PATHs (the soak), each upload is followed by a GET (or "HEAD <path>") of
-- each; once a thread has used all its blobs it keeps doing the reads alone.
-- Prints "BENCHJSON {...}" with completed uploads, requests and errors (any status
-- other than the expected one: 202 for POST, 201 for PUT, 2xx for reads).

local counter = 0
local threads = {}

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    repo = args[1]
    tag = args[3]
    size = tonumber(args[4])
    digests = {}
    for line in io.lines(args[2] .. "/" .. id .. ".txt") do digests[#digests + 1] = line end
    reads = {}
    for i = 5, #args do
        local method, path = args[i]:match("^(%u+) (.*)$")
        if not method then method, path = "GET", args[i] end
        reads[#reads + 1] = { method = method, path = path }
    end
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " ..
        "application/vnd.docker.distribution.manifest.v2+json"
    uploads, errors, statuses, exhausted = 0, 0, "", 0
    next_blob = 1
    step = "post"      -- "post", "put", or a read index
    location = nil
end

local function blob(i)
    local unit = string.format("%s-%d-%d|", tag, id, i)
    return string.rep(unit, math.ceil(size / #unit)):sub(1, size)
end

function request()
    if step == "post" then
        return wrk.format("POST", "/v2/" .. repo .. "/blobs/uploads/", {}, "")
    elseif step == "put" then
        local sep = location:find("?", 1, true) and "&" or "?"
        return wrk.format("PUT", location .. sep .. "digest=sha256:" .. digests[next_blob],
            { ["Content-Type"] = "application/octet-stream" }, blob(next_blob))
    else
        local r = reads[step]
        return wrk.format(r.method, r.path, { ["Accept"] = accept }, nil)
    end
end

local function header(headers, wanted)
    for name, value in pairs(headers) do
        if name:lower() == wanted then return value end
    end
    return nil
end

local function note(status)
    errors = errors + 1
    if #statuses < 200 then statuses = statuses .. status .. " " end
end

local function after_upload()
    if #reads > 0 then step = 1 else step = "post" end
    if next_blob > #digests and #reads == 0 then
        exhausted = 1
        wrk.thread:stop()
    end
end

function response(status, headers, body)
    if step == "post" then
        local loc = status == 202 and header(headers, "location")
        if loc then
            location = loc:gsub("^https?://[^/]+", "")
            step = "put"
        else
            note(status)
        end
    elseif step == "put" then
        if status == 201 then uploads = uploads + 1 else note(status) end
        next_blob = next_blob + 1
        after_upload()
    else
        if status < 200 or status > 299 then note(status) end
        if step < #reads then
            step = step + 1
        elseif next_blob <= #digests then
            step = "post"
        else
            exhausted = 1
            step = 1
        end
    end
end

function done(summary, latency, requests)
    local total_uploads, total_errors, total_exhausted, seen = 0, 0, 0, ""
    for _, thread in ipairs(threads) do
        total_uploads = total_uploads + thread:get("uploads")
        total_errors = total_errors + thread:get("errors")
        total_exhausted = total_exhausted + thread:get("exhausted")
        seen = seen .. thread:get("statuses")
    end
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"bytes":%d,"duration_us":%d,"uploads":%d,"bad_status":%d,' ..
        '"exhausted_threads":%d,"bad_statuses":"%s",' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
        summary.requests, summary.bytes, summary.duration, total_uploads, total_errors,
        total_exhausted, seen,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean))
end
