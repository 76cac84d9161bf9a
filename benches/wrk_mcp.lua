-- wrk script for one MCP request, sent over and over (benches/common.py `wrk` runs it).
--
-- From the environment: WRK_BODY (the JSON-RPC request), WRK_HEADERS ("Name: value" lines) and
-- WRK_EXPECT (a string every correct answer contains). Every answer is checked: a status other than
-- 200, or a body without WRK_EXPECT, counts as bad, and `done` prints one JSON line with the counts
-- and the latency percentiles (µs) for the script to read.

local body = os.getenv("WRK_BODY")
local expect = os.getenv("WRK_EXPECT")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = {}
  for line in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^\n]+") do
    local name, value = string.match(line, "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  request_bytes = wrk.format("POST", nil, headers, body)
  bad, first_bad = 0, nil
end

function request()
  return request_bytes
end

function response(status, headers, answer)
  if status ~= 200 or not string.find(answer, expect, 1, true) then
    bad = bad + 1
    if first_bad == nil then
      first_bad = status .. " " .. string.sub(answer, 1, 300)
    end
  end
end

local function quote(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local bad_total, first = 0, ""
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    first = first ~= "" and first or (thread:get("first_bad") or "")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "bad": %d, "first_bad": %s, "socket_errors": %d, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration / 1e6, bad_total, quote(first),
    errors.connect + errors.read + errors.write + errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
