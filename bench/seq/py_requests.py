"""Scenario 1, the Python peer: requests with a Session (one keep-alive
connection), TLS verified against the CA.  Prints calls=N wall=S cpu=S,
cpu being this process's CPU time (time.process_time) over the timed calls.
Run with /usr/bin/python3 (Debian's python3-requests)."""
import os
import time

import requests

url = os.environ["BENCH_URL"] + "contacts.ashx?method=Merge"
ca = os.environ["BENCH_CA"]
secs = float(os.environ.get("BENCH_SECS", "1"))
warmup = int(os.environ.get("BENCH_WARMUP", "200"))
auth = {"idKey": int(os.environ["BENCH_KEY_ID"]), "Key": os.environ["BENCH_KEY"]}
project = int(os.environ["BENCH_PROJECT"])
params = {
    "Records": [{"ID": {"key_f_EMail": "bench1@example.com"},
                 "Data": {"f_FirstName": "Bench", "f_Points": 1, "optin_Newsletter": True}}],
    "MergeOptions": {"AllowInsert": True, "AllowUpdate": True},
}
session = requests.Session()


def call():
    body = dict(params, AuthKey=auth, idProject=project)
    r = session.post(url, json=body, verify=ca, headers={"Accept": "application/json"})
    r.raise_for_status()
    data = r.json()
    if data["Success"] is not True or data["Records"][0]["Status"] != "Created":
        raise RuntimeError("unexpected reply")


for _ in range(warmup):
    call()
n, t0, c0 = 0, time.monotonic(), time.process_time()
deadline = t0 + secs
while True:
    for _ in range(16):
        call()
    n += 16
    if time.monotonic() >= deadline:
        break
wall, cpu = time.monotonic() - t0, time.process_time() - c0
print("calls=%d wall=%.6f cpu=%.6f" % (n, wall, cpu))
