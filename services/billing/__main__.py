"""`python -m services.billing`: run the billing service."""

from services.billing.app import build
from shared.settings import get_settings

svc, app = build(get_settings())
svc.run(app)
