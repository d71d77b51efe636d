"""The wire is safe to expose: TLS (pymysql `ssl=`, `mariadb --ssl`),
require_secure_transport (3159 for a plain login), caching_sha2_password
and mysql_native_password logins, and failed logins limited per peer
address (1129) and logged without the password.

Each test group starts its own cascade-server with a config written here; the
certificate is a throwaway self-signed one made with the `openssl` CLI."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pymysql
import pytest

from servers import CascadeServer

USERS = """
[[user]]
tenant = "acme"
name = "alice"
password = "alice-secret"
roles = ["member"]

[[user]]
tenant = "acme"
name = "legacy"
# SHA1(SHA1("legacy-pw")): only mysql_native_password can check it.
password_sha1 = "{legacy}"
roles = ["member"]
"""

ALICE = ("acme:alice", "alice-secret")


def native_hash(password: str) -> str:
    import hashlib

    return hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="cascade-wire-security-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cert(workdir):
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is needed (scripts/setup.d/50-server.sh installs it)"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )
    return workdir / "cert.pem"


def start(workdir: Path, name: str, server_toml: str) -> CascadeServer:
    cfg = workdir / f"{name}.toml"
    cfg.write_text("[server]\n" + server_toml + USERS.format(legacy=native_hash("legacy-pw")))
    return CascadeServer(cfg)


@pytest.fixture(scope="module")
def tls_server(workdir, cert):
    # Relative paths: next to the config file.
    s = start(workdir, "tls", 'tls_cert = "cert.pem"\ntls_key = "key.pem"\n')
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


@pytest.fixture(scope="module")
def strict_server(workdir, cert):
    s = start(workdir, "strict",
              'tls_cert = "cert.pem"\ntls_key = "key.pem"\nrequire_secure_transport = true\n')
    yield s
    assert s.stop() == 0, s.log_text()[-3000:]


def ssl_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = True
    return ctx


def one(conn, sql):
    with conn.cursor() as c:
        c.execute(sql)
        return c.fetchall()


# --- TLS -------------------------------------------------------------------

def test_pymysql_with_ssl_gets_an_encrypted_verified_session(tls_server, cert):
    conn = tls_server.connect(*ALICE, ssl=ssl_context(cert))
    try:
        sock = conn._sock
        assert isinstance(sock, ssl.SSLSocket), type(sock)
        assert sock.version() in ("TLSv1.2", "TLSv1.3"), sock.version()
        assert sock.cipher() is not None
        # The certificate was checked against the CA (check_hostname on).
        assert sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        assert one(conn, "SELECT 1 + 1") == ((2,),)
        # Long statements and results span many TLS records.
        long = "x" * 100000
        rows = one(conn, f"SELECT '{long}'")
        assert rows[0][0] == long
    finally:
        conn.close()
    log = tls_server.log_text()
    assert "logged in" in log and 'tls="TLS1' in log, log[-2000:]


def test_pymysql_prefers_tls_when_offered(tls_server):
    # pymysql >= 1.2 asks for TLS (unverified) whenever the server offers it.
    conn = tls_server.connect(*ALICE)
    try:
        assert isinstance(conn._sock, ssl.SSLSocket)
        assert one(conn, "SELECT 2") == ((2,),)
    finally:
        conn.close()


def test_plain_login_still_works_when_tls_is_not_required(tls_server):
    conn = tls_server.connect(*ALICE, ssl_disabled=True)
    try:
        assert not isinstance(conn._sock, ssl.SSLSocket)
        assert one(conn, "SELECT 3") == ((3,),)
    finally:
        conn.close()


def test_a_plain_login_is_refused_with_3159_when_tls_is_required(strict_server, cert):
    with pytest.raises(pymysql.err.OperationalError) as e:
        strict_server.connect(*ALICE, ssl_disabled=True)
    assert e.value.args[0] == 3159, e.value.args
    assert "require_secure_transport=ON" in e.value.args[1]
    conn = strict_server.connect(*ALICE, ssl=ssl_context(cert))
    try:
        assert isinstance(conn._sock, ssl.SSLSocket)
        assert one(conn, "SELECT 4") == ((4,),)
    finally:
        conn.close()


def mariadb_cli(server, login, password, *args, sql="SELECT 1"):
    exe = shutil.which("mariadb") or shutil.which("mysql")
    assert exe, "the mariadb CLI is needed (scripts/setup.d/50-server.sh installs it)"
    return subprocess.run(
        [exe, "--no-defaults", "-h", "127.0.0.1", "-P", str(server.port), "-u", login,
         f"-p{password}", "--batch", "--skip-column-names", *args, "-e", sql],
        capture_output=True, text=True, timeout=30,
    )


def test_mariadb_cli_with_ssl_connects_and_reports_a_cipher(strict_server, cert):
    r = mariadb_cli(strict_server, *ALICE, "--ssl", f"--ssl-ca={cert}", "--ssl-verify-server-cert",
                    sql="SELECT 40 + 2;\nstatus")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "42"
    assert "Cipher in use is" in r.stdout, r.stdout
    plain = mariadb_cli(strict_server, *ALICE, "--skip-ssl")
    assert plain.returncode == 1 and "ERROR 3159" in plain.stderr, plain.stderr


# --- authentication plugins -------------------------------------------------

def test_pymysql_logs_in_with_caching_sha2_password(tls_server, cert):
    for kw in ({"ssl_disabled": True}, {"ssl": ssl_context(cert)}):
        conn = tls_server.connect(*ALICE, **kw)
        try:
            assert conn._auth_plugin_name == "caching_sha2_password"
            assert one(conn, "SELECT 5") == ((5,),)
        finally:
            conn.close()
    with pytest.raises(pymysql.err.OperationalError) as e:
        tls_server.connect(ALICE[0], "wrong")
    assert e.value.args[0] == 1045, e.value.args


def test_mariadb_cli_with_either_plugin(tls_server):
    for args in ((), ("--default-auth=mysql_native_password",),
                 ("--default-auth=caching_sha2_password",)):
        r = mariadb_cli(tls_server, *ALICE, *args)
        assert r.returncode == 0 and r.stdout.strip() == "1", (args, r.stderr)
    bad = mariadb_cli(tls_server, ALICE[0], "wrong")
    assert "ERROR 1045" in bad.stderr, bad.stderr


def test_a_password_sha1_user_needs_mysql_native_password(tls_server, workdir):
    # caching_sha2_password cannot check a SHA1 hash: a clean refusal that
    # says what to do...
    with pytest.raises(pymysql.err.OperationalError) as e:
        tls_server.connect("acme:legacy", "legacy-pw", ssl_disabled=True)
    assert e.value.args[0] == 1045 and "mysql_native_password" in e.value.args[1], e.value.args
    # ...the mariadb CLI asked for mysql_native_password gets in...
    r = mariadb_cli(tls_server, "acme:legacy", "legacy-pw", "--default-auth=mysql_native_password")
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    # ...and a server announcing mysql_native_password serves pymysql too,
    # while caching_sha2_password answers still work there.
    s = start(workdir, "native", 'default_auth_plugin = "mysql_native_password"\n')
    try:
        conn = s.connect("acme:legacy", "legacy-pw")
        assert conn._auth_plugin_name == "mysql_native_password"
        assert one(conn, "SELECT 6") == ((6,),)
        conn.close()
        r = mariadb_cli(s, *ALICE, "--default-auth=caching_sha2_password")
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    finally:
        assert s.stop() == 0


# --- failed logins ------------------------------------------------------------

def test_failed_logins_are_limited_per_peer_and_logged_without_the_password(workdir):
    s = start(workdir, "throttle", "max_login_failures = 3\nlogin_failure_window_secs = 3600\n")
    try:
        secret_guesses = ["guess-one-7f3a", "guess-two-7f3a", "guess-three-7f3a"]
        for g in secret_guesses:
            with pytest.raises(pymysql.err.OperationalError) as e:
                s.connect(ALICE[0], g)
            assert e.value.args[0] == 1045, e.value.args
        # Blocked now, even with the right password.
        with pytest.raises(pymysql.err.OperationalError) as e:
            s.connect(*ALICE)
        assert e.value.args[0] == 1129, e.value.args
        assert "Host '127.0.0.1' is blocked" in e.value.args[1]
        # Another peer address is not.
        conn = s.connect(*ALICE, bind_address="127.0.0.2")
        assert one(conn, "SELECT 7") == ((7,),)
        conn.close()
        log = s.log_text()
        failed = [line for line in log.splitlines() if "login failed" in line]
        assert len(failed) == 3, log[-3000:]
        assert all("peer=127.0.0.1:" in line and "user=acme:alice" in line for line in failed), failed
        assert "blocked" in log
        for g in secret_guesses + [ALICE[1]]:
            assert g not in log, f"password {g!r} in the log"
    finally:
        assert s.stop() == 0
