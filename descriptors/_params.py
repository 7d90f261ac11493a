"""The parameter half of scikit-learn's estimator contract, without importing scikit-learn.

:class:`FrameDescriptor <monoculture.descriptors.base.FrameDescriptor>` used to subclass
``sklearn.base.BaseEstimator``, which made ``import monoculture.descriptors`` (and so ``monoculture embed``,
which needs no scikit-learn) import ``sklearn.base`` and with it scipy: 0.8-2.2 s on the 2-core machine
(issue #22). :class:`ParamsMixin` gives the same ``get_params`` / ``set_params`` (nested ``a__b`` keys
included), the changed-parameters ``repr`` and, when scikit-learn asks for them, its tags, so that
``sklearn.base.clone``, ``Pipeline`` and grid searches keep working on descriptors; scikit-learn is imported
only by those callers (tested in ``tests/descriptors/test_registry_base.py``).
"""
from __future__ import annotations

import inspect
from typing import Any

__all__ = ["ParamsMixin", "not_fitted_error"]


class ParamsMixin:
    """``get_params`` / ``set_params`` from the parameters of ``__init__`` (scikit-learn's convention: the
    constructor stores each argument unchanged under its own name and takes no ``*args`` / ``**kwargs``)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        names = []
        for p in params:
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise RuntimeError(f"{cls.__name__}.__init__ takes *args or **kwargs; estimators must list "
                                   "their parameters")
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this object (``deep``: also ``name__param`` of parameters that have ``get_params``).

        Returns
        -------
        dict of str to object
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> "ParamsMixin":
        """Set parameters (``name`` or nested ``name__param``); returns ``self``.

        Raises
        ------
        ValueError
            A name that is not a parameter.
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: "
                                 f"{sorted(self._get_param_names())}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        """``Class(param=value, ...)`` with the parameters that differ from their defaults."""
        signature = inspect.signature(type(self).__init__).parameters
        shown = []
        for name in self._get_param_names():
            value = getattr(self, name, None)
            default = signature[name].default
            try:
                same = default is not inspect.Parameter.empty and bool(value == default)
            except Exception:  # noqa: BLE001 - arrays and objects without a boolean ==
                same = value is default
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self):
        """scikit-learn's tags (>= 1.6) of a transformer; only scikit-learn calls this, so it is loaded."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags())


def not_fitted_error(message: str) -> Exception:
    """scikit-learn's ``NotFittedError`` (a ValueError and AttributeError), imported when it is raised."""
    from sklearn.exceptions import NotFittedError

    return NotFittedError(message)
