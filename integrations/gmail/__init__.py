"""Gmail: the REST client and a MailPort that sends through it."""
