"""Imports every ORM model module so `Base.metadata` is complete (migrations, tests).

Organs that add tables put their models in their own module and add one import line here.
"""

from sanad.registry import models  # noqa: F401
