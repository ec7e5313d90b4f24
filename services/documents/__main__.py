"""`python -m services.documents`: run the documents service."""

from services.documents.app import build
from shared.settings import get_settings

if __name__ == "__main__":
    svc, app = build(get_settings())
    svc.run(app)
