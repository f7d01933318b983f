"""Who may call what is declared once (`core.policy.RULES`), enforced by the domain workflow itself,
and described by the API documents from the same declaration: no edge holds a rule of its own."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import domain
from core import policy
from core.access import Principal
from core.errors import Forbidden, Unauthorized
from domain import accounts, appointments, audit, doctors, queues, stats, users
from schemas.operations import OPERATIONS

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Principal("a" * 24, "admin")
PATIENT = Principal("b" * 24, "patient")
DOCTOR = Principal("c" * 24, "doctor", doctor_id="d" * 24)


def guarded_workflows() -> dict[str, list[str]]:
    """operation name → the domain functions declared as it."""
    found: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__ and hasattr(value, "operation"):
                found.setdefault(value.operation, []).append(f"{module.__name__}.{name}")
    return found


def test_every_declared_operation_is_a_workflow_and_every_workflow_is_declared_once():
    found = guarded_workflows()
    assert set(found) == set(policy.RULES)
    assert all(len(names) == 1 for names in found.values()), found


def test_every_api_operation_takes_its_rule_from_the_domain():
    described = {op.rule for op in OPERATIONS if op.rule is not None}
    missing = [f"{op.method.upper()} {op.path}" for op in OPERATIONS if op.api and op.rule is None]
    assert not missing, f"API operations without a declared rule: {missing}"
    # every rule but the socket's own commands is what some REST operation does
    assert described == {name for name in policy.RULES if not name.startswith("live.")}


def test_the_description_words_the_rule_it_was_given():
    by_rule = {op.rule: op for op in OPERATIONS if op.rule}
    assert by_rule["invites.create"].auth == ("admin",)
    assert by_rule["appointments.book"].auth == ("patient",)
    assert by_rule["doctors.set_status"].auth == ("doctor", "admin")
    assert by_rule["doctors.set_status"].relation_rule == "admins, or that doctor"
    assert by_rule["doctors.list"].auth == "public"
    assert by_rule["queue.position"].auth == "signed-in"
    assert by_rule["queue.position"].relation_rule == "its patient, its doctor, admins"


@pytest.mark.parametrize("path", sorted((ROOT / "handlers").glob("*.py")) + sorted((ROOT / "live").glob("*.py")),
                         ids=lambda p: p.name)
def test_no_edge_spells_a_role(path):
    tree = ast.parse(path.read_text())
    roles = {node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in ("admin", "doctor", "patient")}
    calls = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and node.attr in ("require_user", "relation", "is_staff_of")}
    assert not roles and not calls, f"{path.name} decides who may do something: {roles | calls}"


# -- the domain refuses by itself, whoever calls it (a socket command, the CLI, a test) ---------------
ADMIN_ONLY = [(accounts.create_invite, ({},)), (accounts.page_invites, ({},)), (accounts.revoke_invite, ("e" * 24,)),
              (users.page, ({},)), (users.set_disabled, ("e" * 24, True)), (audit.page, ({},)),
              (doctors.create_doctor, ({},)), (doctors.update_doctor, ("d" * 24, {})),
              (doctors.delete_doctor, ("d" * 24,)), (appointments.page, ({},))]


@pytest.mark.parametrize("workflow,args", ADMIN_ONLY, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("caller", [PATIENT, DOCTOR], ids=["patient", "doctor"])
async def test_admin_workflows_refuse_everyone_else_before_reading_anything(workflow, args, caller):
    with pytest.raises(Forbidden):
        await workflow(None, caller, *args)  # no services at all: refused before any is touched


@pytest.mark.parametrize("workflow,args", ADMIN_ONLY + [
    (appointments.book, ({},)), (doctors.set_status, ("d" * 24, {})), (stats.day_stats, ("d" * 24, None)),
    (queues.doctor_queue, ("d" * 24,)), (queues.locate_appointment, ("e" * 24,)),
    (appointments.visible_appointment, ("e" * 24,)), (appointments.reschedule, ("e" * 24, {"date": None}))], ids=lambda v: getattr(v, "__name__", ""))
async def test_every_guarded_workflow_wants_a_caller(workflow, args):
    with pytest.raises(Unauthorized):
        await workflow(None, None, *args)


async def test_only_patients_book():
    for caller in (ADMIN, DOCTOR):
        with pytest.raises(Forbidden):
            await appointments.book(None, caller, {})


@pytest.mark.parametrize("workflow,args", [(doctors.set_status, ({},)), (stats.day_stats, (None,)),
                                           (appointments.call_next, ()), (appointments.waiting_of_doctor, ())],
                         ids=lambda v: getattr(v, "__name__", ""))
async def test_another_doctor_is_refused_by_relation(workflow, args):
    other_doctor = "f" * 24
    with pytest.raises(Forbidden):
        await workflow(None, DOCTOR, other_doctor, *args)


def test_relate_answers_the_relation_or_refuses():
    rule = policy.rule("appointments.get")
    assert rule.relate(ADMIN, "d" * 24, PATIENT.user_id) == "admin"
    assert rule.relate(DOCTOR, "d" * 24, PATIENT.user_id) == "doctor"
    assert rule.relate(PATIENT, "d" * 24, PATIENT.user_id) == "owner"
    with pytest.raises(Forbidden):
        rule.relate(PATIENT, "d" * 24, "9" * 24)
    with pytest.raises(Forbidden):
        policy.rule("doctors.set_status").relate(PATIENT, "d" * 24)


def test_a_reschedule_is_for_the_parties_to_the_appointment_only():
    rule = policy.rule("appointments.reschedule")
    assert rule.relate(PATIENT, "d" * 24, PATIENT.user_id) == "owner"
    assert rule.relate(DOCTOR, "d" * 24, PATIENT.user_id) == "doctor"
    assert rule.relate(ADMIN, "f" * 24, PATIENT.user_id) == "admin"
    for caller, doctor in ((PATIENT, "d" * 24), (DOCTOR, "f" * 24)):
        with pytest.raises(Forbidden):
            rule.relate(caller, doctor, "9" * 24)  # another patient's, another doctor's


def test_a_public_workflow_is_the_function_itself():
    assert inspect.iscoroutinefunction(accounts.register) and accounts.register.rule.public
