"""The console page on a real guest: Chromium, noVNC, nefos's console proxy, QEMU's VNC
server and a Linux guest under KVM (QEMU TCG) on the real Ganeti of
``scripts/ganeti-dev.sh``.

The guest (``write_guest_init``) copies each line typed on its screen's terminal to its
serial console as ``NEFOS-GUEST-TYPED <line>``; the test reads that socket, so what is
compared is what the guest's own terminal made of the key presses. The same socket is a
shell (``nefos.shell=ttyS0``), through which the test loads another keymap into the
guest's console (``loadkmap </etc/keymaps/de.bmap``).

nefos runs in this process, in a thread with an event loop of its own (Playwright's sync
API holds this thread's): its Ganeti backend is a client made here, with the kvm
hypervisor and an initramfs built now from the script's current guest init, whatever
the running cluster was started with.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import string
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from nefos.backends import base
from nefos.backends.ganeti import GanetiCluster
from nefos.backends.ganeti.eventd import QueueWatcher
from nefos.backends.ops import RemoveInstance, ShutdownInstance
from nefos.compute.console import vnc_response
from nefos.core.config import Settings, ensure_data_dir
from nefos.server.app import create_app
from nefos.server.engines import Engines
from tests.backends.conftest import (
    SCRIPT,
    Ganeti,
    add_ganeti_backend,
    ganeti,  # noqa: F401 (the session's cluster, for this module too)
    number_servers_apart,
    one_chunk,
)
from tests.backends.test_ganeti_engine import Serial
from tests.conftest import free_port
from tests.ui.people import EXPECT_MS, PASSWORD, Person, log_in

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect

expect.set_options(timeout=EXPECT_MS)

TYPED = b"NEFOS-GUEST-TYPED"
TICKET_SECONDS = 5.0  # the console proxy's; short, so that a ticket can expire in a test
KERNEL_ARGS = "ro quiet nefos.shell=ttyS0"
LAYOUTS = ("us", "de", "fr", "gr")  # the console page's, and the guest's /etc/keymaps


class NefosThread:
    """nefos's app on engines of the test's making, served by uvicorn on a loop of its own
    in a thread; :meth:`run` runs a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Cloud:
    url: str
    person: Person
    server_id: int
    instance: str
    serial: Serial


async def serve(engines: Engines, port: int) -> uvicorn.Server:
    app = create_app(engines.settings, engines)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    server.task = asyncio.create_task(server.serve())  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not server.started:
        assert not server.task.done() and time.monotonic() < deadline, "nefos did not start"  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    return server


async def until_active(engines: Engines, user: str, server_id: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (view := await engines.compute.server(user, server_id)).status != "ACTIVE":
        if time.monotonic() > deadline:
            jobs = [(j.opcode, j.status, j.logmsg) for j in await engines.compute.jobs(server_id)]
            raise AssertionError(f"server {server_id} stayed {view.status}: {jobs}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The test guest's kernel and an initramfs with the current guest init."""
    folder = tmp_path_factory.mktemp("guest")
    done = subprocess.run(
        ["bash", str(SCRIPT), "guest-initramfs", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return found["KERNEL"], found["INITRD"]


@pytest.fixture(scope="module")
def cloud(
    ganeti: Ganeti,  # noqa: F811
    guest: tuple[str, str],
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cloud]:
    """nefos on the cluster with one running kvm machine of a user's, whose guest has
    booted (its ready line is on the serial console)."""
    folder = tmp_path_factory.mktemp("nefos")
    database = folder / "nefos.db"
    database.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    settings = ensure_data_dir(
        Settings(
            data_dir=folder / "data",
            database_url=f"sqlite+aiosqlite:///{database}",
            port=port,
            log_level="WARNING",
        )
    )
    settings.compute.console_seconds = TICKET_SECONDS
    kernel, initrd = guest
    backend = f"ganeti-ui-{uuid.uuid4().hex[:6]}"
    nefos = NefosThread()
    engines = Engines(settings)
    held: dict[str, Any] = {}

    async def up() -> tuple[Person, int]:
        await engines.start()
        await number_servers_apart(engines, 6)
        cluster = GanetiCluster(
            backend,
            ganeti.rapi_url,
            ganeti.rapi_user,
            ganeti.rapi_password,
            certificate=str(ganeti.rapi_cert),
            hypervisor="kvm",
            hvparams={"kernel_path": kernel, "initrd_path": initrd, "kernel_args": KERNEL_ARGS},
        )
        engines.compute.clusters.live[backend] = held["cluster"] = cluster
        watcher = QueueWatcher(ganeti.queue_dir, backend, engines.bus.publish, replay_seconds=0)
        held["eventd"] = asyncio.create_task(watcher.run())
        await asyncio.wait_for(watcher.ready.wait(), 10)
        await add_ganeti_backend(engines, ganeti, backend)
        await engines.start_dispatcher()
        held["http"] = await serve(engines, port)

        email = f"console-{uuid.uuid4().hex[:6]}@example.org"
        owner, token = await engines.identity.create_user(email, PASSWORD, "Ada", verified=True)
        user = str(owner.id)
        await engines.storage.create_container(user, "images")
        await engines.storage.put_object(user, "images", "disk", one_chunk(b"disk"))
        image = await engines.images.register(user, f"pithos://{user}/images/disk", "Tiny")
        flavor = await engines.compute.create_flavor(1, 128, 1, "diskless")
        view, _ = await engines.compute.create_server(user, "guest", str(image.id), flavor.id)
        await until_active(engines, user, view.server.id, within=90)
        return Person(email, token, user), view.server.id

    async def down() -> None:
        held["http"].should_exit = True
        await held["http"].task
        held["eventd"].cancel()
        cluster = held["cluster"]
        ours = {base.instance_name(v.server.id) for v in await engines.compute.servers(None)}
        for name in ours & set(await cluster.instances()):
            await cluster.wait(await cluster.submit(ShutdownInstance(name, 0)), within=60)
            await cluster.wait(await cluster.submit(RemoveInstance(name)), within=60)
        await engines.close()

    try:
        person, server_id = nefos.run(up())
        instance = base.instance_name(server_id)
        serial = Serial(str(ganeti.kvm_ctrl_dir / f"{instance}.serial"), timeout=10)
        try:
            serial.wait_for(b"NEFOS-GUEST-READY", 60)
            yield Cloud(f"http://127.0.0.1:{port}", person, server_id, instance, serial)
        finally:
            serial.close()
    finally:
        try:
            if "cluster" in held:
                nefos.run(down())
        finally:
            nefos.stop()


@pytest.fixture
def page(browser: Any, cloud: Cloud) -> Iterator[Page]:
    errors: list[str] = []
    opened = log_in(browser, cloud, cloud.person, errors)  # type: ignore[arg-type]
    yield opened
    opened.context.close()
    assert not errors, errors


def typed_line(serial: Serial, timeout: float = 20) -> str:
    """The next line the guest's terminal read, as the guest printed it; consumed."""
    serial.wait_for(TYPED, timeout)
    start = serial.output.index(TYPED) + len(TYPED) + 1
    end = serial.output.index(b"\n", start)
    line = serial.output[start:end].removesuffix(b"\r")  # spaces at either end kept
    serial.output = serial.output[end + 1 :]
    return line.decode()


def guest_sh(serial: Serial, command: str, timeout: float = 20) -> str:
    """Run ``command`` in the guest's serial shell; what it printed. Consumes the output
    up to its end, lines the guest printed meanwhile included."""
    token = secrets.token_hex(4)
    marker = f"NEFOS-SH-DONE-{token}".encode()
    # Written apart, so that an echo of the command line holds no marker.
    serial.sock.sendall(f'{command}; echo "NEFOS-SH-""DONE-{token}" $?\n'.encode())
    line = serial.wait_for(marker + b" ", timeout)
    start = serial.output.index(marker + b" ")
    printed = serial.output[:start]
    serial.output = serial.output[serial.output.index(b"\n", start) + 1 :]
    status = int(line.split()[-1])
    assert status == 0, f"{command!r} failed ({status}): {printed!r}"
    return printed.decode(errors="replace")


def guest_layout(serial: Serial, layout: str) -> None:
    """The guest's console keymap, as a machine's own settings would have it."""
    guest_sh(serial, f"loadkmap </etc/keymaps/{layout}.bmap")


def type_line(page: Page, text: str) -> None:
    """Type ``text`` with "then press Enter", and wait until the typing is over."""
    page.fill("#type-text", text)
    page.check("text=then press Enter")
    page.click("#type-it")
    expect(page.locator("[data-state]")).to_have_text("Connected")


def open_console(page: Page, cloud: Cloud) -> None:
    page.goto(f"{cloud.url}/ui/#/machines")
    page.locator('tr[data-name="guest"] [data-action="console"]').click()
    expect(page).to_have_url(f"{cloud.url}/ui/#/machines/{cloud.server_id}/console")
    expect(page.locator("[data-state]")).to_have_text("Connected")
    expect(page.locator(".console-screen canvas")).to_be_visible()


@pytest.mark.slow
def test_typed_and_pasted_text_arrives_exactly(page: Page, cloud: Cloud, screenshots: Path) -> None:
    open_console(page, cloud)
    page.screenshot(path=screenshots / "console-connected.png")
    serial = cloud.serial
    serial.output = b""  # what the guest printed before this test

    text = 'Hello, World! 123 #$%&*()_+{}|:"<>?~'
    page.fill("#type-text", text)
    page.check("text=then press Enter")
    page.click("#type-it")
    assert typed_line(serial) == text
    expect(page.locator("[data-state]")).to_have_text("Connected")  # typing is over
    page.screenshot(path=screenshots / "console-typed.png")

    # A random password through the clipboard: every printable ASCII character may occur.
    alphabet = string.ascii_letters + string.digits + string.punctuation
    password = "".join(secrets.choice(alphabet) for _ in range(24))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("(text) => navigator.clipboard.writeText(text)", password + "\n")
    page.click("#paste")
    assert typed_line(serial) == password

    # On a phone-sized screen the machine's screen still fits, under the bar and above
    # the text box.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(  # noVNC rescales when its ResizeObserver fires, a frame later
        """() => {
            const canvas = document.querySelector('.console-screen canvas');
            return canvas && canvas.getBoundingClientRect().width <= 390;
        }""",
        timeout=10_000,
    )
    canvas = page.locator(".console-screen canvas").bounding_box()
    assert canvas is not None and 0 < canvas["width"] <= 390
    page.screenshot(path=screenshots / "console-phone.png", full_page=True)


@pytest.mark.slow
def test_text_arrives_exactly_under_each_keyboard_layout(
    page: Page, cloud: Cloud, screenshots: Path
) -> None:
    open_console(page, cloud)
    serial = cloud.serial
    serial.output = b""
    layout = page.locator("#console-layout")
    expect(layout).to_have_value("us")  # a machine nobody chose a layout for
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    try:
        for name in LAYOUTS:
            guest_layout(serial, name)
            layout.select_option(name)
            # Every printable ASCII character may occur; y, z, a, q, m, ^, ` and ~ do.
            password = "yzaqm^`~" + "".join(secrets.choice(alphabet) for _ in range(40))
            password = "".join(secrets.SystemRandom().sample(password, len(password)))
            type_line(page, password)
            assert typed_line(serial) == password, name
            page.screenshot(path=screenshots / f"console-layout-{name}.png")

        # The choice matters: a German machine typed at as if it were a US one reads the
        # keys of y and z the other way round.
        guest_layout(serial, "de")
        layout.select_option("us")
        text = "yz" + "".join(secrets.choice(string.ascii_letters) for _ in range(20))
        type_line(page, text)
        arrived = typed_line(serial)
        assert arrived != text
        assert arrived == text.translate(str.maketrans("yzYZ", "zyZY"))

        # Remembered for this machine: the page opened again has the last choice.
        layout.select_option("fr")
        page.reload()
        expect(page.locator("[data-state]")).to_have_text("Connected")
        expect(page.locator("#console-layout")).to_have_value("fr")
    finally:
        guest_layout(serial, "us")  # what the other tests expect


def take_over(cloud: Cloud) -> None:
    """Another VNC client asks for the console alone (ClientInit shared=0), through a
    ticket of its own: QEMU then disconnects the others, the browser among them."""
    answer = httpx.post(
        f"{cloud.url}/compute/v2.1/servers/{cloud.server_id}/action",
        headers={"X-Auth-Token": cloud.person.token},
        json={"console": {"type": "vnc"}},
    )
    answer.raise_for_status()
    ticket = answer.json()["console"]
    with socket.create_connection((ticket["host"], ticket["port"]), timeout=10) as vnc:
        vnc.recv(12)
        vnc.sendall(b"RFB 003.008\n")
        vnc.recv(2)
        vnc.sendall(bytes([2]))
        vnc.sendall(vnc_response(recv_exactly(vnc, 16), ticket["password"]))
        assert recv_exactly(vnc, 4) == bytes(4)
        vnc.sendall(bytes([0]))  # not shared
        width, _ = struct.unpack("!HH", recv_exactly(vnc, 4))
        assert width > 0


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the console closed"
        data += chunk
    return data


@pytest.mark.slow
def test_a_closed_console_opens_again_and_an_expired_ticket_says_so(
    page: Page, cloud: Cloud, screenshots: Path
) -> None:
    open_console(page, cloud)
    take_over(cloud)
    expect(page.locator("[data-state]")).to_have_text("Closed")
    expect(page.locator("#console-closed")).to_contain_text("another console may have taken it")
    page.screenshot(path=screenshots / "console-closed.png")
    page.click("text=Open again")
    expect(page.locator("[data-state]")).to_have_text("Connected")

    # The ticket's answer reaches the browser only after the ticket closed unused.
    def late(route: Any) -> None:
        answer = route.fetch()
        time.sleep(TICKET_SECONDS + 1)
        route.fulfill(response=answer)

    page.route("**/servers/*/action", late)
    page.goto(f"{cloud.url}/ui/#/machines")
    page.goto(f"{cloud.url}/ui/#/machines/{cloud.server_id}/console")
    failure = page.locator("#console-failure")
    expect(failure).to_contain_text(
        "The console's ticket expired before the browser reached it", timeout=20_000
    )
    page.screenshot(path=screenshots / "console-expired.png")
    page.unroute("**/servers/*/action")
    page.click("text=Try again")
    expect(page.locator("[data-state]")).to_have_text("Connected")
