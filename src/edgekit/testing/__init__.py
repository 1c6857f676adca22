"""Test tools edgekit ships for runtime authors and for its own tests.

:mod:`edgekit.testing.conformance` is the suite every runtime adapter passes: a plugin's test
module subclasses :class:`~edgekit.testing.conformance.RuntimeConformance` with ``runtime = "myrt"``
and gets one pytest test per case and format. :mod:`edgekit.testing.cases` holds the cases (each
with the capabilities it ``requires``); the other modules build models, fuzz loaders, stress
predictors, write bundles (:mod:`~edgekit.testing.bundles`) and walk a command line's commands
(:mod:`~edgekit.testing.cli`). Nothing here is imported by ``import edgekit``.

Example::

    from edgekit.testing.conformance import RuntimeConformance

    class TestMyRuntime(RuntimeConformance):
        runtime = "myrt"
"""
