"""The web service: the staff billing console and the client portal, server-rendered over the
other services' HTTP APIs (a backend-for-frontend; it stores no money data)."""
