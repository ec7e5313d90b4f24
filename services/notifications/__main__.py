"""`python -m services.notifications`: run the notifications service."""

from services.notifications.app import build
from shared.settings import get_settings

svc, app = build(get_settings())
svc.run(app)
