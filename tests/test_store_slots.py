"""The one-booking-per-slot index behaves on the embedded store as it does on MongoDB: a unique index
over the appointments that hold a slot only (`partialFilterExpression`), built over stored data,
refusing a second holder on insert and on update, and letting a slot go with `$unset`. Runs against
MongoDB too when MEDPHARMA_TEST_MONGO_URI is set."""

import uuid

import pytest
from bson import ObjectId

from infra.store import DuplicateKeyError, Store, duplicated_field
from tests.conftest import TEST_MONGO_URI


@pytest.fixture
async def store():
    store = Store.connect(TEST_MONGO_URI, f"medpharma_test_{uuid.uuid4().hex[:12]}")
    try:
        yield store
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_appointments_without_a_slot_never_collide_even_when_the_index_is_built_over_them(store):
    for _ in range(3):  # stored before the index existed, as after an upgrade or a restart
        await store.appointments.insert_one({"doctor": ObjectId(), "status": "cancelled"})
    await store.ensure_indexes()
    await store.ensure_indexes()  # a restart builds the indexes again over the same data
    await store.appointments.insert_one({"doctor": ObjectId(), "status": "pending"})
    assert await store.appointments.count_documents({}) == 4


async def test_a_held_slot_refuses_a_second_holder_on_insert_and_on_update(store):
    await store.ensure_indexes()
    await store.appointments.insert_one({"slot": "d|2027-03-22T09:00:00Z"})
    with pytest.raises(DuplicateKeyError) as refused:
        await store.appointments.insert_one({"slot": "d|2027-03-22T09:00:00Z"})
    assert duplicated_field(refused.value) == "slot"
    other = await store.appointments.insert_one({"slot": "d|2027-03-22T09:30:00Z"})
    with pytest.raises(DuplicateKeyError):
        await store.appointments.find_one_and_update({"_id": other.inserted_id},
                                                     {"$set": {"slot": "d|2027-03-22T09:00:00Z"}})
    assert (await store.appointments.find_one({"_id": other.inserted_id}))["slot"] == "d|2027-03-22T09:30:00Z"


async def test_unsetting_a_slot_frees_it_at_once(store):
    await store.ensure_indexes()
    first = await store.appointments.insert_one({"slot": "d|2027-03-22T09:00:00Z"})
    await store.appointments.update_one({"_id": first.inserted_id}, {"$unset": {"slot": ""}})
    await store.appointments.insert_one({"slot": "d|2027-03-22T09:00:00Z"})
    assert await store.appointments.count_documents({"slot": {"$exists": True}}) == 1


async def test_building_the_index_over_two_holders_of_one_slot_is_refused(store):
    for _ in range(2):
        await store.appointments.insert_one({"slot": "d|2027-03-22T09:00:00Z"})
    with pytest.raises(DuplicateKeyError) as refused:  # MongoDB answers E11000 to the index build too
        await store.ensure_indexes()
    assert "E11000" in str(refused.value)
