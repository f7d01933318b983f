"""`/socket.io/` driven by the official JavaScript client (`socket.io-client` 4 from npm, under node),
as the original design's web and mobile clients use it: the endpoint's contract is that they switch
servers without a change. npm installs the client into a temporary directory for this module."""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import future, start_harness, stop_harness
from tests.test_sessions import closed_with
from tests.test_ws import clinic

pytestmark = pytest.mark.slow  # npm install and a node process

DRIVER = Path(__file__).with_name("socketio_driver.mjs")


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "these tests need node (20) and npm"
    where = tmp_path_factory.mktemp("socketio-client")
    subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
                    "socket.io-client@4"], cwd=where, check=True, timeout=300, capture_output=True)
    shutil.copy(DRIVER, where / DRIVER.name)
    return where


class Node:
    """The driver process: `connect`/`emit`/`close` commands in, received events out."""

    def __init__(self, process: asyncio.subprocess.Process, base: str):
        self.process = process
        self.base = base
        self.seen: dict[str, asyncio.Queue] = {}

    @classmethod
    async def start(cls, where: Path, base: str) -> "Node":
        process = await asyncio.create_subprocess_exec(
            shutil.which("node"), DRIVER.name, cwd=where,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        node = cls(process, base)
        node.reader = asyncio.get_running_loop().create_task(node._read())
        return node

    async def _read(self) -> None:
        async for line in self.process.stdout:
            received = json.loads(line)
            self.queue(received["name"]).put_nowait((received["event"], received["data"]))

    def queue(self, name: str) -> asyncio.Queue:
        return self.seen.setdefault(name, asyncio.Queue())

    async def send(self, **command) -> None:
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def connect(self, name: str, token: str | None = None, *, how: str = "auth",
                      transports=("websocket",), headers: dict | None = None) -> tuple[str, object]:
        command = {"op": "connect", "name": name, "url": self.base, "transports": list(transports),
                   "headers": headers or {}}
        if token and how == "auth":
            command["auth"] = {"token": token}
        elif token and how == "query":
            command["query"] = {"token": token}
        elif token:
            command["headers"] = {**command["headers"], "Authorization": f"Bearer {token}"}
        await self.send(**command)
        return await self.expect(name, "connect", "connect_error")

    async def emit(self, name: str, event: str, data: dict) -> None:
        await self.send(op="emit", name=name, event=event, data=data)

    async def expect(self, name: str, *events: str, predicate=None, timeout: float = 15.0):
        while True:
            event, data = await asyncio.wait_for(self.queue(name).get(), timeout)
            if event in events and (predicate is None or predicate(data)):
                return (event, data) if len(events) > 1 else data

    async def stop(self) -> None:
        await self.send(op="exit")
        await asyncio.wait_for(self.process.wait(), 10)
        self.reader.cancel()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_the_official_client_through_every_part_of_the_contract(client_dir, transport):
    h = await start_harness(settings={"ws_max_per_user": 2, "client_origins": ("https://app.example.com",)})
    node = await Node.start(client_dir, h.base)
    transports = (transport,)
    try:
        admin, doctor, doctor_token = await clinic(h, avg=15)
        first_token, _ = await h.register()
        token, _ = await h.register()
        first = await h.book(first_token, doctor["id"], future(30))
        mine = await h.book(token, doctor["id"], future(30))

        # Refused, with the code in the connect_error's data.
        for name, bad, headers, code in (("none", None, {}, "unauthorized"), ("bad", "x.y.z", {}, "bad_token"),
                                         ("evil", token, {"Origin": "https://evil.example.com"},
                                          "origin_not_allowed")):
            refused = await node.connect(name, bad, transports=transports, headers=headers)
            assert refused[0] == "connect_error" and refused[1]["code"] == code, refused

        # The patient: auth {token}; the doctor: ?token= (and an allowed Origin).
        assert await node.connect("patient", token, transports=transports) == ("connect", transport)
        assert await node.connect("doctor", doctor_token, how="query", transports=transports,
                                  headers={"Origin": "https://app.example.com"}) == ("connect", transport)
        ws = await h.ws(token)  # the same viewer over /ws: the payloads must be the same
        await ws.send({"type": "queue:subscribe", "appointmentId": mine["id"], "doctorId": doctor["id"]})
        await node.emit("patient", "queue:subscribe", {"appointmentId": mine["id"], "doctorId": doctor["id"]})
        assert await node.expect("patient", "queue:update") == (await ws.expect("queue:update"))["data"]
        state = await node.expect("patient", "queue:state")
        assert state == (await ws.expect("queue:state"))["data"]
        assert [e.get("patientName") for e in state["list"]] == [None, None]  # redacted for a patient
        await node.emit("doctor", "queue:subscribe", {"doctorId": doctor["id"]})
        assert all(e["patientName"] for e in (await node.expect("doctor", "queue:state"))["list"])

        # A forbidden subscription answers `error`; the connection stays.
        await node.emit("doctor", "queue:subscribe", {"appointmentId": "0" * 24})
        assert (await node.expect("doctor", "error"))["code"] == "not_found"
        await node.emit("patient", "queue:subscribe", {"appointmentId": first["id"]})
        assert (await node.expect("patient", "error"))["code"] == "forbidden"

        # doctor:status, queue:update, turn:soon, turn:now.
        await h.api.patch(f"/api/doctors/{doctor['id']}/status", {"isRunningLate": True, "lateByMinutes": 5},
                          token=doctor_token)
        assert await node.expect("doctor", "doctor:status") == (await ws.expect("doctor:status"))["data"]
        moved = await node.expect("patient", "queue:update", predicate=lambda d: d["lateByMinutes"] == 5)
        assert moved == (await ws.expect("queue:update", predicate=lambda d: d["lateByMinutes"] == 5))["data"]
        await h.api.patch(f"/api/appointments/{first['id']}/status", {"status": "cancelled"}, token=first_token)
        soon = await node.expect("patient", "turn:soon")
        assert soon == (await ws.expect("turn:soon"))["data"] and soon["position"] == 0
        called = await h.api.post(f"/api/doctors/{doctor['id']}/queue/next", token=doctor_token)
        assert await node.expect("patient", "turn:now") == {"appointmentId": mine["id"],
                                                            "joinUrl": called.body["current"]["joinUrl"]}

        # Token refresh.
        viewer = h.services.tokens.decode(token)
        fresh = h.services.tokens.issue({"_id": viewer.user_id, "role": "patient"}, viewer.session_id)
        await node.emit("patient", "auth", {"token": fresh})
        assert (await node.expect("patient", "auth:ok"))["expiresAt"].endswith("Z")

        # The cap counts /ws and Socket.IO together: this user holds one of each, of 2.
        refused = await node.connect("third", token, transports=transports)
        assert refused[0] == "connect_error" and refused[1]["code"] == "too_many_sockets"

        # Logout ends the session: /ws closes with 4001, the Socket.IO client is told and disconnected.
        assert (await h.api.post("/api/auth/logout", token=token)).status == 204
        assert await closed_with(ws) == 4001
        assert (await node.expect("patient", "error"))["code"] == "session_ended"
        assert await node.expect("patient", "disconnect") == "io server disconnect"
        await node.send(op="close", name="doctor")
        assert await node.expect("doctor", "disconnect") == "io client disconnect"
    finally:
        await node.stop()
        await stop_harness(h)
