"""xir's dialects, one module each; they are registered through the ``xir.dialects`` entry points."""
