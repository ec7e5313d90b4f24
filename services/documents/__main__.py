"""`python -m services.documents`: run the documents service.

The imports sit inside the guard: every render process (multiprocessing's `spawn`) imports this
module again, and must not load the service's web, database and Kafka stack that it never uses
(1.5 s of CPU per render process at each start, on the path of a restart's first PDF)."""

if __name__ == "__main__":
    from services.documents.app import build
    from shared.settings import get_settings

    svc, app = build(get_settings())
    svc.run(app)
