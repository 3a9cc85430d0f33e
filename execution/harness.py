"""Inside the sandbox: the processes that run a student's program on a problem's tests (§5.1, code domain).

sandbox.py starts this file by path, with the job (the program, and what to run for each test) on stdin:

    python -I -S execution/harness.py supervise CFG
        stage 1: joins the call's cgroup; makes new network, PID, IPC and mount namespaces, the last with a
        root of its own (new_root); sets the rlimits; starts stage 2
    python -s -S execution/harness.py run CFG
        stage 2, pid 1 of the new PID namespace: for each test, forks a child that drops privileges and runs
        the program

Stage 2 never runs the program's code. Each test runs in a child of its own, as the sandbox uid, killed from
outside when its time is up; after each test every other process of the namespace is killed. The job holds the
program and, per test, its stdin and the expressions to evaluate (a call, the program's parts of an assert),
never an expected output: what comes back is what the program produced, its stdout and those values as plain
JSON data (`encode`), and the caller judges it. Frames to the caller (fd cfg["fd"]) are a JSON header line and
the raw bytes it announces; the child never holds that fd, and stages 1 and 2 are not dumpable (and, as root,
another uid), so the program can't write them. Tests import this file directly (encode).

Deviation: stage 2 runs with -s -S, not -I: -I ignores PYTHONHASHSEED=0 (set order would vary between runs),
so sandbox.py builds the environment from scratch instead; -S skips site's .pth files (a faster start).
"""
import builtins
import collections
import ctypes
import json
import os
import select
import signal
import sys
import time

# LiveCodeBench's implicit imports: `from m import *` for each, then the modules themselves by name
STAR_IMPORTS = ("typing", "collections", "heapq", "bisect", "itertools", "functools", "math", "builtins")
MODULE_IMPORTS = ("collections", "heapq", "bisect", "itertools", "functools", "math", "string", "re", "sys", "copy",
                  "random", "operator")
THREAD_STACK_BYTES = 32 << 20   # not RLIMIT_STACK: glibc would reserve that much address space per thread
RECURSION_LIMIT = 50000         # as LiveCodeBench
MAX_DEPTH = 100                 # of a returned value's nesting
DICTS = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)
TYPES = {t.__name__: t for t in (bool, int, float, str, bytes, list, tuple, dict, set, frozenset, type(None))}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x08000000, 0x40000000, \
    0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = \
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18


def supervise(cfg):
    """Stage 1: the cgroup, new namespaces and the rlimits, inherited by stage 2, a fresh interpreter (so that
    RLIMIT_STACK sizes its main thread's stack). Sends a frame with what it got, and one with how stage 2
    ended."""
    import resource
    report = {"stage1": True, "cgroup": bool(cfg["cgroup"]), "rlimits": []}
    try:
        for folder in cfg["cgroup"]:  # before forking: every process of the call is in it
            with open(os.path.join(folder, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
    except OSError as e:
        send(cfg["fd"], {"fatal": f"cannot join the cgroup {cfg['cgroup']}: {e}"})
        return
    adjust_oom_score(-1000)  # the out-of-memory killer takes the program, not stages 1 and 2
    libc = ctypes.CDLL(None, use_errno=True)
    unshare = libc.unshare
    if os.geteuid() != 0:  # a user namespace lets an unprivileged user make the others, where the kernel allows
        outer = os.geteuid(), os.getegid()
        report["userns"] = unshare(CLONE_NEWUSER) == 0
        try:  # root in it, and ourselves outside: new_root's files need an owner
            for name, text in (("uid_map", f"0 {outer[0]} 1"), ("setgroups", "deny"), ("gid_map", f"0 {outer[1]} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError:
            pass
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0 (after writing our /proc files): the program can't open our fds
    for name, flag in (("netns", CLONE_NEWNET), ("pidns", CLONE_NEWPID), ("ipcns", CLONE_NEWIPC)):
        report[name] = unshare(flag) == 0
    if cfg["oom_file"]:  # opened here: the new root has no /sys
        cfg["oom_fd"] = os.open(cfg["oom_file"], os.O_RDONLY)
        os.set_inheritable(cfg["oom_fd"], True)
    try:
        report["mountns"] = cfg["new_root"] = unshare(CLONE_NEWNS) == 0 and new_root(cfg, libc)
    except OSError as e:  # half made: this namespace is ours alone, and its root is still the old one
        report["mountns"], report["mountns_error"] = False, str(e)
        os.chdir(cfg["workdir"])
    for name, value in cfg["rlimits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            report["rlimits"].append(name)
        except (AttributeError, ValueError, OSError):
            pass
    send(cfg["fd"], report)
    child = os.fork()
    if child == 0:
        try:
            os.execv(sys.executable, [sys.executable, "-s", "-S", __file__, "run", json.dumps(cfg)])
        finally:
            os._exit(127)
    status = os.waitpid(child, 0)[1]
    end = f"killed by {signame(os.WTERMSIG(status))}" if os.WIFSIGNALED(status) else \
        f"exit code {os.waitstatus_to_exitcode(status)}"
    send(cfg["fd"], {"exit": end})


def run(cfg):
    """Stage 2: for each test, a child runs the program; a frame per test says what it produced."""
    job = json.load(sys.stdin)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past RLIMIT_FSIZE a write fails with EFBIG instead of killing
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p not in ("", here)] + cfg["site_packages"]
    import traceback  # noqa: F401  (for describe, in every child)
    implicit = implicit_imports()  # imported while every path is readable
    if cfg.get("new_root"):  # its own /proc: the namespace's processes only
        ctypes.CDLL(None).mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    elif cfg["uid"] is not None:
        reach_libraries()
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/<pid>/fd or mem of stage 2
    for i, test in enumerate(job["tests"]):
        end = min(time.monotonic() + job["timeout_s"], cfg["deadline"])
        if end <= time.monotonic():
            send(cfg["fd"], {"i": i, "timeout": "call"})
            continue
        try:
            stdin, stdout = memfile(test.get("stdin", "").encode()), memfile(b"")
        except OSError as e:  # an input over the file size limit
            send(cfg["fd"], {"i": i, "error": f"the test's input can't be given to the program: {e}"})
            continue
        read_end, write_end = os.pipe()
        t0 = time.monotonic()
        oom_before = oom_kills(cfg.get("oom_fd"))
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            child(cfg, job["program"], test, implicit, stdin, stdout, write_end)
        os.close(write_end)
        payload, timed_out = watch(pid, read_end, end, cfg["output_limit"])
        status = end_test(pid)
        header = {"i": i, "time_s": round(time.monotonic() - t0, 3), "payload_cut": len(payload) > cfg["output_limit"]}
        if timed_out:
            header["timeout"] = "call" if end >= cfg["deadline"] else "test"
        elif os.WIFSIGNALED(status):
            header["signal"] = signame(os.WTERMSIG(status))
            header["oom"] = oom_kills(cfg.get("oom_fd")) > oom_before
        else:
            header["exit_code"] = os.waitstatus_to_exitcode(status)
        send(cfg["fd"], header, read_all(stdout, cfg["output_limit"]), bytes(payload[:cfg["output_limit"]]))
        for fd in (stdin, stdout, read_end):
            os.close(fd)
    send(cfg["fd"], {"done": True})


def child(cfg, program, test, implicit, stdin, stdout, result_fd):
    """One test in a fresh process: fd 0 and 1 on the test's files, the sandbox uid, then the program."""
    me = os.getpid()
    try:
        os.setpgid(0, 0)  # without a PID namespace, stage 2 kills the test's process group
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        for fd in (stdin, stdout, cfg["fd"], cfg.get("oom_fd")):
            if fd is not None:
                os.close(fd)
        become(cfg["uid"])
        import _thread
        _thread.stack_size(THREAD_STACK_BYTES)
        sys.setrecursionlimit(RECURSION_LIMIT)
        result = execute(program, test, implicit, cfg)
    except BaseException as e:  # the sandbox itself failed: the program never ran
        result = {"error": "sandbox: " + describe(e, cfg)}
    if os.getpid() == me:  # a fork of the program that got back here must not report
        try:
            os.write(result_fd, json.dumps(result).encode())
        except BaseException:
            pass
    os._exit(0)


def execute(program, test, implicit, cfg):
    """Run the program, then the test's steps: {"values": [{"value"} or {"error"} per expression],
    "error"}."""
    ns = dict(implicit, __name__=test.get("name", "solution"), __builtins__=builtins)
    sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    out = {"values": []}
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError) as e:
        return {"error": describe(e, cfg), "compile_error": True}
    try:
        try:
            exec(code, ns)
        except SystemExit:
            pass
        for kind, *what in test.get("steps", []):
            if kind == "exec":  # the test's own statements (s = Stack(); s.push(1)): an error ends the test
                exec(compile(what[0], "<test>", "exec"), ns)
                continue
            try:  # an expression's error is its value: the caller may not need it (`x is None or x.y == 1`)
                value = call(ns, *what) if kind == "call" else eval(compile(what[0], "<test>", "eval"), ns)
                out["values"].append({"value": encode(value)})
            except Exception as e:
                out["values"].append({"error": describe(e, cfg)})
    except BaseException as e:
        out["error"] = describe(e, cfg)
    try:
        sys.stdout.flush()
    except BaseException as e:
        out["error"] = out.get("error") or describe(e, cfg)
    return out


def call(ns, func_name, args):
    """LiveCodeBench's functional tests: Solution().func_name(*args), or func_name(*args)."""
    if "Solution" in ns:
        return getattr(ns["Solution"](), func_name)(*args)
    if func_name not in ns:
        raise NameError(f"the program defines no function {func_name!r}")
    return ns[func_name](*args)


def encode(x, depth=0):
    """A value as plain JSON data, for exact builtin types only (a subclass could lie in __eq__ or __repr__):
    scalars as themselves, the rest as [type name, items...]; sandbox.decode reverses it."""
    t = type(x)
    if depth > MAX_DEPTH:
        raise ValueError(f"the value is nested more than {MAX_DEPTH} deep")
    if x is None or t in (bool, str):
        return x
    if t is int:
        return x if -2 ** 63 < x < 2 ** 63 else ["int", hex(x)]  # hex: no limit on digits, unlike str()
    if t is float:
        return x if x - x == 0 else ["float", repr(x)]  # nan and inf are not JSON
    if t in (list, tuple, set, frozenset):
        return [t.__name__] + [encode(v, depth + 1) for v in x]
    if t in DICTS:
        return ["dict"] + [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(x)]
    if t is bytes:
        return ["bytes", x.hex()]
    if t is type and TYPES.get(x.__name__) is x:
        return ["type", x.__name__]
    if t.__module__ == "numpy" and hasattr(x, "tolist"):
        return encode(x.tolist(), depth + 1)
    raise TypeError(f"the value is a {t.__name__} object, not plain data (numbers, strings, lists, tuples, "
                    "dicts, sets)")


def describe(e, cfg):
    """An exception as one line for the feedback, with the program's line number."""
    import errno
    import traceback
    if isinstance(e, MemoryError):
        return f"MemoryError: memory limit ({cfg['memory_mb']} MB) exceeded"
    if isinstance(e, OSError) and e.errno == errno.EFBIG:
        return f"output limit ({cfg['output_limit'] >> 20} MB) exceeded"
    line = traceback.format_exception_only(type(e), e)[-1].strip()
    lineno = getattr(e, "lineno", None) if isinstance(e, SyntaxError) else None
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename == "<program>":
            lineno = frame.lineno
    line = line if len(line) <= 1000 else line[:1000] + "..."
    return line + (f" (line {lineno})" if lineno else "")


def new_root(cfg, libc):
    """Make the root of this (new, private) mount namespace hold only what programs need: the system folders
    and the interpreter with its packages, read-only; /dev; an empty /tmp and /dev/shm; the call's folder. Not
    the caller's files, the repo, or datasets, whoever may read them."""
    def mount(source, target, fstype, flags, data=None):
        args = [None if a is None else a.encode() for a in (source, target, fstype)]
        if libc.mount(*args, flags, None if data is None else data.encode()) != 0:
            raise OSError(ctypes.get_errno(), f"mount {source} on {target}: {os.strerror(ctypes.get_errno())}")
    root = cfg["root"]
    os.umask(0o022)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the caller's mounts
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    for path in ["/tmp"] + cfg["visible"] + ["/dev/shm", cfg["workdir"]]:  # /tmp first: the harness may be in it
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if path in ("/tmp", "/dev/shm"):
            os.makedirs(target, exist_ok=True)
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m")
        elif os.path.islink(path):  # /bin -> usr/bin
            os.symlink(os.readlink(path), target)
        else:
            os.mkdir(target) if os.path.isdir(path) else open(target, "w").close()
            mount(path, target, None, MS_BIND | MS_REC)
            if path not in ("/dev", cfg["workdir"]):
                mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    os.makedirs(root + "/proc", exist_ok=True)
    os.chdir(root)  # the old root goes under the new one, then away: unlike chroot, nothing to climb back to
    if libc.pivot_root(b".", b".") != 0 or libc.umount2(b".", 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), "pivot_root")
    os.chdir(cfg["workdir"])
    return True


# --- helpers of stage 2 ---

def implicit_imports():
    ns = {}
    for name in STAR_IMPORTS:
        module = __import__(name)
        public = getattr(module, "__all__", None) or [k for k in vars(module) if not k.startswith("_")]
        ns.update({k: getattr(module, k) for k in public if hasattr(module, k)})
    ns.update({name: __import__(name) for name in MODULE_IMPORTS})
    return ns


def reach_libraries():
    """Let the sandbox uid import from folders it can't reach (an interpreter in root's home, pyenv): open
    each library folder now, as root, and import through /proc/self/fd/N, which the forked children
    inherit. This exposes those folders (their world-readable files), nothing more."""
    moved = {}
    for p in sys.path:
        try:
            moved[p] = f"/proc/self/fd/{os.open(p, os.O_RDONLY | os.O_DIRECTORY)}"
        except OSError:
            pass

    def remap(path):
        for old in sorted(moved, key=len, reverse=True):
            if path == old or path.startswith(old.rstrip("/") + "/"):
                return moved[old] + path[len(old.rstrip("/")):]
        return path
    sys.path[:] = [remap(p) for p in sys.path]
    for module in list(sys.modules.values()):  # packages already imported find their submodules via __path__
        if isinstance(getattr(module, "__path__", None), list):
            module.__path__[:] = [remap(p) for p in module.__path__]
    sys.path_importer_cache.clear()


def become(uid):
    """Drop to the sandbox uid for good (setuid binaries stay plain); without root, leave the namespace's
    capabilities behind in a user namespace of its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    adjust_oom_score(1000)
    if uid is None:
        libc.unshare(CLONE_NEWUSER)
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(f"still uid {os.geteuid()} after dropping to {uid}")
    os.umask(0o077)


def watch(pid, fd, end, limit):
    """Read the child's result until it exits or its time is up: (bytes read, timed out)."""
    payload, exited = bytearray(), os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    wake = [fd] + ([exited] if exited is not None else [])
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return payload, True
            ready = select.select(wake, [], [], left if exited is not None else min(left, 0.005))[0]
            if fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    wake.remove(fd)
                elif len(payload) <= limit:  # past the limit keep draining, keep nothing
                    payload += chunk
            if (exited in ready or exited is None) and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                while fd in wake and len(payload) <= limit and select.select([fd], [], [], 0)[0] \
                        and (chunk := os.read(fd, 1 << 16)):
                    payload += chunk
                return payload, False
    finally:
        if exited is not None:
            os.close(exited)


def end_test(pid):
    """Kill the test's child and all it started; the child's wait status. As pid 1 of the namespace, kill(-1)
    reaches every other process in it, and only those; without a namespace, the child's process group."""
    for kill, target in ((os.kill, pid), (os.kill, -1) if os.getpid() == 1 else (os.killpg, pid)):
        try:
            kill(target, signal.SIGKILL)
        except OSError:
            pass
    status = os.waitpid(pid, 0)[1]
    while os.getpid() == 1:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    return status


def memfile(data):
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("sandbox")
    else:  # macOS
        fd = os.dup(__import__("tempfile").TemporaryFile().fileno())
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_all(fd, limit):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks, size = [], 0
    while size <= limit and (chunk := os.read(fd, 1 << 20)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit + 1]


def oom_kills(fd):
    """How many processes the cgroup's out-of-memory killer has killed so far (0 without a cgroup)."""
    try:
        lines = os.pread(fd, 4096, 0).decode().splitlines()
        return next((int(line.split()[1]) for line in lines if line.startswith("oom_kill ")), 0)
    except (OSError, TypeError, ValueError):
        return 0


def signame(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def adjust_oom_score(score):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(score))
    except OSError:  # lowering it needs root
        pass


def send(fd, header, *bodies):
    """A frame to the caller: a JSON header line naming the sizes of the raw bodies that follow it."""
    data = memoryview(json.dumps({**header, "sizes": [len(b) for b in bodies]}).encode() + b"\n" + b"".join(bodies))
    while data:
        data = data[os.write(fd, data):]


if __name__ == "__main__":
    {"supervise": supervise, "run": run}[sys.argv[1]](json.loads(sys.argv[2]))
