#!/usr/bin/env bash
# Soak the multi-process (gloo) tests under CPU load: run them N times in a row while busy-loop
# processes keep every core occupied, and report how many runs passed.
#
#   benchmarks/soak_distributed.sh [ITERATIONS]        (default 20)
#
# Environment: PYTHON (default .venv/bin/python, else python3), BURNERS (load processes,
# default: the number of cores), SOAK_MAX_SECONDS (the whole soak's budget, default 7200),
# ITERATION_TIMEOUT (one pytest run, default 900), SOAK_LOG (failed runs' output, default a
# fresh directory under /tmp). The load processes are killed on exit, interruption included;
# each also ends by itself after SOAK_MAX_SECONDS. Exit status 0 only if every run passed.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ITERATIONS="${1:-20}"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
BURNERS="${BURNERS:-$(nproc 2>/dev/null || echo 2)}"
SOAK_MAX_SECONDS="${SOAK_MAX_SECONDS:-7200}"
ITERATION_TIMEOUT="${ITERATION_TIMEOUT:-900}"
SOAK_LOG="${SOAK_LOG:-$(mktemp -d /tmp/soak_distributed.XXXXXX)}"
mkdir -p "$SOAK_LOG"

TESTS=(tests/integration/test_distributed.py
       plugins/segcore-metrics/tests/test_metrics_accumulator.py)
SELECTION="ddp or two_processes"  # only the multi-process tests

burner_pids=()
test_pid=""
cleanup() {
    # only what this script started, by process id: the test run in progress (timeout(1)
    # passes the signal on to its process group: pytest and the ranks) and the load processes
    for pid in $test_pid "${burner_pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in $test_pid "${burner_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    burner_pids=()
    test_pid=""
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

for _ in $(seq "$BURNERS"); do
    # bounded by itself too, should this script be killed with SIGKILL
    timeout "$SOAK_MAX_SECONDS" "$PYTHON" -c "while True: pass" &
    burner_pids+=("$!")
done
echo "soak: $ITERATIONS runs of [$SELECTION] under $BURNERS busy-loop process(es)" \
     "on $(nproc 2>/dev/null || echo '?') core(s); logs of failed runs in $SOAK_LOG"

start=$SECONDS
deadline=$((start + SOAK_MAX_SECONDS))
passed=0
ran=0
for i in $(seq "$ITERATIONS"); do
    left=$((deadline - SECONDS))
    if [ "$left" -le 0 ]; then
        echo "soak: out of time (SOAK_MAX_SECONDS=$SOAK_MAX_SECONDS) after $ran run(s)"
        break
    fi
    limit=$((left < ITERATION_TIMEOUT ? left : ITERATION_TIMEOUT))
    log="$SOAK_LOG/run$i.log"
    t0=$SECONDS
    # in the background and waited for: a signal to this script is handled at once
    timeout --kill-after=30 "$limit" "$PYTHON" -m pytest -q -p no:cacheprovider \
        "${TESTS[@]}" -k "$SELECTION" >"$log" 2>&1 &
    test_pid=$!
    wait "$test_pid"
    status=$?
    test_pid=""
    ran=$((ran + 1))
    summary="$(tail -n 1 "$log")"
    # a pass needs tests that ran: none failed, errored or was skipped (a missing plugin)
    if [ "$status" -eq 0 ] && grep -Eq "[0-9]+ passed" <<<"$summary" \
            && ! grep -Eq "failed|error|skipped" <<<"$summary"; then
        passed=$((passed + 1))
        echo "run $i: PASS in $((SECONDS - t0)) s ($summary)"
        rm -f "$log"
    else
        echo "run $i: FAIL (exit $status) in $((SECONDS - t0)) s ($summary); log: $log"
    fi
done

echo "soak: $passed/$ITERATIONS passed ($ran run) in $((SECONDS - start)) s," \
     "load avg $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
[ "$passed" -eq "$ITERATIONS" ]
