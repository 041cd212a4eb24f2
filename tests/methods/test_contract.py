"""The method contract (``methods.base.Method``) is declared and checked: every registered method
implements it and builds from a default run, and a class that breaks it fails when it is
defined, not in fold 4 of a run."""

from __future__ import annotations

import inspect

import pytest

from chmfl.errors import ChmflError
from chmfl.methods.base import CAPABILITIES, FitContext, Method
from chmfl.methods.registry import METHODS, create, method_class
from chmfl.methods.spec import MethodRun


@pytest.mark.parametrize("name", list(METHODS))
def test_every_registered_method_implements_the_contract(name):
    cls = method_class(name)
    assert issubclass(cls, Method) and not inspect.isabstract(cls)
    assert set(cls.capabilities) <= set(CAPABILITIES)
    for cap in CAPABILITIES:  # declared exactly where implemented
        assert (getattr(cls, cap) is not getattr(Method, cap)) == (cap in cls.capabilities), cap
    m = create(MethodRun(name), FitContext(seed=5))
    assert isinstance(m, cls) and m.name == name


def _cls(**body):
    base = {"build": classmethod(lambda c, *a, **k: c()), "fit": lambda s, c: s,
            "predict_proba": lambda s, c: None, "save": lambda s, d, extra=None: None,
            "load": classmethod(lambda c, d: c())}
    return type("Broken", (Method,), {**base, **body})


def test_a_broken_method_fails_when_defined():
    _cls()  # the minimal complete method is fine
    with pytest.raises(TypeError, match="declares 'predict_mask' but does not implement"):
        _cls(capabilities=frozenset({"predict_mask"}))
    with pytest.raises(TypeError, match="implements 'embed' but does not declare"):
        _cls(embed=lambda s, c: None)
    with pytest.raises(TypeError, match="unknown capabilities"):
        _cls(capabilities=frozenset({"explain"}))
    with pytest.raises(TypeError, match="load must be a classmethod"):
        _cls(load=lambda s, d: s)
    with pytest.raises(TypeError):  # fit missing: abstract, cannot be made
        type("NoFit", (Method,), {"build": classmethod(lambda c: c()), "predict_proba": lambda s, c: None,
                                  "save": lambda s, d: None, "load": classmethod(lambda c, d: c())})()


def test_bad_variant_arguments_are_one_line_errors():
    with pytest.raises(ChmflError, match="no option nope"):
        create(MethodRun("chmfl", model_kwargs={"nope": 1}))
    with pytest.raises(ChmflError, match="no option n_trees"):
        create(MethodRun("hc-rf", model_kwargs={"n_trees": 3}))
    with pytest.raises(ChmflError, match="unknown method"):
        MethodRun("chmfl-xl")
    with pytest.raises(ChmflError, match="seg_weight must be a float"):
        MethodRun("chmfl", {"seg_weight": "high"})


def test_named_size_lives_with_the_network():
    from chmfl.models.chmfl import SIZES

    m = create(MethodRun("chmfl", size="demo"))
    assert m.model_kwargs == SIZES["demo"]
    assert create(MethodRun("mask-hmfl", size="demo")).model_kwargs == {"widths": SIZES["demo"]["widths"]}


@pytest.mark.parametrize("name", list(METHODS))
def test_registered_endpoint_matches_the_declared_survival_contract(name):
    """A method registered for DM-free survival declares predict_risk (and the registry says
    so); a DM classifier does not."""
    from chmfl.methods.base import SURVIVAL

    cls = method_class(name)
    assert (SURVIVAL in cls.capabilities) == (METHODS[name].endpoint == "dm-free-survival")
    if "predict_survival" in cls.capabilities:
        assert SURVIVAL in cls.capabilities


def test_a_broken_survival_method_fails_when_defined():
    ok = _cls(capabilities=frozenset({"predict_risk", "predict_survival"}),
              predict_risk=lambda s, c: None, predict_survival=lambda s, c, t: None)
    assert set(ok().predict_all([])) == {"risk"}  # a survival model records its risk, not P(DM)
    with pytest.raises(TypeError, match="declares 'predict_survival' but not 'predict_risk'"):
        _cls(capabilities=frozenset({"predict_survival"}), predict_survival=lambda s, c, t: None)
    with pytest.raises(TypeError, match="implements 'predict_risk' but does not declare"):
        _cls(predict_risk=lambda s, c: None)


def test_registry_endpoint_disagreeing_with_the_class_is_refused(monkeypatch):
    from chmfl.methods.registry import MethodInfo

    monkeypatch.setitem(METHODS, "floor-as-survival",
                        MethodInfo("chmfl.methods.classical:SuvmaxVolume", "wrong", endpoint="dm-free-survival"))
    with pytest.raises(TypeError, match="does not declare 'predict_risk'"):
        method_class("floor-as-survival")
