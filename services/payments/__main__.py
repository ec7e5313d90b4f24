"""`python -m services.payments`: run the payments service."""

from services.payments.app import build
from shared.settings import get_settings

svc, app = build(get_settings())
svc.run(app)
