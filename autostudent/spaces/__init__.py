"""Search spaces: families of student architectures declared as data (search_spaces/*.yaml,
shipped in the package).

A space names a *generator* (registered here by name) and splits the generator's values into
searchable `params` (ranges the sampler explores) and `fixed` values. A point of the space plus a
seed gives a *spec*: a JSON-able dict that fully determines one student (autostudent.student
builds the module from it). This package imports no torch: the sampler and the config checks use
it without paying for a torch import.

Its parts are private modules named by role: ``_params`` (the searchable params),
``_generators`` (the values every generator reads and the registry of generators), ``_space``
(``SearchSpace``: validation and point → spec), ``_overrides`` (narrowing a space),
``_messages`` (validation errors in one line) and ``_loading`` (by name or YAML path); the
built-in generators are ``chain`` and ``nago``.
"""

# The built-in generators register themselves on import.
from autostudent.spaces import chain, nago
from autostudent.spaces._generators import (
    GENERATORS,
    BuildFn,
    Generator,
    OpType,
    StudentValues,
    generator,
)
from autostudent.spaces._loading import available_spaces, is_space_path, load_space
from autostudent.spaces._overrides import OverrideError
from autostudent.spaces._params import (
    AnyParam,
    CategoricalParam,
    FloatParam,
    IntParam,
    ParamSpec,
    RangeParam,
)
from autostudent.spaces._space import SearchSpace

__all__ = [
    "GENERATORS",
    "AnyParam",
    "BuildFn",
    "CategoricalParam",
    "FloatParam",
    "Generator",
    "IntParam",
    "OpType",
    "OverrideError",
    "ParamSpec",
    "RangeParam",
    "SearchSpace",
    "StudentValues",
    "available_spaces",
    "chain",
    "generator",
    "is_space_path",
    "load_space",
    "nago",
]
