"""The staff console's pages, one router per feature, each thin over the services' APIs."""

from services.web.staff import (
    billing,
    bills,
    clients,
    documents,
    emails,
    estimates,
    payments,
    payouts,
    plans,
    reports,
    settings_page,
)

ROUTERS = [
    billing.router,
    bills.router,
    payments.router,
    documents.router,
    estimates.router,
    clients.router,
    plans.router,
    settings_page.router,
    payouts.router,
    emails.router,
    reports.router,
    documents.issued_router("statements"),
    documents.issued_router("superbills"),
]
