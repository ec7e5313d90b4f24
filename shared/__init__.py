"""What every service needs and no service owns: the contract in code, outbox/inbox,
database sessions, auth, money, settings, HTTP plumbing. No domain rules here."""
