"""sanad: refugee registration and smart identity cards."""

__version__ = "0.1.0"
