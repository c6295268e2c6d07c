"""Load the parts of the Genesys Cloud SDK that the bot uses, not all of it.

`import PureCloudPlatformClientV2` runs the package's `__init__`, which imports every one of
its ~6,650 model modules and ~175 API modules: about 2 s and 200 MB before the first request.
The bot uses two APIs and a few dozen models.

Importing this module installs the lean loader (`install()`) and gives the package as `sdk`:
the modules that talk to Genesys (`client`, `auth`, `queries`, `transport`) import the SDK
through it, so the lean loading happens where a client is built, and `import genesys` (which
the Slack side does for the error types and models) loads nothing of the SDK.

`install()` registers the package (and its `models` and `apis` subpackages) as modules whose
names resolve on first use (PEP 562 module `__getattr__`). Which submodule defines which name
is read from the SDK's own `__init__.py` files, so nothing here is a second list to keep in
step. Every SDK module that is loaded is the SDK's own code, unchanged; `from
PureCloudPlatformClientV2 import X` keeps working for any X the package exports.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

PACKAGE = "PureCloudPlatformClientV2"
_EXPORT = re.compile(r"^from \.([\w.]+) import (\w+)\s*$", re.MULTILINE)


class _LazyPackage(types.ModuleType):
    """A package whose exported names are imported from their submodule on first use.

    Its `__init__.py` is read for the name -> submodule table only then too: the models'
    one is large, and reading it at `install()` cost every process start about 35 ms.
    """

    _init: Path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        exports = self.__dict__.get("_exports")
        if exports is None:
            exports = {
                exported: f"{self.__name__}.{submodule}"
                for submodule, exported in _EXPORT.findall(self._init.read_text(encoding="utf-8"))
            }
            self._exports = exports
        submodule = exports.get(name)
        if submodule is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(submodule), name)
        setattr(self, name, value)
        return value


def install() -> types.ModuleType:
    """Make `PureCloudPlatformClientV2` importable lazily; return the package module.

    If the package has already been imported the ordinary way, that module is returned.
    """
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(f"{PACKAGE} is not installed")
    root = Path(spec.origin).parent
    package = _lazy_package(PACKAGE, root)
    # Attributes, as the import system would set them after importing the subpackages.
    for subpackage in ("models", "apis"):
        setattr(package, subpackage, _lazy_package(f"{PACKAGE}.{subpackage}", root / subpackage))
    return package


def _lazy_package(name: str, folder: Path) -> _LazyPackage:
    init = folder / "__init__.py"
    module = _LazyPackage(name)
    module.__file__ = str(init)
    module.__path__ = [str(folder)]
    module.__package__ = name
    module.__spec__ = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(folder)]
    )
    module._init = init
    sys.modules[name] = module
    return module


def submodule(name: str) -> types.ModuleType:
    """One of the SDK's own modules by name (`"rest"`, `"logger"`, ...), loaded lazily too."""
    return importlib.import_module(f"{PACKAGE}.{name}")


sdk = install()
