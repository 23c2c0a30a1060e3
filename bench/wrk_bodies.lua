-- wrk script: POST distinct signed bodies, each built as seg1 .. tok .. seg2 .. tok .. segN.
-- Only the shared segments (once) and (token, signature) per body live in Lua memory.
--
-- wrk -s wrk_bodies.lua URL -- SEGMENTS_FILE TOKENS_FILE NTHREADS MODE PATH
--   MODE "cycle": post for wrk's -d; wraps around when the tokens run out (counted in
--                 `repeats`: for Kave a repeat is a duplicate, so the bench sizes files to avoid it)
--   MODE "limit": post every token once, then stop (use one thread); requests issued after the
--                 last token are GET /health/live and are told apart by their body. When the
--                 last POST is answered the thread stops and prints "BENCH_DONE": wrk's main
--                 thread sleeps for all of -d, so the bench then ends it with SIGINT.
-- wrk calls request() once in thread 0 to check it (that request is never sent): that call
-- gets the health check, so no token is lost.
-- done() prints one line: "BENCH_RESULT key=value ...".

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[3])
  mode = args[4]
  local path = args[5]
  local host = wrk.headers["Host"]

  local segs = {}
  for line in io.lines(args[1]) do
    segs[#segs + 1] = line
  end
  toks, sigs = {}, {}
  local i = 0
  for line in io.lines(args[2]) do
    if i % nthreads == tid then
      local tok, sig = line:match("^(%S+) (%S+)$")
      toks[#toks + 1] = tok
      sigs[#sigs + 1] = sig
    end
    i = i + 1
  end
  n = #toks
  local body_len = 0
  for _, seg in ipairs(segs) do
    body_len = body_len + #seg
  end
  body_len = body_len + (#segs - 1) * #toks[1]

  -- parts = head, signature, blank line, seg1, tok, seg2, tok, ..., segN
  parts = {
    "POST " .. path .. " HTTP/1.1\r\nHost: " .. host
      .. "\r\nContent-Type: application/x-www-form-urlencoded"
      .. "\r\nUser-Agent: Mandrill-Webhook/1.0"
      .. "\r\nContent-Length: " .. body_len
      .. "\r\nX-Mandrill-Signature: ",
    "",
    "\r\n\r\n",
  }
  token_slots = {}
  for k, seg in ipairs(segs) do
    if k > 1 then
      parts[#parts + 1] = ""
      token_slots[#token_slots + 1] = #parts
    end
    parts[#parts + 1] = seg
  end
  health = "GET /health/live HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"

  idx, laps, repeats, sent = 0, 0, 0, 0
  answered, non200, not_accepted = 0, 0, 0
  checked = tid ~= 0
end

function request()
  if not checked then
    checked = true
    return health
  end
  if idx >= n then
    if mode == "limit" then
      return health
    end
    idx = 0
    laps = laps + 1
  end
  idx = idx + 1
  if laps > 0 then
    repeats = repeats + 1
  end
  sent = sent + 1
  local tok = toks[idx]
  parts[2] = sigs[idx]
  for _, slot in ipairs(token_slots) do
    parts[slot] = tok
  end
  return table.concat(parts)
end

function response(status, headers, body)
  if mode == "limit" and status == 200 and body:find('"status"', 1, true) then
    return -- a health check issued after the last token
  end
  answered = answered + 1
  if status ~= 200 then
    non200 = non200 + 1
  elseif body:find('"accepted":0', 1, true) then
    not_accepted = not_accepted + 1
  end
  if mode == "limit" and answered == n then
    io.write("BENCH_DONE\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, answered = 0, repeats = 0, non200 = 0, not_accepted = 0 }
  for _, thread in ipairs(threads) do
    for key, value in pairs(totals) do
      totals[key] = value + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d "
      .. "max_us=%d mean_us=%.1f connect=%d read=%d write=%d status=%d timeout=%d "
      .. "sent=%d answered=%d repeats=%d non200=%d not_accepted=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout,
    totals.sent, totals.answered, totals.repeats, totals.non200, totals.not_accepted
  ))
end
