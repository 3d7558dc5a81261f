-- wrk script for benches/webhook.rs: every request POSTs one authenticated
-- operator message (a Wahelp `channel.message.created` event, the shape of
-- tests/fixtures/wahelp/01-event-data-operator.json) to the URL given to
-- wrk (`.../wahelp/webhook?token=SECRET`).
--
--   wrk -t2 -c32 -d10s --latency -s bench/webhook/operator.lua \
--       'http://127.0.0.1:PORT/wahelp/webhook?token=SECRET' -- CUSTOMERS THREADS
--
-- CUSTOMERS: how many registered customers there are; their phones are
-- 7999 followed by the customer's index on 7 digits (0000000, 0000001, ...),
-- as benches/webhook.rs registers them. THREADS: wrk's -t.
--
-- Each request has a message id of its own (the bot forwards a message id
-- once): thread number * 10^9 + the thread's request counter. Thread t's
-- request n goes to customer ((n - 1) * THREADS + t - 1) mod CUSTOMERS, so
-- the threads together rotate over every phone. The text ends with
-- "#<id>/<customer index>" so that the bench can check, from what the fake
-- Telegram received, which message reached which chat, and how often.
--
-- done() prints one line per thread and a total, starting with
-- "webhook-lua", for benches/webhook.rs to parse: requests written, responses
-- read and the responses by HTTP status; then the exact latency percentiles
-- (microseconds) and wrk's error counters.

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   customers = tonumber(args[1]) or 1
   nthreads = tonumber(args[2]) or 1
   -- Globals, read by done() through thread:get.
   written = 0
   answered = 0
   -- Responses by HTTP status (thread:get copies tables).
   statuses = {}
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

local template = '{"event":"channel.message.created","data":{"id":%d,'
   .. '"destination":"from_operator",'
   .. '"channel":{"alias":"clients_tg","uuid":"2f1c3a8e-0000-4000-8000-00000000c1a5"},'
   .. '"user":{"id":%d,"phone":"7999%07d","name":"Клиент%d"},'
   .. '"message":{"id":%d,"text":"Здравствуйте! Да, завтра в 10:00 мастер сможет приехать. #%d/%d"},'
   .. '"created_at":"2026-11-20T10:15:00+03:00"}}'

function request()
   written = written + 1
   local id = tid * 1000000000 + written
   local customer = ((written - 1) * nthreads + tid - 1) % customers
   local body = string.format(template, id, 100000 + customer, customer, customer, id, id, customer)
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   answered = answered + 1
   statuses[status] = (statuses[status] or 0) + 1
end

local function status_string(t)
   local keys = {}
   for code in pairs(t) do
      table.insert(keys, code)
   end
   table.sort(keys)
   local parts = {}
   for _, code in ipairs(keys) do
      table.insert(parts, string.format("%d=%d", code, t[code]))
   end
   return table.concat(parts, ",")
end

function done(summary, latency, requests)
   local total_written, total_answered, total_statuses = 0, 0, {}
   for _, thread in ipairs(threads) do
      local w = thread:get("written")
      local a = thread:get("answered")
      local s = thread:get("statuses")
      total_written = total_written + w
      total_answered = total_answered + a
      for code, n in pairs(s) do
         total_statuses[code] = (total_statuses[code] or 0) + n
      end
      io.write(string.format("webhook-lua thread=%d written=%d answered=%d statuses=%s\n",
         thread:get("tid"), w, a, status_string(s)))
   end
   io.write(string.format("webhook-lua total written=%d answered=%d statuses=%s\n",
      total_written, total_answered, status_string(total_statuses)))
   io.write(string.format(
      "webhook-lua summary duration_us=%d requests=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.duration, summary.requests, summary.bytes, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
   io.write(string.format(
      "webhook-lua latency_us min=%d mean=%.1f p50=%d p90=%d p99=%d p999=%d max=%d\n",
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max))
end
