-- wrk script of `steward bench http --load wrk` and `scripts/bench-wrk`: GET one random customer
-- per request, ids from a file, and one summary line at the end that the benchmark reads.
--
--   wrk -t2 -c32 -d10s -s scripts/bench-wrk.lua http://HOST:PORT -- IDS_FILE PREFIX SUFFIX [TOKEN_FILE]
--
-- e.g. PREFIX /v1/customers/  SUFFIX ?purpose=service  TOKEN_FILE a file holding the bearer token
-- (none for the baseline, whose paths are /plain/customers/ID). A file, not the token itself: a
-- command line is visible to every user of the machine.

local ids, prefix, suffix, headers = {}, "", "", {}

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the ids file")
  for line in file:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  file:close()
  assert(#ids > 0, "the ids file is empty")
  prefix, suffix = args[2] or "", args[3] or ""
  if args[4] and #args[4] > 0 then
    local t = assert(io.open(args[4], "r"), "cannot open the token file")
    local token = t:read("*l")
    t:close()
    headers["Authorization"] = "Bearer " .. token
  end
  -- Each thread draws its own sequence.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)] .. suffix, headers)
end

-- errors.status counts answers of 400 and above (wrk's own rule).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "STEWARD-WRK requests=%d errors=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
