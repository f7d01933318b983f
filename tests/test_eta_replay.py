"""`python -m server eta-replay`: good input gives the estimator's lines; each kind of bad line stops it
with its line number and exit status 2.

Two tests run the real command in a process of its own (`run`); the others run the same `main` with
the same arguments, environment and standard input in this process (`replay`), which spares each
about a second of interpreter start-up."""

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import server.__main__ as command

PROJECT_ROOT = Path(__file__).resolve().parent.parent
D = "6563a1d2c2b1e4a7d9f00001"
A1, A2 = "6563a1f0c2b1e4a7d9f01234", "6563a1f0c2b1e4a7d9f01235"


def line(at: str, event: str, **fields) -> str:
    return json.dumps({"at": f"2026-11-23T{at}:00Z", "event": event, **fields})


GOOD = [
    line("08:00", "doctor", doctorId=D, avgConsultMinutes=12, isRunningLate=False, lateByMinutes=0),
    line("08:01", "booked", doctorId=D, appointmentId=A1, date="2026-11-23T09:00:00Z"),
    line("08:02", "booked", doctorId=D, appointmentId=A2, date="2026-11-23T09:00:00Z"),
    line("08:30", "observe", doctorId=D),
    line("08:40", "doctor", doctorId=D, isRunningLate=True, lateByMinutes=30),
    line("08:45", "observe", doctorId=D),
    line("08:50", "doctor", doctorId=D, isRunningLate=False),
    line("09:05", "status", appointmentId=A1, status="in_consultation"),
    line("09:10", "observe", doctorId=D),
    line("09:20", "status", appointmentId=A1, status="completed"),
    line("09:21", "status", appointmentId=A2, status="no_show"),
    line("09:22", "observe", doctorId=D),
]


# The replay hashes no password, but the services it builds make their decoy hash at start: at the
# default cost that is half a second a run.
QUICK = {"LOG_LEVEL": "ERROR", "BCRYPT_ROUNDS": "4"}


def run(lines, *args, env_extra=None, stdin=True):
    import os
    env = {**os.environ, **QUICK, **(env_extra or {})}
    env.pop("MONGO_URI", None)
    argv = [sys.executable, "-m", "server", "eta-replay", *(args or ["-"])]
    return subprocess.run(argv, input="\n".join(lines) + "\n" if stdin else None, capture_output=True,
                          text=True, cwd=PROJECT_ROOT, env=env, timeout=60)


@pytest.fixture
def replay(monkeypatch, capsys):
    """`run`, in this process: `server.__main__.main(["eta-replay", ...])` with the environment and
    standard input `run` gives the command; answers what `run` does (returncode, stdout, stderr). Only
    the logging set-up is left out, so the test process's own logging stays as it is."""

    def replay(lines, *args, env_extra=None, stdin=True):
        monkeypatch.setattr(command, "configure_logging", lambda level: None)
        monkeypatch.chdir(PROJECT_ROOT)
        monkeypatch.delenv("MONGO_URI", raising=False)
        for key, value in {**QUICK, **(env_extra or {})}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n" if stdin else ""))
        capsys.readouterr()
        try:
            code = command.main(["eta-replay", *(args or (["-"] if stdin else []))])
        except SystemExit as stopped:  # argparse's usage errors
            code = stopped.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return replay


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_good_input_gives_one_line_per_waiting_appointment_per_observe():
    result = run(GOOD)
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(x) for x in result.stdout.splitlines()]
    # The range is the default one (no history), to the second: worked out by hand in the comments,
    # checked against the documented formula in tests/test_eta.py.
    assert outputs == [
        # nobody ahead: the doctor may call up to 10 minutes early, nothing can make it late
        {"at": "2026-11-23T08:30:00Z", "appointmentId": A1, "position": 0, "etaMinutes": 30,
         "expectedStartAt": "2026-11-23T09:00:00Z", "earliestStartAt": "2026-11-23T08:50:00Z",
         "latestStartAt": "2026-11-23T09:00:00Z", "delayMinutes": 0},
        # one ahead: sd 6.612 (0.92 × 6² + 0.08 × 0.92 × 12²), centred 0.96 minute early:
        # 09:12 - 0.96 - 1.6449 sd and 09:12 - 0.96 + 1.2816 sd
        {"at": "2026-11-23T08:30:00Z", "appointmentId": A2, "position": 1, "etaMinutes": 42,
         "expectedStartAt": "2026-11-23T09:12:00Z", "earliestStartAt": "2026-11-23T09:00:09Z",
         "latestStartAt": "2026-11-23T09:19:30Z", "delayMinutes": 12},
        # declared 30 minutes late at 08:40: nobody before 09:15
        {"at": "2026-11-23T08:45:00Z", "appointmentId": A1, "position": 0, "etaMinutes": 30,
         "expectedStartAt": "2026-11-23T09:15:00Z", "earliestStartAt": "2026-11-23T09:15:00Z",
         "latestStartAt": "2026-11-23T09:15:00Z", "delayMinutes": 15},
        {"at": "2026-11-23T08:45:00Z", "appointmentId": A2, "position": 1, "etaMinutes": 42,
         "expectedStartAt": "2026-11-23T09:27:00Z", "earliestStartAt": "2026-11-23T09:15:09Z",
         "latestStartAt": "2026-11-23T09:34:30Z", "delayMinutes": 27},
        # A1 started 09:05 (12 minutes a consultation): A2 at 09:17, give or take the running one's
        # spread (sd 6): from now (09:07 is past) to 09:17 + 1.2816 × 6
        {"at": "2026-11-23T09:10:00Z", "appointmentId": A2, "position": 0, "etaMinutes": 7,
         "expectedStartAt": "2026-11-23T09:17:00Z", "earliestStartAt": "2026-11-23T09:10:00Z",
         "latestStartAt": "2026-11-23T09:24:41Z", "delayMinutes": 17},
    ]


def test_a_file_gives_the_same_answer_as_standard_input(tmp_path, replay):
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(GOOD) + "\n")
    from_file = replay([], str(path), stdin=False)
    assert from_file.returncode == 0 and from_file.stdout == replay(GOOD).stdout != ""


def test_learning_off_and_on_agree_while_nothing_has_been_learned(replay):
    off = replay(GOOD, env_extra={"ETA_LEARNING": "off"})
    assert off.returncode == 0 and off.stdout == replay(GOOD).stdout != ""


def test_what_is_learned_carries_across_days(replay):
    """Six consultations of 29 minutes on day one; on day two the second patient is expected after
    the configured 12 minutes (the plain rule says 09:12), though shrunk towards it: six is few."""
    lines = [line("07:00", "doctor", doctorId=D, avgConsultMinutes=12)]
    ids = [f"6563a1f0c2b1e4a7d9f0{i:04x}" for i in range(8)]
    for i, appointment_id in enumerate(ids[:6]):
        lines.append(line(f"07:{10 + i}", "booked", doctorId=D, appointmentId=appointment_id,
                          date=f"2026-11-23T{9 + i // 2:02d}:{30 * (i % 2):02d}:00Z"))
    for i, appointment_id in enumerate(ids[:6]):
        lines.append(line(f"{9 + i // 2:02d}:{30 * (i % 2):02d}", "status", appointmentId=appointment_id,
                          status="in_consultation"))
        lines.append(line(f"{9 + i // 2:02d}:{30 * (i % 2) + 29:02d}", "status", appointmentId=appointment_id,
                          status="completed"))
    day_two = [json.dumps({"at": "2026-11-24T08:00:00Z", "event": "booked", "doctorId": D, "appointmentId": ids[6],
                           "date": "2026-11-24T09:00:00Z"}),
               json.dumps({"at": "2026-11-24T08:01:00Z", "event": "booked", "doctorId": D, "appointmentId": ids[7],
                           "date": "2026-11-24T09:00:00Z"}),
               json.dumps({"at": "2026-11-24T08:30:00Z", "event": "observe", "doctorId": D})]
    learned = [json.loads(x) for x in replay(lines + day_two).stdout.splitlines()]
    pinned = [json.loads(x) for x in replay(lines + day_two, env_extra={"ETA_LEARNING": "off"}).stdout.splitlines()]
    assert pinned[1]["expectedStartAt"] == "2026-11-24T09:12:00Z"
    assert learned[1]["expectedStartAt"] > "2026-11-24T09:13:00Z"
    assert learned[1]["delayMinutes"] > 12


BAD = [
    ("not JSON", "{not json", "not JSON"),
    ("not an object", "[1, 2]", "not a JSON object"),
    ("unknown event", line("08:40", "teleport", doctorId=D), "unknown event"),
    ("missing field", json.dumps({"at": "2026-11-23T08:40:00Z", "event": "observe"}), "doctorId"),
    ("unknown field", line("08:40", "observe", doctorId=D, colour="red"), "colour"),
    ("time without a zone", json.dumps({"at": "2026-11-23T08:40:00", "event": "observe", "doctorId": D}), "at"),
    ("malformed id", line("08:40", "observe", doctorId="nope"), "doctorId"),
    ("out-of-range lateness", line("08:40", "doctor", doctorId=D, lateByMinutes=601), "lateByMinutes"),
    ("unknown status", line("08:40", "status", appointmentId=A1, status="teleported"), "status"),
    ("time going backwards", line("07:00", "observe", doctorId=D), "backwards"),
    ("unknown appointment", line("08:40", "status", appointmentId="6563a1f0c2b1e4a7d9f0ffff",
                                 status="completed"), "never booked"),
    ("unknown doctor", line("08:40", "observe", doctorId="6563a1d2c2b1e4a7d9f0ffff"), "no doctor event"),
    ("impossible transition", line("08:40", "status", appointmentId=A1, status="cancelled") + "\n"
     + line("08:41", "status", appointmentId=A1, status="confirmed"), "cannot go from cancelled"),
    ("booked twice", line("08:40", "booked", doctorId=D, appointmentId=A1, date="2026-11-23T10:00:00Z"),
     "already booked"),
]


@pytest.mark.parametrize("name,bad,message", BAD, ids=[b[0] for b in BAD])
def test_a_malformed_line_stops_with_its_line_number(replay, name, bad, message):
    lines = GOOD[:4] + bad.split("\n")
    result = replay(lines)
    assert result.returncode == 2
    bad_number = 4 + len(bad.split("\n"))
    assert f"line {bad_number}:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 2  # what came before the bad line was answered


@pytest.mark.parametrize("args,message", [
    ([], "give a FILE"),
    (["--from-store"], "--doctor"),
    (["x.jsonl", "--doctor", D], "--from-store"),
])
def test_usage_errors(replay, args, message):
    result = replay([], *args, stdin=False)  # `eta-replay` alone when args is empty
    assert result.returncode == 2 and message in result.stderr


def test_from_store_needs_a_database(replay):
    result = replay([], "--from-store", "--doctor", D, "--since", "2026-11-01", stdin=False)
    assert result.returncode == 2 and "MONGO_URI" in result.stderr


@pytest.mark.slow  # starts `python -m server` in a process of its own: about a second each, more under load
def test_a_missing_file_is_reported():
    result = run([], "/nonexistent/history.jsonl", stdin=False)
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_history_from_the_store_replays_like_the_recorded_lines():
    """`--from-store` rebuilds replay lines from the appointments' own times (createdAt, startedAt,
    completedAt, updatedAt) and observes while a booking is near; checked here on the embedded store
    (the command itself refuses to run without MONGO_URI, see above)."""
    import asyncio
    import io
    from datetime import datetime, timedelta, timezone

    from bson import ObjectId

    from config.settings import load_settings
    from server.replay import history_from_store, replay_lines
    from infra.store import Store

    day = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)

    async def scenario():
        store = Store.connect(None, "from_store_test")
        doctor = ObjectId(D)
        await store.insert_doctor({"_id": doctor, "name": "D", "email": "d@x.org", "avgConsultMinutes": 15})
        base = {"doctor": doctor, "patient": ObjectId(), "reason": "", "version": 3}
        await store.insert_appointment({**base, "_id": ObjectId(A1), "date": day, "status": "completed",
                                        "createdAt": day - timedelta(hours=2), "updatedAt": day + timedelta(minutes=20),
                                        "startedAt": day + timedelta(minutes=2), "completedAt": day + timedelta(minutes=20)})
        await store.insert_appointment({**base, "_id": ObjectId(A2), "date": day + timedelta(minutes=15),
                                        "status": "no_show", "createdAt": day - timedelta(hours=1),
                                        "updatedAt": day + timedelta(minutes=21)})
        await store.insert_appointment({**base, "_id": ObjectId(), "date": day - timedelta(days=3),
                                        "status": "completed", "createdAt": day - timedelta(days=4),
                                        "updatedAt": day - timedelta(days=3)})  # before --since
        lines = await history_from_store(store, doctor, day - timedelta(hours=9))
        out = io.StringIO()
        await replay_lines(load_settings(QUICK, env_file=None), lines, out)
        return lines, [json.loads(x) for x in out.getvalue().splitlines()]

    lines, outputs = asyncio.run(scenario())
    events = [json.loads(x) for x in lines]
    assert events[0] == {"at": "2026-11-23T07:00:00Z", "event": "doctor", "doctorId": D, "avgConsultMinutes": 15}
    assert [(e["event"], e.get("status")) for e in events if e["event"] != "observe"][1:] == [
        ("booked", None), ("booked", None), ("status", "in_consultation"), ("status", "completed"),
        ("status", "no_show")]
    assert all(a["at"] <= b["at"] for a, b in zip(events, events[1:]))
    # Observed while someone waits for a booking within three hours, every five minutes.
    observed_at = sorted({o["at"] for o in outputs})
    assert observed_at[0] == "2026-11-23T07:00:00Z" and "2026-11-23T07:05:00Z" in observed_at
    first = [o for o in outputs if o["at"] == "2026-11-23T08:00:00Z"]
    assert [(o["appointmentId"], o["position"], o["expectedStartAt"]) for o in first] == [
        (A1, 0, "2026-11-23T09:00:00Z"), (A2, 1, "2026-11-23T09:15:00Z")]
