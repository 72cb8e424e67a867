"""callcenter/config.

``models`` is imported first, whichever module of the package is asked for: the
``campaigns:`` models (:mod:`callcenter.config.campaign`) build on its alphabets and
:class:`~callcenter.config.models.CallCenterConfig` holds them, so ``models`` imports
``campaign`` part-way through and must be the one that starts.
"""

from callcenter.config import models as models  # import order, see above
