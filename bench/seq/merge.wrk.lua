-- wrk script of scenarios 1 and 2: POSTs the bytes of BENCH_BODY_FILE (the
-- request body our client sends for the same Merge) with the same
-- Content-Type and Accept, on keep-alive connections.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

function done(summary)
  io.write(string.format("wrk: requests=%d non2xx=%d errors=%d\n", summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
