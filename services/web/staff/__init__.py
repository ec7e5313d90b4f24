"""The staff console's pages, one router per feature, each thin over the services' APIs."""

from services.web.staff import billing

ROUTERS = [billing.router]
