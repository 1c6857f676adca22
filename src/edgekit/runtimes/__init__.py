"""Built-in runtime adapters, one module each; registered through the ``edgekit.runtimes`` entry points."""
