"""The lab MTA: SMTP sessions, spool, local and relay delivery, sendmail-format logging."""
