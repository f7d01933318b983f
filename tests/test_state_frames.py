"""`queue:state` frames spliced from one shared encoding are, byte for byte, the frames each viewer got
when every viewer's payload was rendered and serialized on its own; and they reach the socket intact."""

import json
import struct
from datetime import datetime, timedelta, timezone

import pytest

from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot
from actors.state_frames import state_message, state_pieces
from core.access import Principal
from core.days import UTC_CALENDAR
from core.values import format_utc
from live import wire
from live.wire import frame_header
from tests.conftest import future, start_harness, stop_harness
from tests.test_ws import clinic, patients_booked, subscribed

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def _entry(i: int, patient: str, minutes: int, status: str = "pending", started_at=None) -> QueueEntry:
    return QueueEntry(id=f"{i:024x}", patient=patient, patient_name=f"Zoë {i} \"quoted\"",
                      date=NOW + timedelta(minutes=minutes), created_at=NOW, status=status,
                      reason="r", started_at=started_at, version=0)


def _snapshot() -> QueueSnapshot:
    """40 waiting over two days: p1 has two today and one tomorrow, p2 is in consultation and waits
    again later, everyone else has one."""
    owners = {3: "p1", 17: "p1", 30: "p1", 9: "p2"}
    waiting = tuple(_entry(i, owners.get(i, f"x{i}"), 5 + i * 7 if i < 25 else 24 * 60 + i)
                    for i in range(40))
    current = _entry(99, "p2", -20, status="in_consultation", started_at=NOW - timedelta(minutes=3))
    return QueueSnapshot.compute("d1", DoctorSettings(10, True, 5), current, waiting, NOW, UTC_CALENDAR)


def _reference_frame(snapshot: QueueSnapshot, staff: bool, viewer_id: str | None, day) -> bytes:
    """The frame as it was built before frames were spliced: the whole payload for this one viewer,
    rendered from the snapshot's entries and serialized with json.dumps on its own."""
    span = snapshot.days.get(day, range(0))
    current = snapshot.in_consultation if day == snapshot.today else None
    listing = []
    for i in span:
        e, est = snapshot.waiting[i], snapshot.estimates[i]
        if staff:
            listing.append({"appointmentId": e.id, "patient": e.patient, "patientName": e.patient_name,
                            "date": format_utc(e.date), "status": e.status, "reason": e.reason,
                            "position": est.position, "etaMinutes": est.eta_minutes,
                            "expectedStartAt": format_utc(est.expected_start_at),
                            "earliestStartAt": format_utc(est.earliest_start_at),
                            "latestStartAt": format_utc(est.latest_start_at),
                            "delayMinutes": est.delay_minutes, "present": e.id in snapshot.present})
        else:
            item = {"position": est.position, "date": format_utc(e.date), "status": e.status,
                    "etaMinutes": est.eta_minutes, "expectedStartAt": format_utc(est.expected_start_at),
                    "earliestStartAt": format_utc(est.earliest_start_at),
                    "latestStartAt": format_utc(est.latest_start_at),
                    "delayMinutes": est.delay_minutes, "mine": e.patient == viewer_id}
            if item["mine"]:
                item["appointmentId"] = e.id
            listing.append(item)
    if current is None:
        shown = None
    elif staff:
        shown = {"appointmentId": current.id, "patient": current.patient, "patientName": current.patient_name,
                 "date": format_utc(current.date), "status": current.status, "reason": current.reason,
                 "startedAt": format_utc(current.started_at)}
    else:
        shown = {"date": format_utc(current.date), "status": current.status,
                 "startedAt": format_utc(current.started_at), "mine": current.patient == viewer_id}
        if shown["mine"]:
            shown["appointmentId"] = current.id
    settings = snapshot.settings
    data = {"doctorId": snapshot.doctor_id, "date": day.isoformat(), "isRunningLate": settings.is_running_late,
            "lateByMinutes": settings.late_by_minutes, "avgConsultMinutes": settings.avg_consult_minutes,
            "awayUntil": None, "inConsultation": shown, "list": listing}
    return json.dumps({"event": "queue:state", "data": data}, separators=(",", ":")).encode()


def test_every_viewer_gets_byte_for_byte_the_frame_rendered_for_them_alone():
    snapshot = _snapshot()
    assert len(snapshot.days) == 2
    viewers = [(False, None), (False, "p1"), (False, "p2"), (False, "x5"), (False, "x30"), (False, "nobody"),
               (True, None)]
    for day in snapshot.days:
        for staff, viewer_id in viewers:
            spliced = b"".join(state_pieces(snapshot, staff, viewer_id, day))
            assert spliced == _reference_frame(snapshot, staff, viewer_id, day), (day, staff, viewer_id)
    # The checks above compare something that differs per viewer.
    today = snapshot.today
    assert b'"appointmentId":"' + f"{3:024x}".encode() in b"".join(state_pieces(snapshot, False, "p1", today))
    assert b"appointmentId" not in b"".join(state_pieces(snapshot, False, "nobody", today))


def test_the_message_frames_match_the_rendered_payloads_for_each_kind_of_viewer():
    snapshot = _snapshot()
    message = state_message(snapshot)
    for viewer in (Principal("p1", "patient"), Principal("p2", "patient"), Principal("x7", "patient"),
                   Principal("u9", "doctor", doctor_id="d1"), Principal("u8", "doctor", doctor_id="d2")):
        assert message.frame_for(viewer) == json.dumps(message.payload_for(viewer), separators=(",", ":")).encode()


def test_personal_frames_share_the_encoded_list_instead_of_copying_it():
    snapshot = _snapshot()
    first = state_pieces(snapshot, False, "p1")
    second = state_pieces(snapshot, False, "x5")
    shared_buffers = {id(p.obj) for p in first if isinstance(p, memoryview)}
    assert shared_buffers and shared_buffers == {id(p.obj) for p in second if isinstance(p, memoryview)}
    # Viewers with nothing of their own all get the very same bytes object.
    assert state_pieces(snapshot, False, "nobody")[0] is state_pieces(snapshot, False, None)[0]


def test_frame_header_follows_rfc_6455_length_encoding():
    assert frame_header(5) == bytes([0x81, 5])
    assert frame_header(126) == bytes([0x81, 126]) + struct.pack("!H", 126)
    assert frame_header(70_000) == bytes([0x81, 127]) + struct.pack("!Q", 70_000)


@pytest.mark.parametrize("join_up_to", [0, wire.JOIN_FRAME_BYTES], ids=["as pieces", "joined with its header"])
async def test_a_large_personal_queue_state_arrives_whole_over_the_socket(monkeypatch, join_up_to):
    """Both ways a frame is written: header and pieces (shared list slices, own entry) written one by
    one, as for a long queue's frame, and joined into one write, as for a frame this size."""
    monkeypatch.setattr(wire, "JOIN_FRAME_BYTES", join_up_to)
    harness = await start_harness()
    try:
        await _large_personal_state_over_the_socket(harness)
    finally:
        await stop_harness(harness)


async def _large_personal_state_over_the_socket(harness):
    _, doctor, doctor_token = await clinic(harness)
    _, booked = await patients_booked(harness, doctor, list(range(10, 10 + 30 * 5, 5)))
    token, _, appointment = booked[7]
    ws = await subscribed(harness, token, doctorId=doctor["id"])
    text = await ws.connection.read_message()
    assert len(text) > 4096
    frame = json.loads(text)
    rest = await harness.api.get(f"/api/queue/doctor/{doctor['id']}", token=token)
    assert frame == {"event": "queue:state", "data": rest.body}
    assert text == json.dumps(frame, separators=(",", ":"))
    assert [e.get("appointmentId") for e in frame["data"]["list"] if e["mine"]] == [appointment["id"]]
    # A change pushes the state again along the same path.
    newcomer, _ = await harness.register()
    await harness.book(newcomer, doctor["id"], future(1))
    again = await ws.expect("queue:state", predicate=lambda d: len(d["list"]) == 31)
    assert [e["appointmentId"] for e in again["data"]["list"] if e["mine"]] == [appointment["id"]]
    ws.close()
