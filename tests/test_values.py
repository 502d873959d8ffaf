"""`fast_init` keeps every promise of the dataclass `__init__` it replaces."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime

import pytest

from gemini.loop import TickResult
from gemini.policy.decision import Capacity, Decision, MetricResult, MetricStatus, Step
from gemini.policy.state import PolicyState, Recommendation, ScaleEvent
from gemini.scalers import ApplyResult, ApplyStatus
from gemini.series import Observation, Sample
from gemini.values import BUILDER_MIN_FIELDS, fast_init

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAST = [
    TickResult,
    Capacity,
    Decision,
    MetricResult,
    Step,
    PolicyState,
    Recommendation,
    ScaleEvent,
    ApplyResult,
    Observation,
    Sample,
]


def _twin(cls: type) -> type:
    """The same class as plain `dataclass(frozen=True, slots=True)` would build it."""
    namespace = {
        "__annotations__": dict(cls.__annotations__),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            namespace[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f.name] = field(default_factory=f.default_factory)
    return dataclass(frozen=True, slots=True)(type(cls.__name__, (), namespace))


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_same_parameters_and_defaults_as_the_dataclass_init(cls: type) -> None:
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(_twin(cls).__init__).parameters
    assert list(ours) == list(theirs)
    for name, p in theirs.items():
        default = p.default
        if repr(default) == "<factory>":
            assert repr(ours[name].default) == "<factory>", name
        else:
            assert ours[name].default == default, name


def _examples() -> list[tuple[type, tuple[object, ...], dict[str, object]]]:
    step = Step("rate", 3, "ScaleUpLimit")
    result = MetricResult(
        "lag", MetricStatus.OK, 5.0, NOW, 1.0, 2.0, "AverageValue", 3, None, active=True
    )
    return [
        (Step, ("rate", 3, "ScaleUpLimit"), {}),
        (Recommendation, (NOW, 4), {}),
        (ScaleEvent, (), {"at": NOW, "change": -2}),
        (PolicyState, ((Recommendation(NOW, 1),),), {"last_active_at": NOW}),
        (Capacity, (3,), {"floor": 2, "floor_reason": "StorageFloor"}),
        (Capacity, (3, 3, None, None, 9, "Max", True, "Blocked", {"a": 1}, ("x",)), {}),
        (Sample, (NOW, 1.5), {}),
        (Observation, ("lag", (Sample(NOW, 1.0),)), {"error": "boom", "error_kind": "x"}),
        (ApplyResult, (ApplyStatus.APPLIED, 4, "Applied"), {}),
        (MetricResult, ("lag", MetricStatus.MISSING), {"error": "no samples"}),
        (
            Decision,
            ("p", NOW, "Active", 2, 3, 3, 1, 10, ("ScaleUp",), (result,)),
            {"steps": (step,), "outcome": "applied", "applied": True},
        ),
        (TickResult, ("ns/p", PolicyState()), {"error": "TargetNotFound"}),
    ]


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"), _examples(), ids=lambda v: getattr(v, "__name__", "")
)
def test_builds_the_same_value_as_the_dataclass_init(
    cls: type, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    ours = cls(*args, **kwargs)
    theirs = _twin(cls)(*args, **kwargs)
    assert type(ours) is cls  # never the builder a class of 4+ fields is built as
    for f in dataclasses.fields(cls):
        assert getattr(ours, f.name) == getattr(theirs, f.name), f.name
    assert ours == cls(*args, **kwargs)
    assert _hash(ours) == _hash(theirs)
    assert repr(ours) == repr(theirs)
    assert dataclasses.replace(ours) == ours
    assert pickle.loads(pickle.dumps(ours)) == ours  # worker processes send these back
    assert copy.deepcopy(ours) == ours


def _hash(value: object) -> int | str:
    try:
        return hash(value)
    except TypeError as exc:  # a dict field: unhashable both ways
        return str(exc)


def test_stays_frozen_and_factories_are_fresh() -> None:
    a, b = Capacity(1), Capacity(1)
    assert a.detail == {} and a.detail is not b.detail
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.current = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="current"):
        Capacity()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Step("rate", 1, "x", "extra")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        Step("rate", 1, "x", unexpected=1)  # type: ignore[call-arg]


def test_refuses_what_it_cannot_reproduce() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            assert self.x > 0

    @dataclass(frozen=True, slots=True)
    class Hidden:
        x: int
        y: int = field(init=False, default=0)

    @dataclass(frozen=True, slots=True)
    class Keyword:
        x: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: InitVar[int] = 1

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class Private:
        _set0: int

    for cls in (Mutable, Checked, Hidden, Keyword, WithInitVar, NoSlots, Private):
        with pytest.raises(TypeError, match=cls.__name__):
            fast_init(cls)


@fast_init
@dataclass(frozen=True, slots=True)
class _Wide:
    a: int
    b: int
    c: int = 3
    d: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _WideChild(_Wide):
    e: int = 5


def test_a_wide_class_is_built_through_its_builder_and_ends_as_itself() -> None:
    assert len(dataclasses.fields(_Wide)) >= BUILDER_MIN_FIELDS
    value = _Wide(1, 2)
    assert type(value) is _Wide
    assert (value.a, value.b, value.c, value.d) == (1, 2, 3, [])
    assert value == _Wide(1, 2) and value != _Wide(1, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del value.b  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(value)) == value


def test_a_subclass_of_a_fast_class_keeps_its_own_type() -> None:
    # the subclass's dataclass __init__ is its own; a subclass that inherits the fast __init__
    # goes the descriptor way and stays what it is
    child = _WideChild(1, 2)
    assert type(child) is _WideChild and child.e == 5

    class Inherits(_Wide):
        __slots__ = ()

    value = Inherits(1, 2, 4)
    assert type(value) is Inherits
    assert (value.a, value.b, value.c, value.d) == (1, 2, 4, [])
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 9  # type: ignore[misc]
