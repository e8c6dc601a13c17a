"""A RabbitMQ broker of the test run's own, so outage tests can stop and restart it.

The machine's RabbitMQ (if any) is not ours to restart: tests that need a broker outage
start ``rabbitmq-server`` as a private node (own node name, AMQP and distribution ports,
data, logs, config and cookie under a temporary directory, no plugins) and stop it by
the PID they started. In CI (``CI=true``) a broker that is missing or does not come up
fails the test; elsewhere the test is skipped, saying why.

Tests use the ``private_broker`` fixture (tests/conftest.py makes it visible everywhere;
one broker per module, started in about 5-10 s)::

    def test_outage(private_broker: Broker) -> None:
        bus = AmqpBus(private_broker.url, ...)
        private_broker.restart()
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
# The Debian wrapper in /usr/sbin switches to the rabbitmq user and reads /etc/rabbitmq;
# the script behind it runs as whoever calls it, with only what we pass.
SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@dataclass
class Broker:
    """One private RabbitMQ node; ``stop``/``start`` keep its data, as a restart does."""

    base: Path
    node: str = field(default_factory=lambda: f"nefos-test-{secrets.token_hex(4)}@localhost")
    port: int = field(default_factory=_free_port)
    dist_port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        return self.base / "server.out"

    def _env(self) -> dict[str, str]:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's NODENAME
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            # A nearly full shared disk must not block publishers mid-test.
            "disk_free_limit.absolute = 1\n"
        )
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # where Erlang keeps this node's cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.base / "plugins-expand"),
        }

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [str(SERVER)],
                env=self._env(),
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches Erlang's helpers too
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(kill=True)
                raise RuntimeError(f"RabbitMQ did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (a crash) to the node we started."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Helpers (erl_child_setup, inet_gethost) left in the group go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()


def unavailable(reason: str) -> None:
    """Fail in CI, where RabbitMQ is part of the suite; skip anywhere else."""
    if IN_CI:
        pytest.fail(f"RabbitMQ is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if not SERVER.exists() or shutil.which("erl") is None:
        unavailable(f"rabbitmq-server is not installed ({SERVER})")
    # Short paths: Erlang and RabbitMQ put the node name and dirs in socket/file names.
    broker = Broker(tmp_path_factory.mktemp("rabbitmq"))
    try:
        broker.start()
    except RuntimeError as error:
        unavailable(str(error))
    try:
        yield broker
    finally:
        broker.stop()
