"""Running untrusted programs: limits, privilege drop, namespaces, a uid pool, cleanup (§5.1, code).

The student's programs run here, never in the caller's process, and this file only says what a program
produced; verify.check_code judges it, out of the program's reach:

    run(program, tests, timeout_s)     per test, what the program produced: stdout, values of expressions
    sandbox_capabilities()             what isolation this machine gives (probed once)

A test is {"stdin": text, "name": "__main__" or "solution", "steps": [...]}: the program runs with that stdin
as module `name`, then the steps: ["exec", statement], ["eval", expression] or ["call", func_name, args]. No
expected output ever comes here. Values come back as plain data (numbers, strings, bytes, lists, tuples,
dicts, sets), as harness.encode writes them and `decode` rebuilds them; an object of the program's own class
is an error.

How it runs. One call = one sandboxed process tree (harness.py, by path). Stage 1, started in a new
session, joins the call's cgroup, makes new network, PID, IPC and mount namespaces, gives the latter a root of
its own, sets the rlimits and starts stage 2, a fresh interpreter (so the 512 MB stack limit sizes its main
thread's stack: recursive @lru_cache solutions need it). Stage 2 forks one child per test, which drops
privileges and runs the program, and kills it when its time is up (a C loop such as sum(range(10**12)) can't
delay that), then every other process of the namespace: one test's crash, daemon or sabotage never reaches
the next. Limits are set in stage 1, not in a preexec_fn, which is unsafe when the caller has threads
(PyTorch, tokenizers).

Bounds of one call (sandbox_capabilities() says what this machine gives):
  time        each test timeout_s, then SIGKILL; the whole call n_tests * timeout_s + 5 s, whatever the program
              prints, writes or forks (one deadline; a test gets what is left of it), plus cleanup (~10 ms)
  memory      1 GiB for all processes of the call together (a cgroup, v1 memory or v2, made per call under the
              caller's own; the sandbox's own processes take ~10 MB of it); where no cgroup can be made, 1 GiB
              per process (RLIMIT_AS) x 16 processes
  forks       64 per call, threads included (cgroup pids); without a cgroup RLIMIT_NPROC 16 (root: per uid, so
              per call; not root: over all of the caller's processes)
  CPU         RLIMIT_CPU = the call's time, per process; nothing stops a program using every core meanwhile
  files       it sees only the system folders, the interpreter and its packages (read-only), /dev, its own
              folder and an empty /tmp and /dev/shm (mount namespace): not the repo, the caller's files or
              datasets; 10 MB per file written, stdout included (RLIMIT_FSIZE); 256 open; no core dumps
  IPC         own namespace: SysV segments, queues and semaphores, POSIX queues die with the call
  network     own namespace: no interface but a down loopback
  processes   own PID namespace and /proc: it sees only its own processes
  caller      environment variables not passed; output read back <= 64 MB per call (10 MB stdout, 10 MB values
              per test)
As root each call runs as its own uid from a pool (64100-64131, uids without a passwd entry, held under a file
lock so concurrent calls never share one), without capabilities. If those uids can't be used it falls back to
`nobody`, and last to no privilege drop (caps["error"] says why). Not root: the program runs as the caller's
user, in a user namespace where the kernel allows one (then all of the above but the cgroup hold); where it
doesn't, it can read and write that user's files and reach its processes: run untrusted models as root or in a
container. Without a mount namespace, what the uid left in /tmp, /var/tmp, /dev/shm and /run/lock is removed
afterwards, and world-readable files are readable (keep datasets where the sandbox uid can't read them, e.g.
root's home). macOS is untested (no namespaces, cgroups or RLIMIT_AS there).
Deviations: the paper does not say how it ran programs; these bounds and this isolation are this project's.

    python -m execution.sandbox         # prints sandbox_capabilities()
    python -m pytest tests/test_sandbox.py -q
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

MEMORY_LIMIT_BYTES = 1 << 30     # per call with a cgroup, else per process
OUTPUT_LIMIT_BYTES = 10 << 20    # RLIMIT_FSIZE (stdout), and the most read back of one test's values
STACK_LIMIT_BYTES = 512 << 20
MAX_PROCESSES = 64               # per call, threads included (cgroup pids)
FALLBACK_PROCESSES = 16          # per uid without a cgroup: RLIMIT_NPROC (threads too) x RLIMIT_AS
_STARTUP_S = 4.5                 # the call's slack over n_tests * timeout_s: interpreters, forks, a busy machine
_GRACE_S = 0.5                   # past the deadline, for stage 2's last frame; then the caller kills it
_CALL_BYTES_CAP = 64 << 20       # never keep more than this from one call
_UID_BASE, _UID_POOL_SIZE = 64100, 32
_LOCK_DIR = "/tmp/sml-sandbox-locks"
_CGROUP_ROOT = "/sys/fs/cgroup"
_HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")
# Stage 2 runs with -S and gets the caller's package folders directly: numpy, sortedcontainers still import.
_SITE_PACKAGES = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")
                  and ".local" not in p]
_WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def _visible() -> list:
    """What programs see of this machine's files: the system folders, the interpreter, its packages, the
    harness (each folder once, not inside another), and /dev."""
    paths = [p for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc") if os.path.lexists(p)]
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_SITE_PACKAGES, _HARNESS):
        paths += [os.path.abspath(p), os.path.realpath(p)]
    paths += [os.path.dirname(os.path.realpath(sys.executable))]
    kept = []
    for p in sorted(set(paths), key=len):
        if not any(p.startswith(k.rstrip("/") + "/") for k in kept if not os.path.islink(k)):
            kept.append(p)
    return kept + ["/dev"]


_VISIBLE = _visible()


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not the program's fault)."""


class ProgramError(Exception):
    """What an expression of a test raised in the program (its message says what)."""


class Values(dict):
    """The values of a test's expressions, by name ("<0>", "<1>", ...); one that raised in the program raises
    its ProgramError when read, so the judge meets it only if it needs it (`x is None or x.y == 1`)."""

    def __getitem__(self, name):
        value = super().__getitem__(name)
        if isinstance(value, ProgramError):
            raise value
        return value


def run(program: str, tests: list[dict], timeout_s: float) -> list[dict]:
    """Run `program` on each test in one sandbox; per test what it produced:
    {"status": "ran" | "error" | "timeout", "stdout": str, "values": Values of its "eval"/"call" steps,
    "error": str or None, "compile_error": bool, "time_s": float}."""
    caps = sandbox_capabilities()
    with _sandbox_uid(caps["uid_pool"]) as uid:  # the clock starts once the call has its uid
        deadline = time.monotonic() + len(tests) * timeout_s + _STARTUP_S
        frames, info = _run_stages(program, tests, timeout_s, deadline, uid, caps["dedicated_uid"])
    if "fatal" in info:
        raise SandboxError(info["fatal"])
    return [_produced(frames.get(i), tests[i], info, timeout_s) for i in range(len(tests))]


def _produced(frame, test, info, timeout_s) -> dict:
    """What one test's frame says the program produced."""
    out = {"status": "ran", "stdout": "", "values": Values(), "error": None, "compile_error": False, "time_s": None}
    if frame is None:
        end = "the call's time limit" if info.get("timed_out") else info.get("exit", "?")
        return {**out, "status": "timeout" if info.get("timed_out") else "error", "error": f"not run: {end}"}
    header, stdout, payload = frame
    out.update(stdout=stdout.decode("utf-8", "replace"), time_s=header.get("time_s"))
    if "error" in header:
        return {**out, "status": "error", "error": header["error"]}
    if "timeout" in header:
        limit = f"time limit {timeout_s:g} s" if header["timeout"] == "test" else "time limit of the whole call"
        return {**out, "status": "timeout", "error": f"{limit} exceeded"}
    if header.get("payload_cut"):
        return {**out, "status": "error", "error": f"the values are over {OUTPUT_LIMIT_BYTES >> 20} MB"}
    try:
        result = json.loads(payload) if payload else None
        values = Values({f"<{k}>": decode(v["value"]) if "value" in v else ProgramError(str(v["error"]))
                         for k, v in enumerate(result["values"] if result and "values" in result else [])})
    except Exception:  # anything malformed (RecursionError, a list as a dict key) is the program's doing
        return {**out, "status": "error", "error": "the program's result is malformed"}
    if result and result.get("error"):
        return {**out, "status": "error", "error": str(result["error"]),
                "compile_error": bool(result.get("compile_error"))}
    if "signal" in header:
        why = f"memory limit ({MEMORY_LIMIT_BYTES >> 20} MB for the whole call) exceeded" if header.get("oom") \
            else f"the program crashed ({header['signal']})"
        return {**out, "status": "error", "error": why}
    if result is None and (test.get("steps") or header.get("exit_code")):  # os._exit() before its result
        return {**out, "status": "error", "error": f"the program ended early (exit code {header.get('exit_code')})"}
    return {**out, "values": values}


def decode(x, depth: int = 0):
    """harness.encode's plain data back into Python values, built here: only exact builtin types."""
    if depth > 101:
        raise ValueError("nested too deeply")
    if x is None or type(x) in (bool, int, float, str):
        return x
    tag, items = x[0], x[1:]  # a list: [type name, items...]
    if tag in ("list", "tuple", "set", "frozenset"):
        kind = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag]
        return kind(decode(v, depth + 1) for v in items)
    if tag == "dict":
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in items}
    (value,) = items
    if tag == "type":
        return {t.__name__: t for t in (bool, int, float, str, bytes, list, tuple, dict, set, frozenset,
                                        type(None))}[value]
    return {"int": lambda s: int(s, 16), "float": float, "bytes": bytes.fromhex}[tag](value)


# --- one sandboxed run: workdir, cgroup, stage 1, reading the frames, cleaning up ---

def _run_stages(program, tests, timeout_s, deadline, uid, dedicated):
    """Run all tests in one fresh sandbox: ({index: (header, stdout, payload)}, info from stages 1 and 2)."""
    workdir, root = tempfile.mkdtemp(prefix="sml-sandbox-"), tempfile.mkdtemp(prefix="sml-sandbox-root-")
    cgroup = _make_cgroup(f"sml-sandbox-{uid if uid is not None else f'{os.getpid()}-{threading.get_ident()}'}")
    read_fd = write_fd = proc = None
    frames, info = {}, {}
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        read_fd, write_fd = os.pipe()
        limits = _rlimits(uid, bool(cgroup), deadline - time.monotonic())
        cfg = {"fd": write_fd, "uid": uid, "deadline": deadline, "rlimits": limits, "cgroup": cgroup,
               "oom_file": next((os.path.join(c, f) for c in cgroup for f in ("memory.oom_control", "memory.events")
                                 if os.path.exists(os.path.join(c, f))), None),
               "site_packages": _SITE_PACKAGES, "output_limit": OUTPUT_LIMIT_BYTES,
               "memory_mb": MEMORY_LIMIT_BYTES >> 20, "root": root, "workdir": workdir, "visible": _VISIBLE}
        with tempfile.TemporaryFile() as job:  # on stdin: never a file the program could open
            job.write(json.dumps({"program": program, "tests": tests, "timeout_s": timeout_s}).encode())
            job.seek(0)
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _HARNESS, "supervise", json.dumps(cfg)], cwd=workdir,
                env=_child_env(workdir), stdin=job, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        write_fd = None
        frames, info = _collect(read_fd, deadline)
        return frames, info
    finally:
        for fd in (read_fd, write_fd):
            if fd is not None:
                os.close(fd)
        if proc is not None:
            _stop(proc)
        if uid is not None and dedicated:
            if not (info.get("done") and info.get("pidns")):  # else stage 2 has killed and reaped all but itself
                _kill_uid(uid)
            _remove_files_of(uid)
        for folder in cgroup:
            _remove_cgroup(folder)
        for folder in (workdir, root):  # the new root's mounts were in the call's namespace only
            shutil.rmtree(folder, ignore_errors=True)


def _collect(fd, deadline):
    """Read the frames until stage 2 is done, the sandbox closes its end, or the call's deadline has
    passed."""
    frames, info, buf, total = {}, {}, bytearray(), 0
    while True:
        left = deadline + _GRACE_S - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            info["timed_out"] = True
            return frames, info
        chunk = os.read(fd, 1 << 20)
        total += len(chunk)
        if not chunk or total > _CALL_BYTES_CAP:
            info.setdefault("exit", f"the output of all tests passed {_CALL_BYTES_CAP >> 20} MB" if chunk else "?")
            return frames, info
        buf += chunk
        while (end := buf.find(b"\n")) >= 0:
            header = json.loads(buf[:end])  # written by stages 1 and 2, which never run the program's code
            sizes = header.pop("sizes")
            if len(buf) < end + 1 + sum(sizes):
                break
            bodies, start = [], end + 1
            for n in sizes:
                bodies.append(bytes(buf[start:start + n]))
                start += n
            del buf[:start]
            if "i" in header:
                frames[header["i"]] = (header, *bodies)
            elif header.get("done"):  # stage 2 is done: no need to wait for the namespace to wind down
                info["done"] = True
                return frames, info
            else:
                info.update(header)


def _stop(proc):
    """Kill stage 1's process group (stage 2 with it: the PID namespace takes the rest) and reap stage 1."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _rlimits(uid, cgroup, budget) -> dict:
    limits = {"RLIMIT_FSIZE": OUTPUT_LIMIT_BYTES, "RLIMIT_CORE": 0, "RLIMIT_NOFILE": 256,
              "RLIMIT_STACK": STACK_LIMIT_BYTES, "RLIMIT_CPU": math.ceil(budget) + 1}
    if cgroup:
        return limits
    limits["RLIMIT_AS"] = MEMORY_LIMIT_BYTES
    if uid is not None:
        limits["RLIMIT_NPROC"] = FALLBACK_PROCESSES
    elif os.geteuid() != 0 and os.path.isdir("/proc"):  # counted over all of the caller's processes
        limits["RLIMIT_NPROC"] = len(_pids_of(os.getuid())) + FALLBACK_PROCESSES
    return limits


def _child_env(workdir) -> dict:
    """Built from scratch: the caller's variables (tokens, keys) never reach the program."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir,
            "TMPDIR": workdir, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# --- a cgroup per call: memory and processes of the whole call, where the machine lets us make one ---

def _make_cgroup(name) -> list:
    """The folders of a fresh cgroup under the caller's own (v1: one in `memory`, one in `pids`; v2: one),
    with the call's memory and process limits; [] where none can be made (not root, no hierarchy)."""
    try:
        with open("/proc/self/cgroup") as f:
            own = {ctl: path for _, ctls, path in (line.rstrip("\n").split(":", 2) for line in f)
                   for ctl in ctls.split(",")}
        if os.path.exists(f"{_CGROUP_ROOT}/cgroup.controllers"):  # v2 mounted as the only hierarchy
            plan = [(f"{_CGROUP_ROOT}{own['']}", {"memory.max": MEMORY_LIMIT_BYTES, "pids.max": MAX_PROCESSES,
                                                   "memory.swap.max": 0})]
        else:
            plan = [(f"{_CGROUP_ROOT}/memory{own['memory']}", {"memory.limit_in_bytes": MEMORY_LIMIT_BYTES,
                                                                "memory.memsw.limit_in_bytes": MEMORY_LIMIT_BYTES}),
                    (f"{_CGROUP_ROOT}/pids{own['pids']}", {"pids.max": MAX_PROCESSES})]
    except (OSError, KeyError, ValueError):
        return []
    made = []
    try:
        for parent, settings in plan:
            folder = os.path.join(parent, name)
            _remove_cgroup(folder)  # a call that crashed may have left it
            os.mkdir(folder)
            made.append(folder)
            for key, value in settings.items():
                try:
                    with open(os.path.join(folder, key), "w") as f:
                        f.write(str(value))
                except OSError:
                    if "swap" not in key:  # swap accounting is optional: no swap, no swap limit needed
                        raise
        return made
    except OSError:
        for folder in made:
            _remove_cgroup(folder)
        return []


def _remove_cgroup(folder):
    """Kill what is left in it (nothing, normally), then remove it."""
    for _ in range(500):
        try:
            os.rmdir(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, "cgroup.procs")) as f:
                for pid in f.read().split():
                    _signal(int(pid), signal.SIGKILL)
            time.sleep(0.002)


def _signal(pid, sig):
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


# --- the uid pool, and sweeping a uid's processes and files after a run ---

@contextlib.contextmanager
def _sandbox_uid(pool):
    """A uid from the pool, held under a file lock (across threads and processes) for the whole call."""
    if not pool:
        yield None
        return
    import fcntl
    os.makedirs(_LOCK_DIR, mode=0o700, exist_ok=True)
    st = os.lstat(_LOCK_DIR)
    if st.st_uid != 0 or not os.path.isdir(_LOCK_DIR) or os.path.islink(_LOCK_DIR):
        raise SandboxError(f"{_LOCK_DIR} must be a folder owned by root; remove it and retry.")
    fd = None
    for uid in random.sample(pool, len(pool)):
        fd = os.open(f"{_LOCK_DIR}/{uid}", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            os.close(fd)
            fd = None
    if fd is None:  # all busy: wait for one
        uid = random.choice(pool)
        fd = os.open(f"{_LOCK_DIR}/{uid}", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield uid
    finally:
        os.close(fd)


def _pids_of(uid) -> list:
    """Live (non-zombie) processes whose real, effective or saved uid is `uid`."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="utf-8", errors="replace") as f:
                fields = dict(line.split(":", 1) for line in f.read(2048).splitlines() if ":" in line)
        except OSError:
            continue
        if not fields.get("State", "").strip().startswith("Z") and str(uid) in fields.get("Uid", "").split():
            pids.append(int(name))
    return pids


def _kill_uid(uid):
    """SIGKILL every process of a dedicated uid: without a PID namespace, daemons that escaped the session."""
    if not os.path.isdir("/proc"):
        return
    for _ in range(200):
        pids = _pids_of(uid)
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.01)


def _remove_files_of(uid):
    """Remove what a dedicated uid left in the world-writable folders."""
    for folder in _WORLD_WRITABLE:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for e in entries:
                with contextlib.suppress(OSError):
                    if e.stat(follow_symlinks=False).st_uid == uid:
                        if e.is_dir(follow_symlinks=False):
                            shutil.rmtree(e.path, ignore_errors=True)
                        else:
                            os.unlink(e.path)


# --- capabilities: probed once, lazily (the math worker process imports verify, not this) ---

_caps = None
_caps_lock = threading.Lock()


def sandbox_capabilities() -> dict:
    """What isolation this machine gives: privilege_drop, uid_pool, netns, pidns, ipcns, cgroup, memory_bound,
    ...

    Found by running a tiny program in the sandbox with each uid strategy, best first.
    """
    global _caps
    with _caps_lock:
        if _caps is None:
            _caps = _probe()
        return _caps


def _probe() -> dict:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    caps = {"platform": sys.platform, "root": root, "privilege_drop": False, "uid_pool": [], "dedicated_uid": False,
            "netns": False, "pidns": False, "ipcns": False, "mountns": False, "cgroup": False, "rlimits": [],
            "memory_bound": "?"}
    strategies = [(p, d) for p, d in ((_free_uids(), True), (_nobody_uid(), False)) if p] if root else []
    errors = []
    probe = [{"steps": [["eval", "os.getuid()"]]}]
    for pool, dedicated in strategies + [([], False)]:  # the last resort: no privilege drop
        with _sandbox_uid(pool) as uid:
            frames, info = _run_stages("import os, fractions", probe, 5.0, time.monotonic() + 10, uid, dedicated)
        got = _produced(frames.get(0), probe[0], info, 5.0)
        if got["status"] == "ran" and isinstance(dict.get(got["values"], "<0>"), int):
            limits = info.get("rlimits", [])
            caps.update(privilege_drop=uid is not None and got["values"]["<0>"] == uid, uid_pool=pool,
                        dedicated_uid=dedicated,
                        **{k: info.get(k, False) for k in ("netns", "pidns", "ipcns", "mountns", "cgroup")},
                        rlimits=limits,
                        memory_bound=f"{MEMORY_LIMIT_BYTES >> 20} MB per call (cgroup)" if info.get("cgroup") else
                        f"{MEMORY_LIMIT_BYTES >> 20} MB per process (RLIMIT_AS) x {FALLBACK_PROCESSES} processes"
                        if "RLIMIT_AS" in limits else "not enforced")
            if errors:
                caps["error"] = "; ".join(errors)
            return caps
        errors.append(str(info.get("fatal") or got["error"] or info.get("exit")))
    caps["error"] = "; ".join(errors)
    return caps


def _nobody_uid() -> list:
    import pwd
    try:
        return [pwd.getpwnam("nobody").pw_uid]
    except KeyError:
        return []


def _free_uids() -> list:
    import pwd
    uids = []
    for uid in range(_UID_BASE, _UID_BASE + _UID_POOL_SIZE):
        try:
            pwd.getpwuid(uid)  # a real account: not ours to kill and sweep
        except KeyError:
            uids.append(uid)
    return uids


if __name__ == "__main__":
    print(json.dumps(sandbox_capabilities(), indent=2))
