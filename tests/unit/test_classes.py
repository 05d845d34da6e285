"""Recording a method's receiver by name and finding it again (engine/classes.py)."""

from __future__ import annotations

import pytest

from celery_durable.engine.classes import (
    CLASS_NAME_ATTRIBUTE,
    ClassRegistry,
    Membership,
    Receiver,
    split_receiver,
)
from celery_durable.error import DBOSWorkflowFunctionNotFoundError


class Shop:
    def __init__(self, config_name: str) -> None:
        self.config_name = config_name

    def sell(self, item: str) -> str:
        return item


def member(kind: str) -> Membership:
    membership = Membership()
    membership.kind = kind  # type: ignore[assignment]
    return membership


def test_an_instance_is_recorded_by_its_class_and_config_name() -> None:
    receiver, args = split_receiver(member("instance"), Shop.sell, (Shop("north"), "tea"))
    assert receiver == Receiver(class_name="Shop", config_name="north")
    assert args == ("tea",)
    assert Receiver.decode(receiver.encode()) == receiver


def test_a_class_is_recorded_under_its_registered_name() -> None:
    class Named:
        pass

    setattr(Named, CLASS_NAME_ATTRIBUTE, "Registered")
    receiver, args = split_receiver(member("class"), Shop.sell, (Named, 1))
    assert receiver == Receiver(class_name="Registered", config_name=None)
    assert args == (1,)


def test_static_methods_and_functions_record_no_receiver() -> None:
    assert split_receiver(member("static"), Shop.sell, (1, 2)) == (None, (1, 2))
    assert split_receiver(Membership(), len, ("x",)) == (None, ("x",))


def test_a_registered_instance_is_found_again_and_a_missing_one_is_named() -> None:
    registry = ClassRegistry()
    north = Shop("north")
    registry.register_instance(north, "north")
    registry.register_class(Shop, "Shop")
    assert registry.resolve("w", Receiver(class_name="Shop", config_name="north")) is north
    assert registry.resolve("w", Receiver(class_name="Shop", config_name=None)) is Shop
    with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="'Shop/south' is not registered"):
        registry.resolve("w", Receiver(class_name="Shop", config_name="south"))
    with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="class 'Gone' is not registered"):
        registry.resolve("w", Receiver(class_name="Gone", config_name=None))
    with pytest.raises(Exception, match=r"^Duplicate instance registration"):
        registry.register_instance(Shop("north"), "north")
