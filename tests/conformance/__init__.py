"""Conformance tests for the Exposition module (a package, so that this directory's conftest is
imported as ``conformance.conftest`` and does not shadow ``tests/conftest.py``, which
``tests/e2e`` imports by the plain name ``conftest``)."""
