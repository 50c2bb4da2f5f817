"""Imports every ORM model module so `Base.metadata` is complete (migrations, tests).

Organs that add tables put their models in their own module and add one import line here.
"""

import sanad.registry.access_models
import sanad.registry.card_models
import sanad.registry.crypto_models
import sanad.registry.sync_models  # noqa: F401
from sanad.registry import models  # noqa: F401
