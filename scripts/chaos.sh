#!/usr/bin/env bash
# Fault suite: a scaled-out Remora on PostgreSQL, with processes killed under load.
#
# Usage: scripts/chaos.sh            full run  (CHAOS_JOBS=600 over 90 s, about 2.5 minutes)
#        CHAOS_JOBS=300 CHAOS_SECONDS=45 scripts/chaos.sh     bounded quick run (about 1.5 minutes)
#
# Starts 5 OpenSSH hosts (remora-testkit sshd on 127.0.1.1-5), 1 durable netqueue, 2 API processes
# and 3 workers on one PostgreSQL database (a throwaway cluster via scripts/with-postgres.sh unless
# REMORA_TEST_PG_URL is set), submits CHAOS_JOBS jobs through both APIs over CHAOS_SECONDS, and
# meanwhile: kill -9 a worker and restart it with the same id (as a supervisor would), kill -9
# another and restart it under a new id, kill -9 and restart the netqueue, restart one API
# (SIGTERM) and kill -9 and restart the other. Each job appends its id ($REMORA_JOB) to ~/markers on its
# host, so a job that ran twice shows up twice. Then checks: every job final, none stuck
# queued/running, none ran twice, every completed job left its marker, every failed job has a
# reason, completed >= CHAOS_MIN_COMPLETED_PCT (97). Exits non-zero when a check fails.
#
# Settings (environment): CHAOS_JOBS (600), CHAOS_SECONDS (submission window, 90), CHAOS_CONCURRENCY
# (per worker, 4), CHAOS_SETTLE (max seconds to wait for all jobs to end, 120), CHAOS_MIN_COMPLETED_PCT
# (97), REMORA_BIN (target/debug), CHAOS_KEEP=1 keeps the work dir (logs) even on success.
# Only processes this script started are signalled, by PID; testkit hosts remove their users when
# their stdin closes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${REMORA_TEST_PG_URL:-} ]]; then
    exec "$root/scripts/with-postgres.sh" "$0" "$@"
fi

JOBS=${CHAOS_JOBS:-600}
SECONDS_WINDOW=${CHAOS_SECONDS:-90}
CONC=${CHAOS_CONCURRENCY:-4}
SETTLE=${CHAOS_SETTLE:-120}
MIN_PCT=${CHAOS_MIN_COMPLETED_PCT:-97}
BIN=${REMORA_BIN:-$root/target/debug}
NHOSTS=5
NWORKERS=3

for b in remora-api remora-worker remora-netqueue remora-testkit; do
    if [[ ! -x $BIN/$b ]]; then
        echo "chaos: $BIN/$b missing; build first (cargo build --workspace --bins)" >&2
        exit 2
    fi
done
for t in curl jq psql; do
    command -v "$t" >/dev/null || { echo "chaos: $t not found" >&2; exit 2; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/remora-chaos.XXXXXX")
chmod 0755 "$W"
log() { printf '%s chaos: %s\n' "$(date +%T)" "$*" | tee -a "$W/timeline.log" >&2; }

declare -A PID=()      # role -> pid of a process we started
HOST_FDS=()
HOST_PIDS=()
DB_CREATED=
failed_checks=0

stop_pid() { # pid: TERM, then KILL after 5 s; only our own children
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    for role in "${!PID[@]}"; do
        [[ $role == sub* ]] && stop_pid "${PID[$role]}"
    done
    for role in "${!PID[@]}"; do
        [[ $role == worker* ]] && stop_pid "${PID[$role]}"
    done
    for role in "${!PID[@]}"; do
        [[ $role == api* || $role == netqueue ]] && stop_pid "${PID[$role]}"
    done
    # Closing a host's stdin makes remora-testkit stop its sshd and delete its user.
    for fd in "${HOST_FDS[@]}"; do exec {fd}>&-; done
    for p in "${HOST_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [[ -n $DB_CREATED ]]; then
        psql -q "$REMORA_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $DB_NAME" >/dev/null 2>&1
    fi
    if [[ $rc -eq 0 && -z ${CHAOS_KEEP:-} ]]; then
        rm -rf "$W"
    else
        echo "chaos: logs kept in $W" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

kill9() { # role
    { kill -KILL "${PID[$1]}" && wait "${PID[$1]}"; } 2>/dev/null || true
}

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

wait_for() { # seconds description command...
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq 1 $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "timed out waiting for $what"
    return 1
}

# --- database ------------------------------------------------------------------------------------
DB_NAME="remora_chaos_$$"
psql -q "$REMORA_TEST_PG_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null
DB_CREATED=1
DB_URL="${REMORA_TEST_PG_URL%/*}/$DB_NAME"
sql() { psql -X -A -t -q "$DB_URL" -c "$1"; }

QP=$(free_port)
API_PORTS=("$(free_port)" "$(free_port)")
ADMIN=chaos-admin-$RANDOM$RANDOM$RANDOM
export REMORA_DATABASE_URL=$DB_URL
export REMORA_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export REMORA_QUEUE_ADDR=127.0.0.1:$QP
export REMORA_QUEUE_TOKEN=chaos-queue-$RANDOM$RANDOM
export REMORA_ADMIN_TOKEN=$ADMIN
export REMORA_LOG_FORMAT=text
export RUST_LOG=${RUST_LOG:-info,sqlx=warn,russh=warn,tower_http=warn}
# Fast failure detection so the run stays short: heartbeat 1 s, down after 6 s.
export REMORA_WORKER_DOWN_AFTER=${CHAOS_DOWN_AFTER:-6}
export REMORA_HEARTBEAT_INTERVAL=1
export REMORA_WORKER_CONCURRENCY=$CONC

# --- SSH hosts -----------------------------------------------------------------------------------
for i in $(seq 1 $NHOSTS); do
    mkfifo "$W/host$i.in"
    "$BIN/remora-testkit" sshd --ip "127.0.1.$i" <"$W/host$i.in" >"$W/host$i.json" 2>"$W/host$i.log" &
    HOST_PIDS+=($!)
    exec {fd}>"$W/host$i.in"
    HOST_FDS+=("$fd")
done
for i in $(seq 1 $NHOSTS); do
    wait_for 30 "ssh host $i" grep -q '"port"' "$W/host$i.json" || exit 1
done
log "$NHOSTS sshd hosts up"

# --- processes -----------------------------------------------------------------------------------
start_netqueue() {
    # fsync=always: an acked push survives kill -9 (the default, and what production should run).
    "$BIN/remora-netqueue" --addr "127.0.0.1:$QP" --data-dir "$W/queue" >>"$W/netqueue.out" 2>>"$W/netqueue.log" &
    PID[netqueue]=$!
    wait_for 20 netqueue bash -c "exec 3<>/dev/tcp/127.0.0.1/$QP"
}
start_api() { # n
    local n=$1
    REMORA_API_ADDR=127.0.0.1:${API_PORTS[$((n - 1))]} REMORA_DATA_DIR=$W/api$n \
        "$BIN/remora-api" >>"$W/api$n.log" 2>&1 &
    PID[api$n]=$!
    wait_for 60 "api $n" curl -fsS "http://127.0.0.1:${API_PORTS[$((n - 1))]}/health"
}
declare -A WID=()
start_worker() { # n
    local n=$1
    WID[$n]=${WID[$n]:-chaos-w$n}
    REMORA_WORKER_ID=${WID[$n]} REMORA_DATA_DIR=$W/worker$n "$BIN/remora-worker" >>"$W/worker$n.log" 2>&1 &
    PID[worker$n]=$!
}

start_netqueue
# One API first so migrations and the admin token seed do not race on an empty database.
start_api 1
start_api 2
for n in $(seq 1 $NWORKERS); do start_worker "$n"; done
wait_for 30 "workers to register" bash -c "[[ \$(psql -X -A -t -q '$DB_URL' -c \"select count(*) from workers where status='up'\") -ge $NWORKERS ]]"
log "netqueue :$QP, api :${API_PORTS[0]} :${API_PORTS[1]}, $NWORKERS workers (concurrency $CONC) up"

api() { # n method path [json]
    local base="http://127.0.0.1:${API_PORTS[$(($1 - 1))]}"
    curl -sS -X "$2" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
        ${4:+--data "$4"} "$base$3"
}

SERVER_IDS=()
for i in $(seq 1 $NHOSTS); do
    h=$(cat "$W/host$i.json")
    body=$(jq -c --arg name "chaos-h$i" '{name: $name, hostname: .host, port: .port, user: .user,
        auth_type: "password", password: .password}' <<<"$h")
    id=$(api 1 POST /api/v1/servers "$body" | jq -r '.id // empty')
    [[ -n $id ]] || { log "registering host $i failed"; exit 1; }
    SERVER_IDS+=("$id")
    jq -r --arg id "$id" '"\($id) \(.user)"' <<<"$h" >>"$W/servers.txt"
done
log "registered ${#SERVER_IDS[@]} servers"

# --- load ----------------------------------------------------------------------------------------
# Each submitter owns one API and half the jobs, spread evenly over the window. A request that
# cannot connect (API restarting) is retried; one that got no answer may have created a job that
# we never hear of: the checks read the database, not this list.
submitter() { # api_n count
    local n=$1 count=$2 k tries out code slot
    for k in $(seq 1 "$count"); do
        # Paced by the clock (job k is due at T0 + k/count of the window), not by a fixed gap,
        # so a slow machine still spreads the load over the faults.
        slot=$(awk -v t0="$T0" -v s="$SECONDS_WINDOW" -v k="$k" -v c="$count" 'BEGIN { printf "%.3f", t0 + s * (k - 1) / c }')
        while awk -v now="$(date +%s.%N)" -v slot="$slot" 'BEGIN { exit !(now < slot) }'; do sleep 0.05; done
        local sid=${SERVER_IDS[$(((k + n) % NHOSTS))]}
        # Mostly 0-0.4 s of work, one job in ten 2-4 s, so jobs are in flight when processes die.
        local work="0.$((RANDOM % 5))"
        ((RANDOM % 10 == 0)) && work=$((2 + RANDOM % 3))
        local cmd="echo \"\$REMORA_JOB\" >> ~/markers; sleep $work"
        local body
        body=$(jq -cn --arg s "$sid" --arg c "$cmd" '{server_id: $s, command: $c}')
        for tries in $(seq 1 120); do
            out=$(curl -sS -m 10 -w '\n%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
                -H 'Content-Type: application/json' --data "$body" \
                "http://127.0.0.1:${API_PORTS[$((n - 1))]}/api/v1/jobs" 2>>"$W/submit$n.err") || out=$'\n000'
            code=${out##*$'\n'}
            if [[ $code == 201 ]]; then
                jq -r '.id' <<<"${out%$'\n'*}" >>"$W/submitted$n.txt"
                break
            fi
            echo "$(date +%T) job $k try $tries: HTTP $code ${out%$'\n'*}" >>"$W/submit$n.err"
            sleep 0.5
        done
    done
}
T0=$(date +%s)
per=$((JOBS / 2))
submitter 1 "$per" &
PID[sub1]=$!
submitter 2 $((JOBS - per)) &
PID[sub2]=$!
log "submitting $JOBS jobs through both APIs over ${SECONDS_WINDOW}s"

at() { # fraction of the window: sleep until then
    local target
    target=$(awk -v t0="$T0" -v s="$SECONDS_WINDOW" -v f="$1" 'BEGIN { printf "%d", t0 + s * f }')
    while (($(date +%s) < target)); do sleep 0.2; done
}

# --- faults --------------------------------------------------------------------------------------
busy_kill_worker() { # n: kill -9 while it runs a long (2-4 s) job, waiting up to 15 s for one
    local n=$1 running= i
    for i in $(seq 1 150); do
        running=$(sql "select string_agg(id, ' ') from jobs where status='running' and worker_id='${WID[$n]}' and command not like '%sleep 0.%'")
        [[ -n $running ]] && break
        sleep 0.1
    done
    log "FAULT kill -9 worker $n (${WID[$n]}, pid ${PID[worker$n]}), running: ${running:-nothing}"
    kill9 "worker$n"
}

at 0.20
# Restarted with the same id, as a supervisor with a fixed REMORA_WORKER_ID would.
busy_kill_worker 3
sleep 1
start_worker 3
log "worker 3 restarted with the same id ${WID[3]} (pid ${PID[worker3]})"

at 0.33
# Restarted under a new id: the old one's jobs are the reaper's (REMORA_WORKER_DOWN_AFTER).
busy_kill_worker 2
sleep 1
WID[2]=chaos-w2-restarted
start_worker 2
log "worker 2 restarted as ${WID[2]} (pid ${PID[worker2]})"

at 0.45
log "FAULT kill -9 netqueue (pid ${PID[netqueue]})"
kill9 netqueue
sleep 2
start_netqueue
log "netqueue restarted on the same data dir (pid ${PID[netqueue]})"

at 0.62
log "FAULT restart api 2 (SIGTERM, pid ${PID[api2]})"
stop_pid "${PID[api2]}"
start_api 2
log "api 2 back (pid ${PID[api2]})"

at 0.78
# kill -9 between the database insert and the queue push leaves a job only the other
# instance's reconciler can push.
log "FAULT kill -9 api 1 (pid ${PID[api1]})"
kill9 api1
sleep 1
start_api 1
log "api 1 back (pid ${PID[api1]})"

wait "${PID[sub1]}" "${PID[sub2]}" || true
unset 'PID[sub1]' 'PID[sub2]'
log "submission done after $(($(date +%s) - T0))s"

# --- settle --------------------------------------------------------------------------------------
deadline=$(($(date +%s) + SETTLE))
while :; do
    open=$(sql "select count(*) from jobs where status in ('queued','running')")
    [[ $open -eq 0 ]] && break
    if (($(date +%s) >= deadline)); then
        log "still $open jobs queued/running after ${SETTLE}s"
        break
    fi
    sleep 1
done
log "settled after $(($(date +%s) - T0))s"

# --- checks --------------------------------------------------------------------------------------
check() { # ok? message
    if [[ $1 == ok ]]; then
        printf '  PASS  %s\n' "$2"
    else
        printf '  FAIL  %s\n' "$2"
        failed_checks=$((failed_checks + 1))
    fi
}

cat "$W"/submitted*.txt 2>/dev/null | sort >"$W/submitted.txt" || true
sql "select id, server_id, status, coalesce(error_code,''), coalesce(replace(error, E'\n', ' '),''), attempt, coalesce(worker_id,'') from jobs order by created_at" \
    | tr '|' '\t' >"$W/jobs.tsv"
# Markers: one line per execution, "job_id server_id".
: >"$W/markers.txt"
while read -r sid user; do
    home=$(getent passwd "$user" | cut -d: -f6)
    if [[ -f $home/markers ]]; then
        sed "s/\$/ $sid/" "$home/markers" >>"$W/markers.txt"
    fi
done <"$W/servers.txt"

total=$(wc -l <"$W/jobs.tsv")
submitted=$(wc -l <"$W/submitted.txt")
completed=$(awk -F'\t' '$3=="completed"' "$W/jobs.tsv" | wc -l)
failed=$(awk -F'\t' '$3=="failed" || $3=="timed_out"' "$W/jobs.tsv" | wc -l)
canceled=$(awk -F'\t' '$3=="canceled"' "$W/jobs.tsv" | wc -l)
stuck=$(awk -F'\t' '$3=="queued" || $3=="running"' "$W/jobs.tsv" | wc -l)
noreason=$(awk -F'\t' '($3=="failed" || $3=="timed_out" || $3=="canceled") && $5==""' "$W/jobs.tsv" | wc -l)
retried=$(awk -F'\t' '$6 > 1' "$W/jobs.tsv" | wc -l)
missing=$(comm -23 "$W/submitted.txt" <(cut -f1 "$W/jobs.tsv" | sort) | wc -l)
executions=$(wc -l <"$W/markers.txt")
cut -d' ' -f1 "$W/markers.txt" | sort | uniq -d >"$W/double.txt"
double=$(wc -l <"$W/double.txt")
# Ran on a host other than its server's.
wronghost=$(awk 'NR==FNR { srv[$1]=$2; next } ($1 in srv) && srv[$1] != $2' \
    <(awk -F'\t' '{ print $1, $2 }' "$W/jobs.tsv") "$W/markers.txt" | wc -l)
# Completed without a marker: reported done, never ran.
noexec=$(comm -23 <(awk -F'\t' '$3=="completed" { print $1 }' "$W/jobs.tsv" | sort) \
    <(cut -d' ' -f1 "$W/markers.txt" | sort -u) | wc -l)
unknownexec=$(comm -13 <(cut -f1 "$W/jobs.tsv" | sort) <(cut -d' ' -f1 "$W/markers.txt" | sort -u) | wc -l)
pct=$(awk -v c="$completed" -v t="$total" 'BEGIN { printf "%.2f", t ? 100 * c / t : 0 }')

echo
echo "=== chaos summary ($JOBS jobs over ${SECONDS_WINDOW}s, $NHOSTS hosts, 2 APIs, $NWORKERS workers x $CONC, PostgreSQL) ==="
cat "$W/timeline.log" | sed 's/^/  /'
echo "  jobs in database: $total (submitted and acknowledged: $submitted, not in database: $missing)"
echo "  completed: $completed ($pct %)  failed: $failed  canceled: $canceled  queued/running: $stuck"
echo "  executions (markers): $executions  ran twice: $double  ran on a wrong host: $wronghost"
echo "  completed without running: $noexec  markers of unknown jobs: $unknownexec  jobs with attempt > 1: $retried"
if ((failed + canceled)); then
    echo "  failure reasons:"
    awk -F'\t' '$3!="completed" && $3!="queued" && $3!="running" { print $3 " " $4 ": " substr($5, 1, 110) }' "$W/jobs.tsv" \
        | sort | uniq -c | sort -rn | head -10 | sed 's/^/   /'
fi
killed=$(grep -o 'running: .*' "$W/timeline.log" | sed 's/running: //; s/nothing//' | tr ' ' '\n' | grep . || true)
if [[ -n $killed ]]; then
    echo "  jobs running on the killed workers, and how they ended:"
    for id in $killed; do
        awk -F'\t' -v id="$id" '$1==id { printf "    %s %s %s markers=", $1, $3, $4 }' "$W/jobs.tsv"
        grep -c "^$id " "$W/markers.txt" || true
    done
fi
echo "checks:"
[[ $total -ge $((JOBS * 9 / 10)) ]] && check ok "jobs accepted ($total of $JOBS)" || check fail "jobs accepted ($total of $JOBS)"
[[ $missing -eq 0 ]] && check ok "every acknowledged job is in the database" || check fail "$missing acknowledged jobs missing from the database"
[[ $stuck -eq 0 ]] && check ok "every job ended in a final state" || check fail "$stuck jobs still queued/running: $(awk -F'\t' '$3=="queued"||$3=="running" { print $1 "(" $3 "," $7 ")" }' "$W/jobs.tsv" | head -5 | tr '\n' ' ')"
[[ $double -eq 0 ]] && check ok "no job ran twice" || check fail "$double jobs ran twice: $(head -5 "$W/double.txt" | tr '\n' ' ')"
[[ $wronghost -eq 0 ]] && check ok "every job ran on its own server" || check fail "$wronghost executions on the wrong host"
[[ $noexec -eq 0 ]] && check ok "every completed job left its marker" || check fail "$noexec completed jobs left no marker"
[[ $noreason -eq 0 ]] && check ok "every failed/canceled job has a reason" || check fail "$noreason failed jobs without a reason"
awk -v p="$pct" -v m="$MIN_PCT" 'BEGIN { exit !(p >= m) }' && check ok "completed $pct % >= $MIN_PCT %" || check fail "completed $pct % < $MIN_PCT %"
echo "$((8 - failed_checks)) passed, $failed_checks failed"
((failed_checks == 0))
