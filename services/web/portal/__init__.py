"""The client portal: a signed-in client's bills, statements, superbills and estimates (Download
PDF, Pay), cards on file with the authorization they sign, autopay, payment plans and the
notifications feed.
Every call goes upstream with the client's own token, so the services decide what is theirs."""

from services.web.portal import cards, documents, plans

ROUTERS = [documents.router, cards.router, plans.router]
