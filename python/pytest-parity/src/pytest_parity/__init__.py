"""pytest-parity: every `parity check` case x backend (and dataset gate) as a pytest item.

The plugin itself lives in :mod:`pytest_parity.plugin` and is registered through the
``pytest11`` entry point, so installing the package is enough to get ``--parity``.
"""

__version__ = "0.1.0"
