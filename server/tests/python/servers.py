"""Start and stop the servers the tests and the kill benchmark talk to.

* ``CascadeServer``: the ``cascade-server`` binary on a free loopback port,
  with a given TOML config; its log goes to a file under a temp dir.
* ``MariaDBServer``: a throwaway ``mariadbd`` (Debian's mariadb-server) on
  127.0.0.1 only, with its own datadir and socket under /tmp, no grant
  tables (root, no password), stopped and deleted afterwards.

Both are loopback only. Every wait here is bounded.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = ROOT / "target" / "debug" / "cascade-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class CascadeServer:
    def __init__(self, config: Path, *extra_args: str, binary: Path | None = None, log_level: str = "info"):
        self.binary = Path(binary or os.environ.get("CASCADE_SERVER_BIN", DEFAULT_BIN))
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} not built: cargo build -p cascade-server")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cascade-server-"))
        self.log = self.dir / "server.log"
        self._log_file = open(self.log, "wb")
        # The log's text once stopped: stop() removes the directory, and
        # tests read the log after it.
        self._final_log: str | None = None
        env = dict(os.environ, CASCADE_LOG=log_level)
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(config), "--listen", f"127.0.0.1:{self.port}", *extra_args],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        wait_port(self.port, self.proc, "cascade-server", self.log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connect(self, user: str, password: str = "", **kw) -> pymysql.Connection:
        kw.setdefault("autocommit", True)
        kw.setdefault("connect_timeout", 10)
        return pymysql.connect(host="127.0.0.1", port=self.port, user=user, password=password, **kw)

    def log_text(self) -> str:
        if self._final_log is not None:
            return self._final_log
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_file.close()
        if self._final_log is None:
            self._final_log = self.log.read_text(errors="replace")
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


class MariaDBServer:
    """A private mariadbd on 127.0.0.1 with a datadir under /tmp."""

    def __init__(self):
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not Path(mariadbd).exists() or not install:
            raise RuntimeError("mariadb-server is not installed (scripts/setup.d/50-server.sh)")
        self.dir = Path(tempfile.mkdtemp(prefix="cascade-mariadb-", dir="/tmp"))
        self.datadir = self.dir / "data"
        self.log = self.dir / "mariadbd.log"
        self.port = free_port()
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={self.datadir}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.dir}/mysqld.sock",
             f"--pid-file={self.dir}/mysqld.pid", "--bind-address=127.0.0.1", f"--port={self.port}",
             "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             "--max-connections=500", *user],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc, "mariadbd", self.log, timeout=60)
        # The port opens a little before the server takes logins.
        deadline = time.monotonic() + 30
        while True:
            try:
                c = self.connect()
                c.cursor().execute("CREATE DATABASE IF NOT EXISTS cascade_corpus")
                c.close()
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def connect(self, **kw) -> pymysql.Connection:
        kw.setdefault("autocommit", True)
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """``n`` cascade-server processes on free loopback ports, joined by a
    static peer list (node ids 1..n): each gets the base config plus a
    ``[cluster]`` section naming its node id, its gRPC address and every
    other node as a peer trusted for the test tenants, ``admin`` and ``sys``
    (so that sys's admin sees the whole cluster). Nodes start in order;
    peers connect lazily, so no node waits for another."""

    TENANTS = ["sys", "acme", "globex"]

    def __init__(self, n: int, base: Path | None = None):
        base = base or Path(__file__).resolve().parent / "test-config.toml"
        self.dir = Path(tempfile.mkdtemp(prefix="cascade-cluster-"))
        self.grpc_ports = {i: free_port() for i in range(1, n + 1)}
        self.nodes: dict[int, CascadeServer] = {}
        try:
            for i in range(1, n + 1):
                config = self.dir / f"node{i}.toml"
                config.write_text(base.read_text() + "\n" + self.cluster_toml(i))
                self.nodes[i] = CascadeServer(config)
                # Its gRPC endpoint too, so that no test meets a peer
                # that is still starting.
                wait_port(self.grpc_ports[i], self.nodes[i].proc, f"node {i}'s gRPC endpoint", self.nodes[i].log)
        except Exception:
            self.stop()
            raise

    TOKEN = "cluster-test-token"

    def cluster_toml(self, me: int) -> str:
        lines = [
            "[cluster]",
            f"node_id = {me}",
            f'grpc_listen = "127.0.0.1:{self.grpc_ports[me]}"',
            f'token = "{self.TOKEN}"',
        ]
        for i, port in self.grpc_ports.items():
            if i == me:
                continue
            lines += [
                "",
                "[[cluster.peers]]",
                f"node_id = {i}",
                f'grpc = "127.0.0.1:{port}"',
                "tenants = [" + ", ".join(f'"{t}"' for t in self.TENANTS) + "]",
                "admin = true",
            ]
        return "\n".join(lines) + "\n"

    def node(self, i: int) -> CascadeServer:
        return self.nodes[i]

    def logs(self) -> str:
        return "\n".join(f"--- node {i}\n{s.log_text()[-3000:]}" for i, s in self.nodes.items())

    def stop(self) -> list[int]:
        codes = [s.stop() for s in self.nodes.values()]
        shutil.rmtree(self.dir, ignore_errors=True)
        return codes
