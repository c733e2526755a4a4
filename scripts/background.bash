# Background jobs and step timings for scripts/test (sourced; the caller runs under `set -euo pipefail` and sets
# BG_LOGS, an existing folder). A job runs in a process group of its own, so that it can be stopped whole, with its
# output in $BG_LOGS/NAME.log. A job that fails fails the caller, its log printed, when the caller waits for it or
# at the next `step`, whichever comes first: never silently.
#
#   bg_start [--finish] [--after JOB] NAME PRIORITY COMMAND...
#                                             start COMMAND; PRIORITY `normal`, or `idle`: under the SCHED_IDLE
#                                             policy (chrt --idle), so that it runs only on a CPU that nothing
#                                             else wants; --finish: if the caller stops early, let the job end
#                                             rather than stop it (apt and pip stopped midway can leave dpkg or a
#                                             virtualenv half-installed); --after JOB: begin once JOB has ended
#                                             (so that two idle jobs do not split the idle CPU when one of them is
#                                             needed sooner)
#   bg_wait NAME...                           wait for the jobs; exit 1 with the log of one that failed (or that
#                                             ran for more than BG_TIMEOUT s, default 1800: it is stopped)
#   bg_check                                  exit 1 with the log of a job that has failed, if any (no waiting)
#   bg_stop_all                               for the EXIT trap: stop (or, --finish, wait for) unfinished jobs
#   step TITLE                                print "== TITLE", check the jobs, time the step until the next one
#   print_timings                             the wall time of every step and job (jobs: and their CPU time), and
#                                             how busy the machine's CPUs were
#
# Why not `nice`: swift build (llbuild) starts the compiler at nice 0 whatever its own nice value, so a niced
# background build took as much CPU as the foreground's (measured 2026-12-04: a foreground debug build beside a
# `nice -n 19` and a `nice -n 15` build took 428 s instead of 172 s). A scheduling policy is inherited as it is.

BG_TIMEOUT=${BG_TIMEOUT:-1800}
bg_names=()
declare -A bg_pid=() bg_began=() bg_finish=() bg_done=()
timings=()
step_title="" step_began=0 step_busy0=0
# The machine's CPU time at the start (busy, idle; USER_HZ ticks from /proc/stat), for print_timings.
_cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
read -r cpu_busy0 cpu_idle0 < <(_cpu_ticks)

# The command prefix of a PRIORITY: SCHED_IDLE where the kernel allows it, else the lowest nice value (which
# holds for everything but the compilers of a swift build).
_bg_priority() {
  case "$1" in
    normal) ;;
    idle) if chrt --idle 0 true 2>/dev/null; then echo "chrt --idle 0"; else echo "nice -n 19"; fi ;;
    *) echo "bg_start: PRIORITY is normal or idle, not '$1'" >&2; return 1 ;;
  esac
}

bg_start() {
  local finish=0 after=""
  if [ "$1" = --finish ]; then finish=1; shift; fi
  if [ "$1" = --after ]; then after=$2; shift 2; fi
  local name=$1 priority
  priority=$(_bg_priority "$2")
  shift 2
  rm -f "$BG_LOGS/$name.status"
  local after_pid=""
  if [ -n "$after" ]; then after_pid=${bg_pid[$after]}; fi
  # Job control only while forking: the job (the subshell and all it starts) gets a process group of its own.
  set -m
  (
    rc=0
    # The CPU time of the job and all it ran (user + system s), for print_timings.
    TIMEFORMAT='%U %S'
    if [ -n "$after" ]; then
      while [ ! -e "$BG_LOGS/$after.status" ] && kill -0 "$after_pid" 2>/dev/null; do sleep 0.5; done
    fi
    # shellcheck disable=SC2086 # the prefix is words
    { time $priority "$@" >"$BG_LOGS/$name.log" 2>&1 </dev/null || rc=$?; } 2>"$BG_LOGS/$name.cpu"
    echo "$rc $SECONDS" >"$BG_LOGS/$name.status.tmp"
    mv "$BG_LOGS/$name.status.tmp" "$BG_LOGS/$name.status"
  ) &
  bg_pid[$name]=$!
  set +m
  bg_began[$name]=$SECONDS
  bg_finish[$name]=$finish
  bg_names+=("$name")
  echo "== background: $name (${priority:-normal priority}${after:+, after $after}: $*; log $BG_LOGS/$name.log)"
}

# _bg_status NAME: "RC END" once the job has ended (RC "killed" when it ended without saying), else nothing.
_bg_status() {
  if [ -e "$BG_LOGS/$1.status" ]; then
    cat "$BG_LOGS/$1.status"
  elif ! kill -0 "${bg_pid[$1]}" 2>/dev/null; then
    echo "killed $SECONDS"
  fi
}

# _bg_cpu NAME: the job's CPU seconds (user + system), "?" if it did not say.
_bg_cpu() {
  awk '{ printf "%.0f", $1 + $2; ok = 1 } END { if (!ok) printf "?" }' "$BG_LOGS/$1.cpu" 2>/dev/null || echo "?"
}

_bg_failed() { # _bg_failed NAME RC
  local lines shown=""
  lines=$(wc -l <"$BG_LOGS/$1.log")
  if [ "$lines" -gt 300 ]; then shown=", the last 300"; fi
  echo "background job $1 FAILED (exit status $2); its log ($BG_LOGS/$1.log, $lines lines$shown):"
  tail -n 300 "$BG_LOGS/$1.log"
  echo "background job $1 FAILED (exit status $2): the suite fails" >&2
  exit 1
}

bg_check() {
  local name status
  for name in "${bg_names[@]}"; do
    [ -z "${bg_done[$name]:-}" ] || continue
    status=$(_bg_status "$name")
    if [ -n "$status" ] && [ "${status%% *}" != 0 ]; then
      bg_done[$name]=1
      _bg_failed "$name" "${status%% *}"
    fi
  done
}

bg_wait() {
  local name status began report
  for name in "$@"; do
    [ -z "${bg_done[$name]:-}" ] || continue
    began=$SECONDS
    report=$((SECONDS + 60))
    while status=$(_bg_status "$name") && [ -z "$status" ]; do
      if [ $((SECONDS - bg_began[$name])) -ge "$BG_TIMEOUT" ]; then
        kill -TERM -- "-${bg_pid[$name]}" 2>/dev/null || true
        wait "${bg_pid[$name]}" 2>/dev/null || true
        status="timed-out-after-${BG_TIMEOUT}-s"
        break
      fi
      if [ "$SECONDS" -ge "$report" ]; then
        echo "== still waiting for background $name ($((SECONDS - bg_began[$name])) s so far):" \
          "$(tail -n 1 "$BG_LOGS/$name.log" | cut -c1-160)"
        report=$((SECONDS + 60))
      fi
      sleep 0.5
    done
    wait "${bg_pid[$name]}" 2>/dev/null || true
    bg_done[$name]=1
    [ "${status%% *}" = 0 ] || _bg_failed "$name" "${status%% *}"
    timings+=("background $name: $((${status#* } - bg_began[$name])) s, $(_bg_cpu "$name") s CPU (the foreground waited $((SECONDS - began)) s)")
    echo "== background: $name done in $((${status#* } - bg_began[$name])) s (waited for $((SECONDS - began)) s)"
  done
}

bg_stop_all() {
  local name
  for name in "${bg_names[@]}"; do
    [ -z "${bg_done[$name]:-}" ] && [ -z "$(_bg_status "$name")" ] || continue
    if [ "${bg_finish[$name]}" = 1 ]; then
      echo "== stopping early: waiting for background $name to finish (log $BG_LOGS/$name.log)" >&2
      wait "${bg_pid[$name]}" || true
    else
      kill -TERM -- "-${bg_pid[$name]}" 2>/dev/null || true
      wait "${bg_pid[$name]}" 2>/dev/null || true
    fi
  done
}

_step_end() {
  local busy idle
  if [ -n "$step_title" ]; then
    read -r busy idle < <(_cpu_ticks)
    timings+=("$step_title: $((SECONDS - step_began)) s (the machine's CPUs busy $(((busy - step_busy0) / $(getconf CLK_TCK))) s)")
  fi
  step_title=""
}

step() {
  bg_check
  _step_end
  step_title=$1
  step_began=$SECONDS
  read -r step_busy0 _ < <(_cpu_ticks)
  echo "== $1"
}

print_timings() {
  _step_end
  local busy idle hz
  read -r busy idle < <(_cpu_ticks)
  hz=$(getconf CLK_TCK)
  echo "== wall time: $SECONDS s; the machine's CPUs ($(nproc)) busy $(((busy - cpu_busy0) / hz)) s, idle $(((idle - cpu_idle0) / hz)) s"
  printf '%s\n' "${timings[@]}"
}
