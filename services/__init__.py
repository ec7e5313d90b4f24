"""The four services: billing, payments, documents, notifications."""
