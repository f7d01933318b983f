"""Rooms and messages: keyed vs event delivery, and per-variant frame sharing for queue:state."""

import json
from datetime import datetime, timedelta, timezone

from actors.state_frames import state_message
from actors.rooms import Outgoing
from live.hub import Hub
from actors.snapshot import DoctorSettings, QueueEntry, QueueSnapshot
from core.days import UTC_CALENDAR
from core.access import Principal


class Recorder:
    def __init__(self):
        self.keyed, self.events = {}, []

    def offer(self, key, message):
        self.keyed[key] = message

    def offer_event(self, message):
        self.events.append(message)


def test_publish_reaches_only_members_and_keeps_kinds_apart():
    hub = Hub()
    inside, outside = Recorder(), Recorder()
    hub.join("doctor:1", inside)
    assert hub.publish("doctor:1", Outgoing("queue:state", {"n": 1}), key="queue:state:1") == 1
    assert hub.publish("doctor:1", Outgoing("queue:state", {"n": 2}), key="queue:state:1") == 1
    assert hub.publish("doctor:1", Outgoing("doctor:status", {"late": True})) == 1
    assert inside.keyed["queue:state:1"].data == {"n": 2}
    assert [m.event for m in inside.events] == ["doctor:status"]
    assert outside.keyed == {} and outside.events == []
    hub.leave("doctor:1", inside)
    assert not hub.watched("doctor:1")
    assert hub.publish("doctor:1", Outgoing("doctor:status", {})) == 0


def test_pong_has_no_data_field():
    assert json.loads(Outgoing("pong").frame_for(None)) == {"event": "pong"}


def _snapshot():
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    entries = tuple(
        QueueEntry(id=f"a{i}", patient=f"p{i}", patient_name=f"Name {i}", date=now + timedelta(minutes=i),
                   created_at=now, status="pending", reason="", started_at=None, version=0)
        for i in range(3))
    return QueueSnapshot.compute("d1", DoctorSettings(10, False, 0), None, entries, now, UTC_CALENDAR)


def test_queue_state_frames_are_shared_per_variant_and_personal_ones_are_not():
    message = state_message(_snapshot())
    strangers = [Principal(f"x{i}", "patient") for i in range(5)]
    frames = {message.frame_for(viewer) for viewer in strangers}
    assert len(frames) == 1
    public = json.loads(frames.pop())["data"]["list"]
    assert all(set(entry) == {"position", "date", "status", "etaMinutes", "expectedStartAt", "earliestStartAt",
                              "latestStartAt", "delayMinutes", "mine"}
               for entry in public)

    mine = json.loads(message.frame_for(Principal("p1", "patient")))["data"]["list"]
    assert mine[1]["mine"] is True and mine[1]["appointmentId"] == "a1"
    assert mine[0]["mine"] is False and "appointmentId" not in mine[0]

    staff = json.loads(message.frame_for(Principal("u9", "doctor", doctor_id="d1")))["data"]["list"]
    assert staff[2]["patientName"] == "Name 2"
    other_doctor = json.loads(message.frame_for(Principal("u8", "doctor", doctor_id="d2")))["data"]["list"]
    assert "patientName" not in other_doctor[2]
    assert message.pieces_for(strangers[0])[0] is message.pieces_for(strangers[1])[0]  # one encoding
