"""Notifications: emails with pay links and PDFs, exactly once per cause, and the portal feed."""
