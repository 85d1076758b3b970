"""labenv: a containerized mail lab that reproduces how e-mail moves between hosts."""

__version__ = "0.1.0"
