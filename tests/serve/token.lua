-- wrk script for sandbox-serve's load test: every request carries a token of its own, and every
-- response must echo exactly the token of the request it answers (body and X-Echo-Token).
-- Run with as many threads as connections (-t N -c N) and no pipelining: a thread's one
-- connection then has one request in flight, the one whose token request() made last (wrk may
-- call request() once more than it sends, so the check is against the last token, not a queue).
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n, ok, bad, last = 0, 0, 0, nil
  firstbad = ""
end

function request()
  n = n + 1
  last = string.format("t%d-%d", id, n)
  return wrk.format("GET", "/load?token=" .. last)
end

function response(status, headers, body)
  local tok = last
  if status == 200 and tok and headers["X-Echo-Token"] == tok and
     body:find("token=" .. tok .. "\n", 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if firstbad == "" then
      firstbad = string.format("status %d for %s: %s", status, tostring(tok), body:sub(1, 80))
    end
  end
end

function done(summary, latency, requests)
  local o, b, fb = 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
    if fb == "" then fb = t:get("firstbad") end
  end
  local e = summary.errors
  io.write(string.format("checked ok=%d bad=%d requests=%d errors=%d p50_us=%d p99_us=%d\n",
    o, b, summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
  if fb ~= "" then io.write("first bad: " .. fb .. "\n") end
end
