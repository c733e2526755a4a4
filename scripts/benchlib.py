"""Helpers shared by the benchmarks (scripts/bench-scrape, bench-ingest, bench-proxy, bench-llm): starting pinned
servers and stopping them, nginx as a peer (configuration, start, its processes), reading their CPU time, waiting for a
quiet machine, logging. Standard library only.

A script sets `benchlib.PROG` (the prefix of its log lines) and installs `on_signal` for SIGINT/SIGTERM."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

PROG = "bench"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = []  # Popen objects, each the leader of its own session/process group


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def run_in_venv():
    """Re-executes the calling script with .venv's python (prepared by `scripts/install-deps --python`, which is
    idempotent) unless it already runs there."""
    venv = os.path.join(ROOT, ".venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    subprocess.run([os.path.join(ROOT, "scripts", "install-deps"), "--python"], check=True, stdout=sys.stderr)
    python = os.path.join(venv, "bin", "python")
    os.execv(python, [python, os.path.abspath(sys.argv[0])] + sys.argv[1:])


# ---------------------------------------------------------------- processes

def cleanup():
    for p in reversed(STARTED):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for p in STARTED:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    STARTED.clear()


def on_signal(signum, _frame):
    log(f"signal {signum}: stopping")
    cleanup()
    sys.exit(128 + signum)


def stop(p):
    if p in STARTED:
        STARTED.remove(p)
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def autogroup_nice(nice):
    """A preexec_fn for a child started in a new session: gives the session's scheduler autogroup the nice value
    `nice`. With autogroups on (/proc/sys/kernel/sched_autogroup_enabled), CFS shares a CPU between sessions
    first and applies a process's own nice only within its session, so `nice -n -15` alone does not prefer a
    measured process over another session's build; the autogroup's nice does. Needs root for values < 0;
    silently does nothing where autogroups do not exist."""
    def apply():
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:
            pass
    return apply


def start(argv, errfile, cpu, prefix=(), preexec=None):
    """Starts `prefix taskset -c cpu argv` in its own session, stdout and stderr to errfile. prefix and taskset
    must exec (nice does), so that the Popen's pid is the server itself. preexec runs in the child after setsid."""
    err = open(errfile, "w")
    p = subprocess.Popen(list(prefix) + ["taskset", "-c", str(cpu)] + argv, stdin=subprocess.DEVNULL,
                         stdout=err, stderr=err, start_new_session=True, preexec_fn=preexec)
    STARTED.append(p)
    return p


def wait_for_address(p, errfile, timeout=60):
    """The port of the first 127.0.0.1:PORT the server writes to its log."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(errfile) as f:
            m = re.search(r"127\.0\.0\.1:(\d+)", f.read())
        if m:
            return int(m.group(1))
        if p.poll() is not None:
            die(f"server exited ({p.returncode}) before listening; see:\n" + open(errfile).read())
        time.sleep(0.05)
    die(f"server did not report its address within {timeout}s")


# ---------------------------------------------------------------- nginx (the peer of scripts/bench-proxy and bench-llm)

# The common part of every nginx configuration the benchmarks write: one worker, no access log, keep-alive
# connections that last the run, everything under the prefix folder (nginx -p) of that instance. {body}: its servers.
NGINX_COMMON = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{body}
}}
"""


def nginx_binary():
    """nginx on PATH, else /usr/sbin/nginx (Debian's, not on an unprivileged user's PATH); None when neither."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def write_nginx_config(work, name, body):
    """Creates the prefix folder work/name (0755: nginx's worker runs as nobody when started by root, so `work` must
    be 0755 too) and its nginx.conf (NGINX_COMMON around body). Returns (prefix, path of the configuration)."""
    prefix = os.path.join(work, name)
    os.makedirs(prefix, mode=0o755)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_COMMON.format(prefix=prefix, body=body))
    return prefix, conf


def start_nginx(work, name, body, cpu, prefix=(), preexec=None):
    """Starts nginx (master in the foreground, `daemon off`, and its one worker) with the configuration
    write_nginx_config writes, through start() (pinned to cpu, under prefix, preexec after setsid: the worker inherits
    all three). Returns (Popen of the master, its stderr file)."""
    folder, conf = write_nginx_config(work, name, body)
    errfile = os.path.join(folder, "stderr.log")
    p = start([nginx_binary() or "nginx", "-p", folder, "-e", f"{folder}/error.log", "-c", conf, "-g", "daemon off;"],
              errfile, cpu, prefix, preexec)
    return p, errfile


def family(pid):
    """pid and its children (an nginx master and its worker)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


# ---------------------------------------------------------------- CPU and load

def cpu_seconds(pids):
    """utime + stime of the processes (each with all its threads), from /proc/PID/stat."""
    user, system = cpu_split(pids)
    return user + system


def cpu_split(pids):
    """(utime, stime) in seconds of the processes (each with all its threads), from /proc/PID/stat."""
    user = system = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime (field 14)
        system += int(fields[12])  # stime (field 15)
    return user / CLK_TCK, system / CLK_TCK


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def machine_busy():
    """Busy jiffies of all CPUs together (from /proc/stat), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def children_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_for_quiet(server_cpu_now, limit_pct, max_wait):
    """Wait (at most max_wait s) until the machine, minus the idle server, is busy below limit_pct of
    one core over a 1 s sample. Returns the last sample's busy percentage."""
    deadline = time.time() + max_wait
    while True:
        b0, s0 = machine_busy(), server_cpu_now()
        time.sleep(1)
        pct = 100 * ((machine_busy() - b0) - (server_cpu_now() - s0))
        if pct < limit_pct or time.time() >= deadline:
            return pct


def wait_idle(server_cpu_now, max_wait=120):
    """Wait until the server has finished work left over from an earlier run: less than 10 ms of CPU in 0.5 s."""
    deadline = time.time() + max_wait
    while time.time() < deadline:
        c0 = server_cpu_now()
        time.sleep(0.5)
        if server_cpu_now() - c0 < 0.011:
            return
    log("server still busy; measuring anyway")


def loadavg(n=1):
    """The first n load averages (1, 5, 15 min), space-separated."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:n])


# ---------------------------------------------------------------- reporting

def parse_duration_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def sh(cmd):
    """The first line a shell command prints (stdout, else stderr), or "?"."""
    try:
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
        text = r.stdout.strip() or r.stderr.strip()
        return text.splitlines()[0] if text else "?"
    except Exception as e:  # noqa: BLE001 -- report whatever went wrong
        return f"? ({e})"


def fmt(x, d=1):
    if x != x:  # nan
        return "–"
    return f"{x:,.{d}f}"
